"""``tessera admin client``: a confidential client's secret is printed once and stored only as
its keyed hash; rotation replaces it; disabling refuses the client; every change is audited once
as the operator, never with the secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera import jose
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
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "id_token_signed_response_alg",
    "token_endpoint_auth_method",
    "jwks",
    "created_at",
}
# A confidential client's credentials, as OAuth names them (the secret once, in one member).
CREDENTIALS = {"client_id", "client_secret"}
CALLBACK = "https://wiki.example/callback"
# The command's own example: an OpenID Connect web app.
WIKI = (
    "--name",
    "Wiki",
    "--grant",
    "authorization_code",
    "--grant",
    "refresh_token",
    "--redirect-uri",
    CALLBACK,
    "--json",
)
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
    secret = made.pop("client_secret")
    assert made.pop("client_id") == made["id"] and isinstance(secret, str)
    assert sum(secret in str(value) for value in made.values()) == 0  # printed once only
    assert made.keys() == CLIENT_FIELDS
    assert made["token_endpoint_auth_method"] == "client_secret_basic"
    assert (made["redirect_uris"], made["backchannel_logout_uri"]) == ([], None)
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
    assert (made["client_secret"], made["confidential"], made["first_party"]) == (None, False, True)
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
    assert rotated.keys() == CLIENT_FIELDS | CREDENTIALS
    assert rotated["client_secret"] != made["client_secret"]
    assert rotated["client_id"] == made["id"] and "secret" not in rotated
    assert authenticates(provider, made["id"], rotated["client_secret"])
    assert not authenticates(provider, made["id"], made["client_secret"])
    assert rotated["client_secret"] not in database_text(provider)

    (row,) = events(provider, "client.secret_rotated")
    assert (row.tenant_id, row.actor, row.client_id) == ("acme", ACTOR, made["id"])
    assert rotated["client_secret"] not in row.details and made["client_secret"] not in row.details

    text = ok(admin("client", "rotate-secret", "-t", "acme", made["id"]))
    assert "client secret (shown once): " in text.stdout


def test_update_scopes_name_and_status(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    made = document(admin("client", "create", "-t", "acme", *BILLING, "--json"))
    client_id, secret = made["id"], made["client_secret"]

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
            "grant types are some of authorization_code, client_credentials, password,"
            " refresh_token",
        ),
        (
            (),
            2,
            "grant types are some of authorization_code, client_credentials, password,"
            " refresh_token",
        ),
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
        (
            ("--grant", "authorization_code"),
            2,
            "the authorization_code grant needs a redirect URI",
        ),
        (
            ("--grant", "authorization_code", "--redirect-uri", "https://wiki.example/cb#x"),
            2,
            "a redirect URI has no fragment",
        ),
        (
            ("--grant", "authorization_code", "--redirect-uri", "http://wiki.example/cb"),
            2,
            "a redirect URI is https (http only on a loopback host)",
        ),
        (
            ("--grant", "authorization_code", "--redirect-uri", "::garbage::"),
            2,
            "a redirect URI is https, loopback http, or a reverse-domain private-use scheme",
        ),
        (
            (
                "--grant",
                "authorization_code",
                "--redirect-uri",
                CALLBACK,
                "--backchannel-logout-uri",
                "http://wiki.example/logout",
            ),
            2,
            "a back-channel logout URI is https (http only on a loopback host)",
        ),
        (
            (
                "--grant",
                "authorization_code",
                "--redirect-uri",
                CALLBACK,
                "--post-logout-redirect-uri",
                "https://wiki.example/bye#x",
            ),
            2,
            "a redirect URI has no fragment",
        ),
        (
            ("--grant", "client_credentials", "--audience", "a", "--redirect-uri", CALLBACK),
            2,
            "redirect and logout URIs are for clients of the authorization_code grant",
        ),
        (
            ("--grant", "refresh_token", "--audience", "a", "--redirect-uri", CALLBACK),
            2,
            "redirect and logout URIs are for clients of the authorization_code grant",
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
        "nothing to change: give --name, --scope, --default-scope, --redirect-uri,"
        " --post-logout-redirect-uri, --backchannel-logout-uri, --jwks, --disable or --enable",
    )


def test_an_oidc_web_app_gets_an_id_a_secret_and_its_redirect_uris(
    admin: Admin, provider: Provider
) -> None:
    add_tenant(admin)
    made = document(
        admin(
            "client",
            "create",
            "-t",
            "acme",
            *WIKI,
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--redirect-uri",
            CALLBACK,
            "--post-logout-redirect-uri",
            "https://wiki.example/bye",
            "--backchannel-logout-uri",
            "https://wiki.example/backchannel",
        )
    )
    assert made.keys() == CLIENT_FIELDS | CREDENTIALS
    client_id, secret = made["client_id"], made["client_secret"]
    assert client_id == made["id"] and isinstance(secret, str) and secret == made["client_secret"]
    assert authenticates(provider, client_id, secret)
    assert made["grant_types"] == ["authorization_code", "refresh_token"]
    assert made["redirect_uris"] == [CALLBACK, "http://127.0.0.1/callback"]
    assert made["post_logout_redirect_uris"] == ["https://wiki.example/bye"]
    assert made["backchannel_logout_uri"] == "https://wiki.example/backchannel"
    assert made["id_token_signed_response_alg"] == "RS256"
    assert made["token_endpoint_auth_method"] == "client_secret_basic"
    # No --audience: its access tokens are for itself.
    assert made["audience"] == [client_id]
    assert client_row_audience(provider, client_id) == client_id
    assert not made["first_party"] and "password" not in made["grant_types"]

    (row,) = events(provider, "client.created")
    after = json.loads(row.details)["after"]
    assert after["redirect_uris"] == made["redirect_uris"] and secret not in row.details
    shown = document(admin("client", "show", "-t", "acme", client_id, "--json"))
    assert shown == {key: made[key] for key in CLIENT_FIELDS}
    (listed,) = document(admin("client", "list", "-t", "acme", "--json"))["clients"]
    assert listed == shown
    text = ok(admin("client", "show", "-t", "acme", client_id)).stdout
    assert CALLBACK in text and "client_secret_basic" in text


def test_a_public_oidc_client_has_no_secret(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    made = document(admin("client", "create", "-t", "acme", *WIKI, "--public"))
    assert (made["client_secret"], made["confidential"]) == (None, False) and "secret" not in made
    assert made["token_endpoint_auth_method"] == "none"
    assert stored_hash(provider, made["client_id"]) is None
    assert authenticates(provider, made["client_id"], None)


def test_update_redirect_uris_is_audited_with_before_and_after(
    admin: Admin, provider: Provider
) -> None:
    add_tenant(admin)
    client_id = document(admin("client", "create", "-t", "acme", *WIKI))["id"]
    new = ("https://wiki.example/v2/callback", "https://wiki.example/v3/callback")
    changed = document(
        admin(
            "client",
            "update",
            "-t",
            "acme",
            client_id,
            "--redirect-uri",
            new[0],
            "--redirect-uri",
            new[1],
            "--post-logout-redirect-uri",
            "https://wiki.example/bye",
            "--backchannel-logout-uri",
            "https://wiki.example/backchannel",
            "--json",
        )
    )
    assert changed["redirect_uris"] == list(new)
    assert changed["post_logout_redirect_uris"] == ["https://wiki.example/bye"]
    assert changed["backchannel_logout_uri"] == "https://wiki.example/backchannel"
    assert changed["updated"] == [
        "backchannel_logout_uri",
        "post_logout_redirect_uris",
        "redirect_uris",
    ]
    cleared = document(
        admin(
            "client",
            "update",
            "-t",
            "acme",
            client_id,
            "--backchannel-logout-uri",
            "",
            "--post-logout-redirect-uri",
            "",
            "--json",
        )
    )
    assert (cleared["backchannel_logout_uri"], cleared["post_logout_redirect_uris"]) == (None, [])
    assert cleared["redirect_uris"] == list(new)

    first, second = (json.loads(row.details) for row in events(provider, "client.updated"))
    assert first == {
        "before": {
            "redirect_uris": CALLBACK,
            "post_logout_redirect_uris": "",
            "backchannel_logout_uri": None,
        },
        "after": {
            "redirect_uris": " ".join(new),
            "post_logout_redirect_uris": "https://wiki.example/bye",
            "backchannel_logout_uri": "https://wiki.example/backchannel",
        },
    }
    assert second == {
        "before": {
            "post_logout_redirect_uris": "https://wiki.example/bye",
            "backchannel_logout_uri": "https://wiki.example/backchannel",
        },
        "after": {"post_logout_redirect_uris": "", "backchannel_logout_uri": None},
    }
    assert all(row.actor == ACTOR for row in events(provider, "client.updated"))


def test_update_refuses_unusable_redirect_uris(admin: Admin, provider: Provider) -> None:
    add_tenant(admin)
    wiki = document(admin("client", "create", "-t", "acme", *WIKI))["id"]
    billing = document(admin("client", "create", "-t", "acme", *BILLING, "--json"))["id"]
    for client_id, args, message in [
        (wiki, ("--redirect-uri", ""), "the authorization_code grant needs a redirect URI"),
        (wiki, ("--redirect-uri", "https://wiki.example/#x"), "a redirect URI has no fragment"),
        (
            wiki,
            ("--backchannel-logout-uri", "com.example.wiki:/logout"),
            "a back-channel logout URI is https (http only on a loopback host)",
        ),
        (
            billing,
            ("--redirect-uri", CALLBACK),
            "redirect and logout URIs are for clients of the authorization_code grant",
        ),
    ]:
        refused(admin("client", "update", "-t", "acme", client_id, *args), 2, message)
    assert events(provider, "client.updated") == []
    shown = document(admin("client", "show", "-t", "acme", wiki, "--json"))
    assert (shown["redirect_uris"], shown["backchannel_logout_uri"]) == ([CALLBACK], None)


def client_row_audience(provider: Provider, client_id: str) -> str:
    with provider.database.session(readonly=True) as session:
        client = session.get(Client, client_id)
        assert client is not None
        return client.audience


def jwks_file(directory: Path, *keys: jose.Key, name: str = "client.jwks.json") -> Path:
    """A JSON file of the public JWK Set of ``keys``."""
    path = directory / name
    path.write_text(json.dumps({"keys": [key.public().to_jwk() for key in keys]}))
    return path


def test_a_client_created_with_jwks_has_no_secret_and_its_keys_are_replaced(
    admin: Admin, provider: Provider, tmp_path: Path
) -> None:
    add_tenant(admin)
    first, second = jose.Key.generate("ES256", kid="k1"), jose.Key.generate("EdDSA", kid="k2")
    made = document(
        admin(
            "client",
            "create",
            "-t",
            "acme",
            *BILLING,
            "--jwks",
            str(jwks_file(tmp_path, first)),
            "--json",
        )
    )
    assert made.keys() == CLIENT_FIELDS | CREDENTIALS
    assert (made["client_secret"], made["confidential"]) == (None, True) and "secret" not in made
    assert made["token_endpoint_auth_method"] == "private_key_jwt"
    assert made["jwks"] == {"keys": [first.public().to_jwk()]}
    assert stored_hash(provider, made["id"]) is None
    assert not authenticates(provider, made["id"], None)  # never by its id alone
    (created,) = events(provider, "client.created")
    assert json.loads(created.details)["after"]["jwks"] == [
        {"kid": "k1", "thumbprint": first.thumbprint()}
    ]
    refused(
        admin("client", "rotate-secret", "-t", "acme", made["id"]),
        2,
        "a client of private_key_jwt has no secret: it uses its keys",
    )
    text = ok(admin("client", "show", "-t", "acme", made["id"]))
    assert "kid k1" in text.stdout and "private_key_jwt" in text.stdout

    replaced = jwks_file(tmp_path, second, first, name="next.json")
    changed = document(
        admin("client", "update", "-t", "acme", made["id"], "--jwks", str(replaced), "--json")
    )
    assert changed["updated"] == ["jwks"]
    assert [key["kid"] for key in changed["jwks"]["keys"]] == ["k2", "k1"]
    (updated,) = events(provider, "client.updated")
    assert json.loads(updated.details) == {
        "before": {"jwks": [{"kid": "k1", "thumbprint": first.thumbprint()}]},
        "after": {
            "jwks": [
                {"kid": "k2", "thumbprint": second.thumbprint()},
                {"kid": "k1", "thumbprint": first.thumbprint()},
            ]
        },
    }
    # The log names the keys; the keys themselves are in the client's row only.
    for key in (first, second):
        assert key.public().to_jwk()["x"] not in created.details + updated.details


def test_jwks_refusals(admin: Admin, provider: Provider, tmp_path: Path) -> None:
    add_tenant(admin)
    key = jose.Key.generate("ES256")
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [key.to_jwk(private=True)]}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for path, exit_code, message in [
        (private, 2, "key 1 holds private members: a client registers its public keys only"),
        (broken, 2, "the JWK Set is not a JSON object"),
        (
            tmp_path / "missing.json",
            2,
            f"cannot read JWKS file '{tmp_path / 'missing.json'}': No such file or directory",
        ),
    ]:
        refused(
            admin("client", "create", "-t", "acme", *BILLING, "--jwks", str(path)),
            exit_code,
            message,
        )
    refused(
        admin(
            "client",
            "create",
            "-t",
            "acme",
            "--name",
            "Wiki",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            CALLBACK,
            "--public",
            "--jwks",
            str(jwks_file(tmp_path, key)),
        ),
        2,
        "a client with a JWK Set is confidential (it authenticates with its keys)",
    )
    assert [event for event, _, _ in admin_changes(provider)] == ["tenant.created"]

    billing = document(admin("client", "create", "-t", "acme", *BILLING, "--json"))["id"]
    refused(
        admin("client", "update", "-t", "acme", billing, "--jwks", str(jwks_file(tmp_path, key))),
        2,
        "only a client of private_key_jwt has a JWK Set (how a client authenticates is chosen at"
        " registration)",
    )
    assert events(provider, "client.updated") == []
