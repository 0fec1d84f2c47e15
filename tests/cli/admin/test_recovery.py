"""What the command line is for when nothing else works: ending a user's sessions, lifting a
lock for failed logins, removing a lost second factor — and an operator who is locked out of
the admin account getting back in with database access only, checked over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from tessera.idp.config import Settings
from tessera.idp.errors import Throttled
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import find_user_by_name
from tessera.idp.store.models import RecoveryCode

from ...idp.http.servers import password_attempt, serving
from .conftest import (
    ACTOR,
    PASSWORD,
    Admin,
    add_tenant,
    add_user,
    admin_command,
    configure,
    document,
    enrol_totp,
    events,
    ok,
)

DATABASES = ["sqlite", "postgresql"]
DEMO_SCOPE = "demo:read"


def fail_logins(provider: Provider, tenant_id: str, username: str, times: int) -> None:
    """What the server does on each wrong password (counted in the shared store)."""
    for _ in range(times):
        with provider.database.session() as session:
            user = find_user_by_name(session, tenant_id, username)
            provider.lockout.failed(
                session,
                tenant_id=tenant_id,
                username=username,
                ip="192.0.2.7",
                user=user,
                context=None,
            )


@pytest.mark.parametrize("database", DATABASES)
def test_disabling_a_user_ends_every_session(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(database, tmp_path) as server, server.client() as http:
        server.add_user("ada", PASSWORD)
        answer = password_attempt(http, "ada", PASSWORD, scope=DEMO_SCOPE)
        assert answer.status_code == 200, answer.text
        tokens = answer.json()

        configure(monkeypatch, server.settings.database_url, tmp_path)
        admin = admin_command()
        disabled = document(admin("user", "disable", "-t", "default", "-u", "ada", "--json"))
        assert (disabled["status"], disabled["changed"]) == ("disabled", True)

        refresh = http.post(
            "/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": "web",
                "refresh_token": tokens["refresh_token"],
            },
        )
        assert refresh.status_code == 400
        assert refresh.json()["error"] == "invalid_grant"
        introspected = http.post(
            "/oauth2/introspect",
            data={"token": tokens["access_token"]},
            auth=("demo", server.demo_secret),
        )
        assert introspected.json() == {"active": False}
        assert password_attempt(http, "ada", PASSWORD, scope=DEMO_SCOPE).status_code == 400

        (row,) = events(server.provider, "user.disabled")
        assert (row.actor, row.tenant_id, row.subject) == (ACTOR, "default", disabled["id"])
        assert orjson.loads(row.details)["sessions"] == 1


def test_unlock_lifts_a_lock_for_failed_logins_on_every_node(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
    redis_names: dict[str, str],
) -> None:
    configure(
        monkeypatch,
        database_url,
        tmp_path,
        TESSERA_LOCKOUT_THRESHOLD="3",
        TESSERA_LOCKOUT_FREE_ATTEMPTS="3",
        **redis_names,
    )
    admin = admin_command()
    add_tenant(admin)
    add_user(admin, "ada")
    node = Provider(Settings())  # a server node, counting in the shared Redis
    node.start()
    try:
        fail_logins(node, "acme", "ada", 3)
        shown = document(admin("user", "show", "-t", "acme", "-u", "ada", "--json"))
        assert shown["status"] == "locked"
        with pytest.raises(Throttled), node.database.session() as session:
            node.lockout.check(session, "acme", "ada", "192.0.2.8")

        unlocked = document(admin("user", "unlock", "-t", "acme", "-u", "ada", "--json"))
        assert (unlocked["status"], unlocked["changed"]) == ("active", True)
        with node.database.session() as session:  # admitted again: counters cleared
            node.lockout.check(session, "acme", "ada", "192.0.2.8")

        again = document(admin("user", "unlock", "-t", "acme", "-u", "ada", "--json"))
        assert (again["status"], again["changed"]) == ("active", False)
        ok(admin("user", "disable", "-t", "acme", "-u", "ada"))
        stays = document(admin("user", "unlock", "-t", "acme", "-u", "ada", "--json"))
        assert (stays["status"], stays["changed"]) == ("disabled", False)

        rows = events(node, "user.unlocked")
        assert [(row.actor, row.tenant_id, row.subject) for row in rows] == [
            (ACTOR, "acme", shown["id"])
        ] * 3
    finally:
        node.close()


def test_reset_mfa_removes_the_factor_and_its_recovery_codes(
    admin: Admin, provider: Provider
) -> None:
    add_tenant(admin)
    ada = add_user(admin, "ada")
    bob = add_user(admin, "bob")
    enrol_totp(provider, "acme", "ada")
    assert document(admin("user", "show", "-t", "acme", "-u", "ada", "--json"))["mfa"] is True

    reset = document(admin("user", "reset-mfa", "-t", "acme", "-u", "ada", "--json"))
    assert (reset["mfa"], reset["changed"]) == (False, True)
    with provider.database.session(readonly=True) as session:
        codes = session.scalar(select(func.count()).select_from(RecoveryCode))
        user = find_user_by_name(session, "acme", "ada")
        assert (user.mfa_secret, user.mfa_pending, user.mfa_enabled_at) == (None, None, None)
    assert codes == 0
    nothing = document(admin("user", "reset-mfa", "-t", "acme", "-u", "bob", "--json"))
    assert nothing["changed"] is False

    rows = events(provider, "mfa.reset")
    assert [(row.actor, row.tenant_id, row.subject) for row in rows] == [
        (ACTOR, "acme", ada["id"]),
        (ACTOR, "acme", bob["id"]),
    ]
    assert [json.loads(row.details) for row in rows] == [
        {"had_factor": True},
        {"had_factor": False},
    ]


@pytest.mark.parametrize("database", DATABASES)
def test_an_operator_locked_out_of_the_admin_account_gets_back_in(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_names: dict[str, str],
) -> None:
    """The admin has a second factor nobody can reach, forgot the password, and locked the
    account guessing it. With database access, three commands open it again."""
    lockout = {"lockout_threshold": 3, "lockout_free_attempts": 3}
    overrides = {
        name.removeprefix("TESSERA_").lower(): value for name, value in redis_names.items()
    }
    with serving(database, tmp_path, **lockout, **overrides) as server, server.client() as http:
        enrol_totp(server.provider, "default", "admin")
        for _ in range(3):
            assert (
                password_attempt(
                    http, "admin", "a wrong guess, again", scope=DEMO_SCOPE
                ).status_code
                == 400
            )
        assert (
            password_attempt(http, "admin", server.admin_password, scope=DEMO_SCOPE).status_code
            == 429
        )

        configure(monkeypatch, server.settings.database_url, tmp_path, **redis_names)
        admin = admin_command()
        new_password = "the operator's fresh passphrase"
        ok(
            admin(
                "user",
                "update",
                "-t",
                "default",
                "-u",
                "admin",
                "--password-stdin",
                input=new_password + "\n",
            )
        )
        ok(admin("user", "unlock", "-t", "default", "-u", "admin"))
        second = password_attempt(http, "admin", new_password, scope=DEMO_SCOPE)
        assert second.status_code == 403  # the password is right; the lost factor is due
        assert second.json()["error"] == "mfa_required"

        ok(admin("user", "reset-mfa", "-t", "default", "-u", "admin"))
        answer = password_attempt(http, "admin", new_password, scope=DEMO_SCOPE)
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "demo:read"
        assert (
            password_attempt(http, "admin", server.admin_password, scope=DEMO_SCOPE).status_code
            == 400
        )

        recovery = [
            (row.event, row.actor)
            for row in events(server.provider)
            if row.actor is not None and row.actor.startswith("cli:")
        ]
        assert recovery == [
            ("user.updated", ACTOR),
            ("user.unlocked", ACTOR),
            ("mfa.reset", ACTOR),
        ]
