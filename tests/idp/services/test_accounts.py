"""Users as an admin changes them: email rules, password changes, status and timed locks,
tenants — each change one audit row with before and after, and nothing written when refused."""

from __future__ import annotations

import orjson
import pytest

from tessera.idp.errors import AdminError
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import (
    authenticate_user,
    create_user,
    describe_user,
    effective_status,
    find_user,
    find_user_by_name,
    list_users,
    set_status,
    update_user,
)
from tessera.idp.services.audit import Context
from tessera.idp.services.password_policy import PasswordRejected
from tessera.idp.services.tenants import (
    create_tenant,
    describe_tenant,
    find_tenant,
    list_tenants,
    update_tenant,
)

from ..conftest import CHEAP_PASSWORDS, add_tenant, add_user, audit_events, row_counts

CONTEXT = Context(ip="198.51.100.4", actor="admin-1")
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different long passphrase"


def details(provider: Provider) -> dict[str, object]:
    return dict(orjson.loads(audit_events(provider)[-1].details))


@pytest.mark.parametrize("email", ["no-at-sign", "two@@example.com", "sp ace@example.com", "@x"])
def test_malformed_emails_are_refused(provider: Provider, tenant: str, email: str) -> None:
    before = row_counts(provider)
    with pytest.raises(AdminError) as refused, provider.database.session() as session:
        create_user(
            session,
            CHEAP_PASSWORDS,
            tenant_id=tenant,
            username="ada",
            password=PASSWORD,
            email=email,
        )
    assert refused.value.code == "invalid"
    assert row_counts(provider) == before


def test_a_weak_password_writes_nothing(provider: Provider, tenant: str) -> None:
    before = row_counts(provider)
    with pytest.raises(PasswordRejected), provider.database.session() as session:
        create_user(session, CHEAP_PASSWORDS, tenant_id=tenant, username="ada", password="password")
    assert row_counts(provider) == before


def test_update_changes_email_and_password_and_audits_only_what_changed(
    cheap_passwords: Provider, tenant: str
) -> None:
    provider = cheap_passwords
    user = add_user(provider, tenant, username="ada")
    other = add_user(provider, tenant, username="bob")
    with provider.database.session() as session:
        changed = update_user(
            session,
            provider.passwords,
            find_user(session, tenant, user.id),
            email="Ada@Example.com",
            context=CONTEXT,
        )
    assert changed == {"email": "Ada@Example.com"}
    assert details(provider) == {"before": {"email": None}, "after": {"email": "Ada@Example.com"}}
    # Taken by someone else (whatever the case): 409, and nothing changes.
    with pytest.raises(AdminError) as refused, provider.database.session() as session:
        update_user(
            session,
            provider.passwords,
            find_user(session, tenant, other.id),
            email="ADA@example.com",
        )
    assert refused.value.code == "conflict"
    rows = len(audit_events(provider))
    with provider.database.session() as session:
        same = update_user(
            session,
            provider.passwords,
            find_user(session, tenant, user.id),
            email="ada@example.com",
        )
    assert same == {} and len(audit_events(provider)) == rows  # the same address, another case
    with provider.database.session() as session:
        update_user(
            session,
            provider.passwords,
            find_user(session, tenant, user.id),
            password=NEW_PASSWORD,
            context=CONTEXT,
        )
    assert details(provider) == {"before": {}, "after": {"password": "changed"}}
    assert PASSWORD not in audit_events(provider)[-1].details
    with provider.database.session() as session:
        args = {"tenant_id": tenant, "username": "ADA"}
        assert authenticate_user(session, provider.passwords, password=PASSWORD, **args) is None
        assert authenticate_user(session, provider.passwords, password=NEW_PASSWORD, **args)


