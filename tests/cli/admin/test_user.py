"""``tessera admin user``: create (password from stdin, asked, or generated), list, show,
update, status changes and roles — each change audited once as the operator; passwords only
ever stored as argon2id hashes and never echoed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.idp.provider import Provider
from tessera.idp.services.accounts import authenticate_user

from .conftest import (
    ACTOR,
    PASSWORD,
    Admin,
    add_tenant,
    add_user,
    admin_changes,
    configure,
    database_text,
    document,
    events,
    ok,
    refused,
)

USER_FIELDS = {
    "id",
    "tenant",
    "username",
    "email",
    "status",
    "locked_until",
    "roles",
    "mfa",
    "created_at",
    "updated_at",
}


def logs_in(provider: Provider, username: str, password: str, tenant_id: str = "acme") -> bool:
    with provider.database.session() as session:
        user = authenticate_user(
            session,
            provider.passwords,
            tenant_id=tenant_id,
            username=username,
            password=password,
        )
        return user is not None


# ---------------------------------------------------------------------- create


def test_create_reads_the_password_from_stdin_and_stores_only_its_argon2id_hash(
    admin: Admin, provider: Provider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # This test is about passwords: the OWASP argon2id parameters, not the cheap ones.
    configure(
        monkeypatch,
        provider.settings.database_url,
        tmp_path,
        TESSERA_ARGON2_MEMORY_KIB="19456",
        TESSERA_ARGON2_TIME_COST="2",
    )
    add_tenant(admin, "acme", "member")
    made = add_user(admin, "Ada", "--email", "ada@example.com", "--role", "member")

    assert made.keys() == USER_FIELDS
    assert (made["tenant"], made["username"], made["email"]) == ("acme", "Ada", "ada@example.com")
    assert (made["status"], made["roles"], made["mfa"]) == ("active", ["member"], False)
    stored = database_text(provider)
    assert PASSWORD not in stored
    assert "$argon2id$v=19$m=19456,t=2,p=1$" in stored
    assert logs_in(provider, "ada", PASSWORD)  # (which re-hashes at the provider's parameters)

    (row,) = events(provider, "user.created")
    assert (row.tenant_id, row.actor, row.subject) == ("acme", ACTOR, made["id"])
    assert json.loads(row.details) == {
        "after": {"username": "Ada", "email": "ada@example.com", "roles": ["member"]}
    }


def test_create_asks_for_the_password_twice_without_echo(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    result = ok(admin("user", "create", "-t", "acme", "ada", input=f"{PASSWORD}\n{PASSWORD}\n"))
    assert PASSWORD not in result.output
    assert "User ada (acme) created" in result.stdout
    assert "New password" in result.stderr  # the prompt, on stderr: stdout stays the result
    assert logs_in(provider, "ada", PASSWORD)

    mismatch = admin("user", "create", "-t", "acme", "bob", input=f"{PASSWORD}\nsomething else\n")
    assert mismatch.exit_code != 0
    assert PASSWORD not in mismatch.output
    assert admin_changes(provider) == [
        ("tenant.created", "acme", ACTOR),
        ("user.created", "acme", ACTOR),
    ]


def test_a_generated_password_is_printed_once_and_works(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    result = ok(admin("user", "create", "-t", "acme", "ada", "--generate-password"))
    line = next(text for text in result.stdout.splitlines() if text.startswith("password"))
    password = line.removeprefix("password (shown once): ")
    assert len(password) >= 32
    assert result.stdout.count(password) == 1
    assert "Tessera keeps only a hash of it" in result.stderr
    assert logs_in(provider, "ada", password)

    answer = document(admin("user", "create", "-t", "acme", "bob", "--generate-password", "--json"))
    assert answer.keys() == USER_FIELDS | {"password"}
    assert logs_in(provider, "bob", answer["password"])
    stored = database_text(provider)
    assert password not in stored and answer["password"] not in stored
    # Reading the user again never shows it.
    assert "password" not in document(admin("user", "show", "-t", "acme", "-u", "bob", "--json"))


def test_a_weak_password_is_refused_and_nothing_is_written(
    admin: Admin, provider: Provider
) -> None:
    add_tenant(admin)
    before = admin_changes(provider)
    for password, message in [
        ("Unbelievable", "password is too common"),
        ("short", "password is shorter than the minimum length"),
        ("ada@example.com", "password must not be the username or email"),
    ]:
        result = admin(
            "user",
            "create",
            "-t",
            "acme",
            "ada",
            "--email",
            "ada@example.com",
            "--password-stdin",
            input=password + "\n",
        )
        refused(result, 2, message)
    as_json = admin(
        "user", "create", "-t", "acme", "ada", "--password-stdin", "--json", input="short"
    )
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout) == {
        "code": "weak_password",
        "message": "password is shorter than the minimum length",
        "reason": "too_short",
    }
    assert admin_changes(provider) == before
    assert document(admin("user", "list", "-t", "acme", "--json"))["users"] == []


def test_create_refusals(admin: Admin, provider: Provider) -> None:
    add_tenant(admin, "acme", "member")
    add_user(admin, "ada", "--email", "ada@example.com")

    def create(*args: str) -> object:
        return admin("user", "create", "-t", "acme", *args, "--password-stdin", input=PASSWORD)

    refused(create("ADA"), 4, "username already taken in this tenant")
    refused(create("bob", "--email", "Ada@Example.com"), 4, "email already taken in this tenant")
    refused(create("bob", "--email", "not-an-address"), 2, "email is not an address")
    refused(create("bob", "--role", "nope"), 2, "no such role: nope")
    refused(
        admin("user", "create", "-t", "nope", "bob", "--password-stdin", input=PASSWORD),
        3,
        "no such tenant",
    )
    refused(
        admin("user", "create", "-t", "acme", "bob", "--password-stdin", input=""),
        2,
        "no password on stdin",
    )
    refused(
        admin("user", "create", "-t", "acme", "bob", "--password-stdin", "--generate-password"),
        2,
        "give --password-stdin or --generate-password, not both",
    )
    assert [event for event, _, _ in admin_changes(provider)].count("user.created") == 1


# ---------------------------------------------------------------------- read


def test_list_and_show_by_id_or_username(admin: Admin) -> None:
    add_tenant(admin, "acme", "member")
    ada = add_user(admin, "ada", "--role", "member")
    bob = add_user(admin, "bob")
    add_tenant(admin, "other")
    add_user(admin, "carol", tenant_id="other")

    listed = document(admin("user", "list", "-t", "acme", "--json"))
    assert listed == {"users": [ada, bob], "next_cursor": None}
    first = document(admin("user", "list", "-t", "acme", "--limit", "1", "--json"))
    assert first == {"users": [ada], "next_cursor": "ada"}
    rest = document(admin("user", "list", "-t", "acme", "--after", "ada", "--json"))
    assert rest["users"] == [bob]
    text = ok(admin("user", "list", "-t", "acme")).stdout
    assert ada["id"] in text and bob["id"] in text and "carol" not in text

    assert document(admin("user", "show", "-t", "acme", ada["id"], "--json")) == ada
    assert document(admin("user", "show", "-t", "acme", "--username", "ADA", "--json")) == ada
    shown = ok(admin("user", "show", "-t", "acme", "-u", "ada")).stdout
    assert ada["id"] in shown and "member" in shown


def test_read_refusals(admin: Admin) -> None:
    add_tenant(admin)
    ada = add_user(admin, "ada")
    add_tenant(admin, "other")
    refused(admin("user", "show", "-t", "acme", "-u", "nobody"), 3, "no such user")
    # A user of another tenant is as absent as one that does not exist.
    refused(admin("user", "show", "-t", "other", ada["id"]), 3, "no such user")
    refused(admin("user", "show", "-t", "nope", "-u", "ada"), 3, "no such tenant")
    refused(admin("user", "list", "-t", "nope"), 3, "no such tenant")
    refused(admin("user", "show", "-t", "acme"), 2, "name the user: give its USER_ID or --username")
    refused(
        admin("user", "show", "-t", "acme", ada["id"], "-u", "ada"),
        2,
        "give USER_ID or --username, not both",
    )


# ---------------------------------------------------------------------- update


def test_update_email_and_password(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    ada = add_user(admin, "ada", "--email", "ada@example.com")
    add_user(admin, "bob", "--email", "bob@example.com")
    new_password = "a completely different passphrase"

    changed = document(
        admin(
            "user",
            "update",
            "-t",
            "acme",
            "-u",
            "ada",
            "--email",
            "ada@example.org",
            "--password-stdin",
            "--json",
            input=new_password + "\n",
        )
    )
    assert changed["email"] == "ada@example.org"
    assert changed["updated"] == ["email", "password"]
    assert logs_in(provider, "ada", new_password)
    assert not logs_in(provider, "ada", PASSWORD)

    (row,) = events(provider, "user.updated")
    assert (row.tenant_id, row.actor, row.subject) == ("acme", ACTOR, ada["id"])
    assert json.loads(row.details) == {
        "before": {"email": "ada@example.com"},
        "after": {"email": "ada@example.org", "password": "changed"},
    }
    assert new_password not in database_text(provider)

    removed = document(admin("user", "update", "-t", "acme", ada["id"], "--email", "", "--json"))
    assert removed["email"] is None
    refused(
        admin("user", "update", "-t", "acme", "-u", "ada", "--email", "BOB@example.com"),
        4,
        "email already taken in this tenant",
    )
    refused(
        admin("user", "update", "-t", "acme", "-u", "ada", "--password-stdin", input="password1"),
        2,
        "password is shorter than the minimum length",
    )
    refused(
        admin("user", "update", "-t", "acme", "-u", "ada"),
        2,
        "nothing to change: give --email, --password-stdin or --generate-password",
    )
    refused(
        admin("user", "update", "-t", "acme", "-u", "zed", "--password-stdin", input=PASSWORD),
        3,
        "no such user",
    )
    assert len(events(provider, "user.updated")) == 2


def test_update_can_generate_a_new_password(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    add_user(admin, "ada")
    answer = document(
        admin("user", "update", "-t", "acme", "-u", "ada", "--generate-password", "--json")
    )
    assert answer["updated"] == ["password"]
    assert logs_in(provider, "ada", answer["password"])


# ---------------------------------------------------------------------- status


def test_lock_enable_disable_and_their_audit_rows(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    ada = add_user(admin, "ada")

    def status(*args: str) -> dict[str, object]:
        return document(admin("user", *args, "-t", "acme", "-u", "ada", "--json"))

    locked = status("lock", "--until", "2h")
    assert (locked["status"], locked["changed"]) == ("locked", True)
    assert isinstance(locked["locked_until"], int)
    assert not logs_in(provider, "ada", PASSWORD)
    forever = status("lock")
    assert (forever["status"], forever["locked_until"], forever["changed"]) == (
        "locked",
        None,
        True,
    )
    # "active" on a locked user unlocks it, as the admin API does: one flow decides both.
    unlocked = status("enable")
    assert (unlocked["status"], unlocked["locked_until"], unlocked["changed"]) == (
        "active",
        None,
        True,
    )
    assert logs_in(provider, "ada", PASSWORD)

    disabled = status("disable")
    assert (disabled["status"], disabled["changed"]) == ("disabled", True)
    assert status("disable")["changed"] is False
    refused(
        admin("user", "lock", "-t", "acme", "-u", "ada"),
        2,
        "a disabled user cannot be locked; enable them first",
    )
    enabled = status("enable")
    assert (enabled["status"], enabled["changed"]) == ("active", True)
    assert status("enable")["changed"] is False
    assert logs_in(provider, "ada", PASSWORD)

    changes = [row for row in admin_changes(provider) if row[0] != "user.created"][1:]
    assert changes == [
        ("user.locked", "acme", ACTOR),
        ("user.locked", "acme", ACTOR),
        ("user.unlocked", "acme", ACTOR),
        ("user.disabled", "acme", ACTOR),
        ("user.enabled", "acme", ACTOR),
    ]
    assert {row.subject for row in events(provider, "user.locked", "user.enabled")} == {ada["id"]}
    text = ok(admin("user", "disable", "-t", "acme", "-u", "ada"))
    assert "disabled" in text.stdout and "every session ended" in text.stderr


def test_lock_until_refusals(admin: Admin) -> None:
    add_tenant(admin)
    add_user(admin, "ada")
    refused(
        admin("user", "lock", "-t", "acme", "-u", "ada", "--until", "2000-01-01T00:00:00Z"),
        2,
        "--until must lie in the future",
    )
    refused(
        admin("user", "lock", "-t", "acme", "-u", "ada", "--until", "soon"),
        2,
        "invalid --until 'soon'; expected a duration (30m, 2d) or an ISO 8601 time",
    )


# ---------------------------------------------------------------------- roles


def test_roles_set_replaces_the_roles_and_is_audited(admin: Admin, provider: Provider) -> None:
    add_tenant(admin, "acme", "member", "auditor")
    ada = add_user(admin, "ada", "--role", "member")

    answer = document(
        admin("user", "roles", "set", "-t", "acme", ada["id"], "auditor", "admin", "--json")
    )
    assert (answer["roles"], answer["changed"]) == (["admin", "auditor"], True)
    again = document(
        admin("user", "roles", "set", "-t", "acme", "-u", "ada", "admin auditor", "--json")
    )
    assert again["changed"] is False
    none = document(admin("user", "roles", "set", "-t", "acme", "-u", "ada", "--none", "--json"))
    assert none["roles"] == []

    rows = events(provider, "user.roles_changed")
    assert [(row.actor, row.tenant_id, row.subject) for row in rows] == [
        (ACTOR, "acme", ada["id"]),
        (ACTOR, "acme", ada["id"]),
    ]
    assert json.loads(rows[0].details) == {
        "before": {"roles": ["member"]},
        "after": {"roles": ["admin", "auditor"]},
    }
    refused(
        admin("user", "roles", "set", "-t", "acme", "-u", "ada", "member", "ghost"),
        2,
        "no such role: ghost",
    )
    refused(
        admin("user", "roles", "set", "-t", "acme", "-u", "ada"),
        2,
        "give the roles to set, or --none to take every role away",
    )
    refused(
        admin("user", "roles", "set", "-t", "acme", "-u", "ada", "member", "--none"),
        2,
        "give roles or --none, not both",
    )
    refused(admin("user", "roles", "set", "-t", "acme", "ghost-id", "member"), 3, "no such user")
    assert len(events(provider, "user.roles_changed")) == 2
