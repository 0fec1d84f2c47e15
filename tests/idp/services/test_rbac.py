"""Roles and permissions: least-privilege scopes in user tokens, changes that reach the token at
its next refresh, system permissions kept to the system tenant, and one audit row per change."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tessera.idp.errors import AdminError, OAuthError
from tessera.idp.flows.grants import token_response
from tessera.idp.flows.revoke import disable_user
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import find_user
from tessera.idp.services.audit import Context
from tessera.idp.services.clients import register_client
from tessera.idp.services.rbac import (
    SYSTEM_TENANT,
    access_of,
    create_role,
    delete_role,
    find_role,
    set_roles,
    update_role,
)
from tessera.idp.services.tenants import create_tenant

from ..conftest import Registered, add_client, add_tenant, add_user, audit_events

CONTEXT = Context(ip="203.0.113.9", actor="root")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def app(cheap_passwords: Provider, tenant: str) -> Registered:
    """A first-party client allowed read, write and audit:read (defaults read and write)."""
    return add_client(
        cheap_passwords,
        tenant,
        grant_types=("password", "refresh_token"),
        allowed_scopes=("read", "write", "audit:read"),
        default_scopes=("read", "write"),
        first_party=True,
    )


def log_in(provider: Provider, app: Registered, username: str, scope: str | None = None) -> Any:
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    if scope is not None:
        form["scope"] = scope
    return token_response(provider, form, app.basic, CONTEXT)


def refresh(provider: Provider, app: Registered, token: str) -> Any:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return token_response(provider, form, app.basic, CONTEXT)


def claims(provider: Provider, answer: dict[str, Any]) -> dict[str, Any]:
    return provider.issuer.verifier().verify(answer["access_token"])


def make_reader(provider: Provider, tenant: str) -> str:
    with provider.database.session() as session:
        create_role(session, tenant_id=tenant, name="reader", permissions=["read"])
    return add_user(provider, tenant, username="rita", roles=("reader",)).id


def test_a_user_token_holds_only_what_their_roles_permit(
    provider: Provider, app: Registered
) -> None:
    make_reader(provider, app.tenant_id)
    # Nothing asked: the client's defaults (read write), narrowed to the roles (read).
    assert claims(provider, log_in(provider, app, "rita"))["scope"] == "read"
    # Asked for more than the roles permit: only the permitted part.
    answer = log_in(provider, app, "rita", "read write audit:read")
    assert (answer["scope"], claims(provider, answer)["roles"]) == ("read", ["reader"])
    # Asked only for what the roles do not permit: refused, nothing issued.
    with pytest.raises(OAuthError) as refused:
        log_in(provider, app, "rita", "write")
    assert refused.value.error == "invalid_scope"


def test_a_user_without_roles_gets_a_token_without_scopes(
    provider: Provider, app: Registered
) -> None:
    add_user(provider, app.tenant_id, username="nobody", roles=())
    answer = log_in(provider, app, "nobody")
    assert (claims(provider, answer)["scope"], claims(provider, answer)["roles"]) == ("", [])


def test_role_changes_reach_the_token_at_the_next_refresh(
    provider: Provider, app: Registered
) -> None:
    user_id = make_reader(provider, app.tenant_id)
    first = log_in(provider, app, "rita", "read write")
    assert first["scope"] == "read"
    with provider.database.session() as session:
        create_role(session, tenant_id=app.tenant_id, name="writer", permissions=["write"])
        set_roles(session, find_user(session, app.tenant_id, user_id), ["reader", "writer"])
    second = refresh(provider, app, first["refresh_token"])
    # The family keeps the granted scope (read): a refresh may narrow, never widen it.
    assert claims(provider, second)["roles"] == ["reader", "writer"]
    assert claims(provider, second)["scope"] == "read"
    with provider.database.session() as session:
        update_role(session, find_role(session, app.tenant_id, "reader"), permissions=[])
    third = refresh(provider, app, second["refresh_token"])
    assert claims(provider, third)["scope"] == ""  # read was withdrawn from the role
    with provider.database.session() as session:
        set_roles(session, find_user(session, app.tenant_id, user_id), [])
    assert claims(provider, refresh(provider, app, third["refresh_token"]))["roles"] == []


def test_disabling_a_user_ends_their_sessions_at_once(provider: Provider, app: Registered) -> None:
    user_id = make_reader(provider, app.tenant_id)
    answer = log_in(provider, app, "rita")
    with provider.database.session() as session:
        assert disable_user(provider, session, find_user(session, app.tenant_id, user_id), CONTEXT)
    with pytest.raises(OAuthError) as refused:
        refresh(provider, app, answer["refresh_token"])
    assert refused.value.error == "invalid_grant"
    with provider.database.session(readonly=True) as session:
        assert provider.revocations.is_revoked(session, claims(provider, answer))
    (disabled,) = [event for event in audit_events(provider) if event.event == "user.disabled"]
    assert (disabled.subject, disabled.actor) == (user_id, "root")
    assert orjson.loads(disabled.details)["sessions"] == 1
    assert "logout.all" not in {event.event for event in audit_events(provider)}


def test_system_permissions_exist_only_in_the_system_tenant(
    provider: Provider, tenant: str
) -> None:
    for permission in ("admin:tenants", "admin:keys"):
        with pytest.raises(AdminError) as refused, provider.database.session() as session:
            create_role(session, tenant_id=tenant, name="sneaky", permissions=[permission])
        assert refused.value.code == "invalid"
    with pytest.raises(AdminError), provider.database.session() as session:
        update_role(session, find_role(session, tenant, "admin"), permissions=["admin:keys"])
    with provider.database.session() as session:
        create_tenant(session, tenant_id=SYSTEM_TENANT, name="System")
        root = find_role(session, SYSTEM_TENANT, "admin")
        assert {"admin:tenants", "admin:keys"} <= set(root.permissions.split())
        assert "admin:tenants" not in find_role(session, tenant, "admin").permissions.split()


@pytest.mark.parametrize(
    ("name", "permissions", "status"),
    [
        ("bad name", ["read"], 422),
        ("", ["read"], 422),
        ("ok", ["has space"], 422),
        ("ok", ['quo"te'], 422),
        ("ok", ["x" * 101], 422),
        ("member", ["read"], 409),
    ],
)
def test_bad_roles_are_refused_and_nothing_is_written(
    provider: Provider, tenant: str, name: str, permissions: list[str], status: int
) -> None:
    before = len(audit_events(provider))
    with pytest.raises(AdminError) as refused, provider.database.session() as session:
        create_role(session, tenant_id=tenant, name=name, permissions=permissions)
    assert refused.value.code == {422: "invalid", 409: "conflict"}[status]
    assert len(audit_events(provider)) == before


def test_unknown_roles_are_refused_without_changing_the_user(
    provider: Provider, tenant: str
) -> None:
    user = add_user(provider, tenant, username="una")
    with pytest.raises(AdminError) as refused, provider.database.session() as session:
        set_roles(session, find_user(session, tenant, user.id), ["member", "ghost"])
    assert (refused.value.code, refused.value.detail) == ("invalid", "no such role: ghost")
    with provider.database.session(readonly=True) as session:
        assert access_of(session, user.id).roles == ("member",)


def test_roles_of_another_tenant_cannot_be_given(provider: Provider, tenant: str) -> None:
    add_tenant(provider, "globex")
    with provider.database.session() as session:
        create_role(session, tenant_id="globex", name="spy", permissions=["read"])
    user = add_user(provider, tenant, username="ulla")
    with pytest.raises(AdminError), provider.database.session() as session:
        set_roles(session, find_user(session, tenant, user.id), ["spy"])


def test_every_role_change_is_one_audit_row_with_before_and_after(
    provider: Provider, tenant: str
) -> None:
    user = add_user(provider, tenant, username="ada")
    start = len(audit_events(provider))
    with provider.database.session() as session:
        role = create_role(
            session, tenant_id=tenant, name="ops", permissions=["read"], context=CONTEXT
        )
    with provider.database.session() as session:
        role = find_role(session, tenant, "ops")
        update_role(session, role, permissions=["read", "write"], context=CONTEXT)
        update_role(session, role, permissions=["read", "write"], context=CONTEXT)  # no change
        set_roles(session, find_user(session, tenant, user.id), ["member", "ops"], context=CONTEXT)
        set_roles(session, find_user(session, tenant, user.id), ["ops", "member"], context=CONTEXT)
    with provider.database.session() as session:
        delete_role(session, find_role(session, tenant, "ops"), context=CONTEXT)
        assert access_of(session, user.id).roles == ("member",)
    rows = audit_events(provider)[start:]
    assert [row.event for row in rows] == [
        "role.created",
        "role.updated",
        "user.roles_changed",
        "role.deleted",
    ]
    assert all(
        (row.actor, row.tenant_id, row.ip) == ("root", tenant, "203.0.113.9") for row in rows
    )
    updated = orjson.loads(rows[1].details)
    assert updated["before"] == {"permissions": ["read"]}
    assert updated["after"] == {"permissions": ["read", "write"]}
    changed = orjson.loads(rows[2].details)
    assert changed["before"] == {"roles": ["member"]}
    assert changed["after"] == {"roles": ["member", "ops"]}
    assert rows[2].subject == user.id


def test_no_one_grants_an_admin_permission_they_do_not_hold(
    provider: Provider, tenant: str
) -> None:
    held = frozenset({"admin:users", "admin:roles", "admin:clients", "read"})
    user = add_user(provider, tenant, username="eve")
    before = len(audit_events(provider))
    attempts = [
        lambda session: create_role(
            session, tenant_id=tenant, name="x", permissions=["admin:audit"], held=held
        ),
        lambda session: update_role(
            session, find_role(session, tenant, "member"), permissions=["admin:audit"], held=held
        ),
        lambda session: set_roles(
            session, find_user(session, tenant, user.id), ["admin"], held=held
        ),
        lambda session: register_client(
            session,
            provider.master,
            tenant_id=tenant,
            name="x",
            grant_types=("client_credentials",),
            audience=("api",),
            allowed_scopes=("admin:audit",),
            held=held,
        ),
    ]
    for attempt in attempts:
        with pytest.raises(AdminError) as refused, provider.database.session() as session:
            attempt(session)
        assert refused.value.code == "forbidden"
    assert len(audit_events(provider)) == before
    with provider.database.session() as session:
        # What is held may be given; what a role already had may stay; the operator may all.
        create_role(session, tenant_id=tenant, name="ops", permissions=["admin:users"], held=held)
        set_roles(session, find_user(session, tenant, user.id), ["member", "ops"], held=held)
        set_roles(session, find_user(session, tenant, user.id), ["admin"], held=None)
        assert access_of(session, user.id).roles == ("admin",)