def test_a_timed_lock_refuses_logins_until_it_ends(cheap_passwords: Provider, tenant: str) -> None:
    provider = cheap_passwords
    user = add_user(provider, tenant, username="ada")
    with provider.database.session() as session:
        assert set_status(
            session,
            find_user(session, tenant, user.id),
            "locked",
            until=2_000_000_000,
            reason="test",
            context=CONTEXT,
        )
    assert audit_events(provider)[-1].event == "user.locked"
    with provider.database.session() as session:
        row = find_user(session, tenant, user.id)
        assert effective_status(row, now=1_999_999_999) == "locked"
        assert effective_status(row, now=2_000_000_000) == "active"
        assert describe_user(session, row, now=1_999_999_999)["status"] == "locked"
        assert (
            authenticate_user(
                session, provider.passwords, tenant_id=tenant, username="ada", password=PASSWORD
            )
            is None
        )
    with provider.database.session() as session:
        assert set_status(session, find_user(session, tenant, user.id), "active", context=CONTEXT)
        assert not set_status(session, find_user(session, tenant, user.id), "active")
    assert audit_events(provider)[-1].event == "user.unlocked"
    assert details(provider)["after"] == {"status": "active", "locked_until": None}


def test_a_lock_that_has_ended_lets_the_user_in(cheap_passwords: Provider, tenant: str) -> None:
    provider = cheap_passwords
    user = add_user(provider, tenant, username="ada")
    with provider.database.session() as session:
        set_status(session, find_user(session, tenant, user.id), "locked", until=1)
    with provider.database.session() as session:
        found = authenticate_user(
            session, provider.passwords, tenant_id=tenant, username="ada", password=PASSWORD
        )
        assert found is not None and found.id == user.id


def test_unknown_statuses_are_refused(provider: Provider, tenant: str) -> None:
    user = add_user(provider, tenant, username="ada")
    with pytest.raises(AdminError), provider.database.session() as session:
        set_status(session, find_user(session, tenant, user.id), "suspended")


def test_users_of_another_tenant_are_not_found(provider: Provider, tenant: str) -> None:
    add_tenant(provider, "globex")
    stranger = add_user(provider, "globex", username="ada")
    with provider.database.session(readonly=True) as session:
        for lookup in (
            lambda: find_user(session, tenant, stranger.id),
            lambda: find_user(session, tenant, "x" * 100),
            lambda: find_user_by_name(session, tenant, "ada"),
        ):
            with pytest.raises(AdminError) as refused:
                lookup()
            assert refused.value.code == "not_found"
        assert find_user_by_name(session, "globex", " ADA ").id == stranger.id


def test_users_list_in_pages_by_username(provider: Provider, tenant: str) -> None:
    for name in ("carol", "Ada", "bob"):
        add_user(provider, tenant, username=name)
    with provider.database.session(readonly=True) as session:
        first = list_users(session, tenant, limit=2)
        rest = list_users(session, tenant, after=first[-1].username_key, limit=2)
        assert [user.username for user in first + rest] == ["Ada", "bob", "carol"]
        seen = describe_user(session, first[0])
    assert seen["roles"] == ["member"] and seen["mfa"] is False
    assert not {"password_hash", "mfa_secret", "mfa_pending"} & set(seen)


def test_tenants_are_created_with_an_admin_role_and_updated_with_an_audit_row(
    provider: Provider,
) -> None:
    with provider.database.session() as session:
        create_tenant(session, tenant_id="initech", name="Initech", context=CONTEXT)
    with pytest.raises(AdminError) as taken, provider.database.session() as session:
        create_tenant(session, tenant_id="initech", name="Again")
    assert taken.value.code == "conflict"
    for bad in ("UPPER", "-lead", "x" * 64, "sp ace"):
        with pytest.raises(AdminError), provider.database.session() as session:
            create_tenant(session, tenant_id=bad, name="bad")
    with pytest.raises(AdminError), provider.database.session() as session:
        create_tenant(session, tenant_id="policy", name="bad", mfa_policy="sometimes")
    with provider.database.session() as session:
        changed = update_tenant(
            session, find_tenant(session, "initech"), mfa_policy="required", context=CONTEXT
        )
        assert changed == {"mfa_policy": "required"}
        assert [describe_tenant(t)["id"] for t in list_tenants(session)] == ["initech"]
    assert details(provider) == {
        "before": {"mfa_policy": "optional"},
        "after": {"mfa_policy": "required"},
    }
    assert [event.event for event in audit_events(provider)][-2:] == [
        "tenant.created",
        "tenant.updated",
    ]
