"""Registering a client's URIs for the code flow and logout: checked before anything is
written, stored without duplicates; what an admin registers and changes (a 422 for what
may not be, an OpenID Connect relying party's tokens for itself when it names no audience);
the public JWK Set of a client of private_key_jwt: which sets may be registered, and what the
audit log keeps of them (kids and thumbprints, never the keys)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tessera.idp.errors import AdminError, OAuthError
from tessera.idp.provider import Provider
from tessera.idp.services.clients import (
    auth_method,
    authenticate_client,
    create_client,
    describe_client,
    register_client,
    rotate_secret,
    update_client,
)
from tessera.idp.store.models import Client
from tessera.jose import Key, b64

from ..conftest import add_client, audit_events, client_row, row_counts


def test_registered_uris_are_stored_once_each(provider: Provider, tenant: str) -> None:
    uris = ("https://app.example/cb", "http://127.0.0.1/cb", "https://app.example/cb")
    made = add_client(provider, tenant, grant_types=("authorization_code",), redirect_uris=uris)
    row = client_row(provider, made.id)
    assert row.redirect_uris.split() == ["https://app.example/cb", "http://127.0.0.1/cb"]
    assert (row.post_logout_redirect_uris, row.backchannel_logout_uri) == ("", None)


def test_the_code_grant_needs_a_redirect_uri(provider: Provider, tenant: str) -> None:
    before = row_counts(provider)
    with pytest.raises(ValueError, match="the authorization_code grant needs a redirect URI"):
        add_client(provider, tenant, grant_types=("authorization_code",))
    assert row_counts(provider) == before


@pytest.mark.parametrize(
    ("field", "uri", "message"),
    [
        ("redirect_uris", "https://app.example/cb#x", "a redirect URI has no fragment"),
        ("redirect_uris", "http://app.example/cb", "http only on a loopback host"),
        ("post_logout_redirect_uris", "javascript:alert(1)", "private-use scheme"),
        ("backchannel_logout_uri", "com.example.app:/logout", "a back-channel logout URI is"),
        ("backchannel_logout_uri", "http://rp.example/logout", "a back-channel logout URI is"),
    ],
)
def test_an_unsafe_uri_is_refused_before_anything_is_written(
    provider: Provider, tenant: str, field: str, uri: str, message: str
) -> None:
    before = row_counts(provider)
    uris: dict[str, Any] = {"redirect_uris": ("https://app.example/cb",)}
    uris[field] = uri if field == "backchannel_logout_uri" else (uri,)
    with pytest.raises(ValueError, match=message), provider.database.session() as session:
        create_client(
            session,
            provider.master,
            tenant_id=tenant,
            name="rp",
            grant_types=("authorization_code",),
            audience=("https://api.example",),
            **uris,
        )
    assert row_counts(provider) == before


def register(provider: Provider, tenant: str, **options: Any) -> Client:
    wanted: dict[str, Any] = {
        "name": "wiki",
        "grant_types": ("authorization_code",),
        "redirect_uris": ("https://wiki.example/cb",),
        **options,
    }
    with provider.database.session() as session:
        made = register_client(session, provider.master, tenant_id=tenant, **wanted)
        session.expunge(made.client)
        return made.client


def test_a_relying_party_without_audience_is_its_own(provider: Provider, tenant: str) -> None:
    client = register(provider, tenant)
    assert client.audience == client.id and len(client.id) == 24
    named = register(provider, tenant, audience=("https://api.example",))
    assert named.audience == "https://api.example"
    with pytest.raises(AdminError, match="at least one audience"):
        register(provider, tenant, grant_types=("client_credentials",), redirect_uris=())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"id_token_signed_response_alg": "HS256"}, "ID tokens are signed with one of RS256"),
        ({"redirect_uris": ()}, "the authorization_code grant needs a redirect URI"),
        ({"redirect_uris": ("https://wiki.example/cb",) * 11}, "at most 10 redirect URIs"),
        ({"backchannel_logout_uri": ""}, "a back-channel logout URI has 1 to 2000 characters"),
        (
            {"grant_types": ("refresh_token",), "audience": ("api",)},
            "are for clients of the authorization_code grant",
        ),
    ],
)
def test_what_may_not_be_registered_is_a_422_and_nothing_is_written(
    provider: Provider, tenant: str, options: dict[str, Any], message: str
) -> None:
    before = row_counts(provider)
    with pytest.raises(AdminError, match=message) as refused:
        register(provider, tenant, **options)
    assert refused.value.code == "invalid"
    assert row_counts(provider) == before


def test_a_client_whose_stored_uris_break_todays_rules_can_still_be_disabled(
    provider: Provider, tenant: str
) -> None:
    client_id = register(provider, tenant).id
    with provider.database.session() as session:
        client = session.get(Client, client_id)
        assert client is not None
        client.redirect_uris = "http://legacy.example/cb"  # refused since: not https
    with provider.database.session() as session:
        client = session.get(Client, client_id)
        assert client is not None
        assert update_client(session, client, status="disabled") == {"status": "disabled"}
        with pytest.raises(AdminError, match="http only on a loopback host"):
            update_client(session, client, backchannel_logout_uri="https://wiki.example/bc")
    assert client_row(provider, client_id).status == "disabled"


# ---------------------------------------------------------------------- private_key_jwt


def public_jwk(alg: str, /, **members: Any) -> dict[str, Any]:
    """The public JWK of a new key for ``alg``, with ``members`` added (``None`` removes)."""
    jwk = {**Key.generate(alg).public().to_jwk(), **members}
    return {name: value for name, value in jwk.items() if value is not None}


def rsa_jwk(bits: int) -> dict[str, Any]:
    """A public RSA JWK of a ``bits``-bit modulus (not a product of primes: only its size is
    looked at, and generating a real one of odd sizes takes long)."""
    return {"kty": "RSA", "n": b64.encode_uint(2 ** (bits - 1) + 1), "e": "AQAB"}


def keyed(provider: Provider, tenant: str, jwks: Any, **options: Any) -> Client:
    with provider.database.session() as session:
        made = create_client(
            session,
            provider.master,
            tenant_id=tenant,
            name="batch",
            grant_types=("client_credentials",),
            audience=("https://api.example",),
            jwks=jwks,
            **options,
        )
        assert made.secret is None
        session.expunge(made.client)
        return made.client


def test_a_client_with_a_jwk_set_has_no_secret_and_authenticates_by_its_keys(
    provider: Provider, tenant: str
) -> None:
    keys = [public_jwk("ES256"), public_jwk("RS256"), public_jwk("EdDSA", kid="ed-1")]
    keys += [public_jwk("ES384", alg=None), public_jwk("ES512")]
    client = keyed(provider, tenant, {"keys": keys})
    assert client.secret_hash is None and auth_method(client) == "private_key_jwt"
    described = describe_client(client)
    assert described["confidential"] is True
    assert described["token_endpoint_auth_method"] == "private_key_jwt"
    assert [key["kid"] for key in described["jwks"]["keys"]] == [key["kid"] for key in keys[:3]] + [
        Key.from_jwk(keys[3]).thumbprint(),  # a key without kid is named by its thumbprint
        keys[4]["kid"],
    ]
    assert "alg" not in described["jwks"]["keys"][3]
    for stored, given in zip(described["jwks"]["keys"], keys, strict=True):
        assert Key.from_jwk(stored) == Key.from_jwk(given)
    # Neither by id nor by a secret: only an assertion authenticates it.
    with provider.database.session(readonly=True) as session:
        for secret in (None, "", "guess"):
            with pytest.raises(OAuthError, match="invalid_client"):
                authenticate_client(session, provider.master, client.id, secret)


def test_the_stored_set_is_the_public_keys_alone(provider: Provider, tenant: str) -> None:
    jwk = public_jwk("ES256", use="sig", key_ops=["verify"], x5u="https://x.example/k")
    client = keyed(provider, tenant, json.dumps({"keys": [jwk], "extra": 1}))
    assert client.jwks is not None
    (stored,) = json.loads(client.jwks)["keys"]
    assert stored == {name: jwk[name] for name in ("kty", "crv", "x", "y", "kid", "alg", "use")} | {
        "key_ops": ["verify"]
    }


BAD_JWKS: list[tuple[Any, str]] = [
    ({"keys": [Key.generate("ES256").to_jwk(private=True)]}, "key 1 holds private members"),
    ({"keys": [public_jwk("ES256"), Key.generate("RS256").to_jwk(private=True)]}, "key 2 holds"),
    ({"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}, "private"),
    ({"keys": [{"kty": "oct"}]}, "keys are RSA, EC or OKP"),
    ({"keys": [{"kty": "whatever"}]}, "keys are RSA, EC or OKP"),
    ({"keys": [rsa_jwk(1024)]}, "RSA key shorter than 2048 bits"),
    ({"keys": [rsa_jwk(8200)]}, "an RSA key has 2048 to 8192 bits"),
    ({"keys": [public_jwk("ES256K")]}, "the curves are P-256, P-384, P-521 and Ed25519"),
    ({"keys": [public_jwk("Ed448")]}, "the curves are P-256, P-384, P-521 and Ed25519"),
    ({"keys": [public_jwk("RS256", alg="RS512")]}, "alg is one of RS256, PS256, ES256"),
    ({"keys": [public_jwk("RS256", alg="HS256")]}, "algorithm does not fit the key"),
    ({"keys": [public_jwk("ES256", use="enc")]}, "not a key for verifying signatures"),
    ({"keys": [public_jwk("ES256", key_ops=["sign"])]}, "not a key for verifying signatures"),
    ({"keys": [public_jwk("ES256", x="AAAA")]}, "key 1: invalid JWK"),
    ({"keys": [public_jwk("ES256", kid="a\x00b")]}, "a kid has 1 to 200 printable characters"),
    ({"keys": [public_jwk("ES256", kid="k" * 201)]}, "a kid has 1 to 200"),
    ({"keys": [public_jwk("ES256", kid=7)]}, "a kid has 1 to 200"),
    ({"keys": [public_jwk("ES256", kid="k"), public_jwk("EdDSA", kid="k")]}, "a kid of its own"),
    ({"keys": [public_jwk("ES256", kid="k1") | {"kid": "k1"}] * 2}, "a kid of its own"),
    ({"keys": [["not", "an", "object"]]}, "key 1 is not a JSON object"),
    ({"keys": []}, "a JWK Set holds 1 to 10 keys"),
    ({"keys": [public_jwk("ES256") for _ in range(11)]}, "a JWK Set holds 1 to 10 keys"),
    ({"keys": public_jwk("ES256")}, "a JWK Set holds 1 to 10 keys"),
    (public_jwk("ES256"), "a JWK Set holds 1 to 10 keys"),
    ("[]", "the JWK Set is not a JSON object"),
    ('{"keys": [', "the JWK Set is not a JSON object"),
]


@pytest.mark.parametrize(("jwks", "message"), BAD_JWKS, ids=[m for _, m in BAD_JWKS])
def test_a_jwk_set_that_may_not_be_registered_is_refused_before_anything_is_written(
    provider: Provider, tenant: str, jwks: Any, message: str
) -> None:
    before = row_counts(provider)
    with pytest.raises(ValueError, match=re.escape(message)):
        keyed(provider, tenant, jwks)
    assert row_counts(provider) == before


def test_the_same_key_twice_under_two_kids_is_refused(provider: Provider, tenant: str) -> None:
    jwk = public_jwk("ES256")
    with pytest.raises(ValueError, match="a key is in the JWK Set twice"):
        keyed(provider, tenant, {"keys": [jwk, {**jwk, "kid": "again"}]})


def test_a_client_with_a_jwk_set_is_confidential(provider: Provider, tenant: str) -> None:
    with pytest.raises(ValueError, match="a client with a JWK Set is confidential"):
        keyed(provider, tenant, {"keys": [public_jwk("ES256")]}, confidential=False)


def test_registering_and_replacing_keys_is_audited_by_kid_and_thumbprint(
    provider: Provider, tenant: str
) -> None:
    first, second = Key.generate("ES256", kid="k1"), Key.generate("RS256", kid="k2")
    client = register(
        provider,
        tenant,
        grant_types=("client_credentials",),
        audience=("https://api.example",),
        redirect_uris=(),
        jwks={"keys": [first.public().to_jwk()]},
    )
    assert auth_method(client) == "private_key_jwt"
    (created,) = [row for row in audit_events(provider) if row.event == "client.created"]
    after = json.loads(created.details)["after"]
    assert after["jwks"] == [{"kid": "k1", "thumbprint": first.thumbprint()}]
    assert after["confidential"] is True
    public_x = first.public().to_jwk()["x"]
    assert public_x not in created.details

    with provider.database.session() as session:
        row = session.get(Client, client.id)
        assert row is not None
        replaced = {"keys": [second.public().to_jwk(), first.public().to_jwk()]}
        assert update_client(session, row, jwks=replaced) == {
            "jwks": [
                {"kid": "k2", "thumbprint": second.thumbprint()},
                {"kid": "k1", "thumbprint": first.thumbprint()},
            ]
        }
        assert update_client(session, row, jwks=replaced) == {}  # the same keys: no change
        with pytest.raises(AdminError, match="a client of private_key_jwt has no secret"):
            rotate_secret(session, provider.master, row)
        with pytest.raises(AdminError, match="key 1 holds private members"):
            update_client(session, row, jwks={"keys": [second.to_jwk(private=True)]})
    (updated,) = [row for row in audit_events(provider) if row.event == "client.updated"]
    assert json.loads(updated.details) == {
        "before": {"jwks": [{"kid": "k1", "thumbprint": first.thumbprint()}]},
        "after": {
            "jwks": [
                {"kid": "k2", "thumbprint": second.thumbprint()},
                {"kid": "k1", "thumbprint": first.thumbprint()},
            ]
        },
    }
    assert second.public().to_jwk()["n"] not in updated.details
    assert len(json.loads(client_row(provider, client.id).jwks or "")["keys"]) == 2


def test_keys_are_not_given_to_a_client_with_a_secret_or_a_public_one(
    provider: Provider, tenant: str
) -> None:
    secret_client = register(provider, tenant)
    public_client = register(provider, tenant, confidential=False)
    jwks = {"keys": [public_jwk("ES256")]}
    with provider.database.session() as session:
        for client_id in (secret_client.id, public_client.id):
            row = session.get(Client, client_id)
            assert row is not None
            with pytest.raises(AdminError, match="only a client of private_key_jwt has a JWK Set"):
                update_client(session, row, jwks=jwks)
    assert client_row(provider, secret_client.id).jwks is None
    assert client_row(provider, public_client.id).jwks is None
    with pytest.raises(AdminError, match="a client with a JWK Set is confidential"):
        register(provider, tenant, confidential=False, jwks=jwks)
