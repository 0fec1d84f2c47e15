"""``tessera admin client``: a confidential client's secret is printed once and stored only as
its keyed hash; rotation replaces it; disabling refuses the client; every change is audited once
as the operator, never with the secret."""

from __future__ import annotations

import json

import pytest

from tessera.idp.errors import OAuthError
from tessera.idp.provider import Provider
from tessera.idp.services.clients import SECRET_PURPOSE, authenticate_client
from tessera.idp.store.models import Client

from .conftest import (
    ACTOR,
    Admin,
    add_tenant,
    admin_changes,
    database_text,
    document,
    events,
    ok,
    refused,
)

CLIENT_FIELDS = {
    "id",
    "tenant",
    "name",
    "confidential",
    "first_party",
    "status",
    "grant_types",
    "allowed_scopes",
    "default_scopes",
    "audience",
    "created_at",
}
BILLING = (
    "--name",
    "Billing",
    "--grant",
    "client_credentials",
    "--audience",
    "billing-api",
    "--scope",
    "invoices:read invoices:write",
    "--default-scope",
    "invoices:read",
)


def authenticates(provider: Provider, client_id: str, secret: str | None) -> bool:
    with provider.database.session(readonly=True) as session:
        try:
            authenticate_client(session, provider.master, client_id, secret)
        except OAuthError:
            return False
        return True


def stored_hash(provider: Provider, client_id: str) -> str | None:
    with provider.database.session(readonly=True) as session:
        client = session.get(Client, client_id)
        assert client is not None
        return client.secret_hash


def test_create_prints_the_secret_once_and_stores_only_its_hash(
    admin: Admin, provider: Provider
) -> None:
    add_tenant(admin)
    made = document(admin("client", "create", "-t", "acme", *BILLING, "--json"))
    secret = made.pop("secret")
    assert made.keys() == CLIENT_FIELDS
    assert made["allowed_scopes"] == ["invoices:read", "invoices:write"]
    assert (made["confidential"], made["first_party"], made["status"]) == (True, False, "active")

    assert authenticates(provider, made["id"], secret)
    assert stored_hash(provider, made["id"]) == provider.master.keyed_hash(SECRET_PURPOSE, secret)
    assert secret not in database_text(provider)
    (row,) = events(provider, "client.created")
    assert (row.tenant_id, row.actor, row.client_id) == ("acme", ACTOR, made["id"])
    assert secret not in row.details
    # Read again, the client never shows its secret.
    shown = document(admin("client", "show", "-t", "acme", made["id"], "--json"))
    assert shown == made

    text = ok(admin("client", "create", "-t", "acme", *BILLING))
    line = next(line for line in text.stdout.splitlines() if line.startswith("client secret"))
    second = line.removeprefix("client secret (shown once): ")
    assert text.stdout.count(second) == 1
    assert "Tessera keeps only a hash of it" in text.stderr
    (listed,) = [
        c
        for c in document(admin("client", "list", "-t", "acme", "--json"))["clients"]
        if c["id"] != made["id"]
    ]
    assert authenticates(provider, listed["id"], second)


def test_a_public_first_party_client_has_no_secret(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    made = document(
        admin(
            "client",
            "create",
            "-t",
            "acme",
            "--name",
            "Web app",
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--audience",
            "acme-api",
            "--public",
            "--first-party",
            "--json",
        )
    )
    assert (made["secret"], made["confidential"], made["first_party"]) == (None, False, True)
    assert stored_hash(provider, made["id"]) is None
    assert authenticates(provider, made["id"], None)
    refused(
        admin("client", "rotate-secret", "-t", "acme", made["id"]),
        2,
        "a public client has no secret",
    )


def test_rotate_secret_replaces_it(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    made = document(admin("client", "create", "-t", "acme", *BILLING, "--json"))
    rotated = document(admin("client", "rotate-secret", "-t", "acme", made["id"], "--json"))
    assert rotated.keys() == CLIENT_FIELDS | {"secret"}
    assert rotated["secret"] != made["secret"]
    assert authenticates(provider, made["id"], rotated["secret"])
    assert not authenticates(provider, made["id"], made["secret"])
    assert rotated["secret"] not in database_text(provider)

    (row,) = events(provider, "client.secret_rotated")
    assert (row.tenant_id, row.actor, row.client_id) == ("acme", ACTOR, made["id"])
    assert rotated["secret"] not in row.details and made["secret"] not in row.details

    text = ok(admin("client", "rotate-secret", "-t", "acme", made["id"]))
    assert "client secret (shown once): " in text.stdout


def test_update_scopes_name_and_status(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    made = document(admin("client", "create", "-t", "acme", *BILLING, "--json"))
    client_id, secret = made["id"], made["secret"]

    changed = document(
        admin(
            "client",
            "update",
            "-t",
            "acme",
            client_id,
            "--name",
            "Invoices",
            "--scope",
            "invoices:read",
            "--json",
        )
    )
    assert (changed["name"], changed["allowed_scopes"]) == ("Invoices", ["invoices:read"])
    assert changed["updated"] == ["allowed_scopes", "name"]

    disabled = document(admin("client", "update", "-t", "acme", client_id, "--disable", "--json"))
    assert disabled["status"] == "disabled"
    assert not authenticates(provider, client_id, secret)
    enabled = document(admin("client", "update", "-t", "acme", client_id, "--enable", "--json"))
    assert enabled["status"] == "active"
    assert authenticates(provider, client_id, secret)

    rows = events(provider, "client.updated")
    assert [(row.actor, row.tenant_id, row.client_id) for row in rows] == [
        (ACTOR, "acme", client_id)
    ] * 3
    assert json.loads(rows[1].details) == {
        "before": {"status": "active"},
        "after": {"status": "disabled"},
    }


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("--grant", "password"), 2, "the password grant is for first-party clients"),
        (
            ("--grant", "implicit"),
            2,
            "grant types are some of client_credentials, password, refresh_token",
        ),
        ((), 2, "grant types are some of client_credentials, password, refresh_token"),
        (
            ("--grant", "client_credentials", "--public"),
            2,
            "client_credentials needs a confidential client",
        ),
        (
            ("--grant", "client_credentials"),
            2,
            "a client needs at least one audience without spaces",
        ),
        (
            ("--grant", "client_credentials", "--audience", "a", "--default-scope", "x"),
            2,
            "default scopes must be allowed scopes",
        ),
    ],
)
def test_create_refusals(
    admin: Admin, provider: Provider, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    add_tenant(admin)
    refused(admin("client", "create", "-t", "acme", "--name", "x", *args), exit_code, message)
    assert [event for event, _, _ in admin_changes(provider)] == ["tenant.created"]


def test_refusals(admin: Admin) -> None:
    add_tenant(admin)
    add_tenant(admin, "other")
    made = document(admin("client", "create", "-t", "acme", *BILLING, "--json"))
    refused(admin("client", "show", "-t", "other", made["id"]), 3, "no such client")
    refused(admin("client", "rotate-secret", "-t", "acme", "ghost"), 3, "no such client")
    refused(admin("client", "create", "-t", "nope", *BILLING), 3, "no such tenant")
    refused(
        admin("client", "update", "-t", "acme", made["id"], "--disable", "--enable"),
        2,
        "give --disable or --enable, not both",
    )
    refused(
        admin("client", "update", "-t", "acme", made["id"], "--default-scope", "orders:read"),
        2,
        "default scopes must be allowed scopes",
    )
    refused(
        admin("client", "update", "-t", "acme", made["id"]),
        2,
        "nothing to change: give --name, --scope, --default-scope, --disable or --enable",
    )
