"""Discovery (RFC 8414, OpenID Connect Discovery) and the JWK Set, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tessera import jose

from .checks import header, payload
from .servers import AUDIENCE, DEMO, IdpServer, client_credentials

METADATA = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]


@pytest.mark.parametrize("path", METADATA)
def test_metadata_issuer_is_the_iss_of_our_tokens(
    idp: IdpServer, http: httpx.Client, path: str
) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    metadata = response.json()
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    assert metadata["issuer"] == payload(token)["iss"] == idp.url
    for name in (
        "jwks_uri",
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ):
        assert metadata[name].startswith(idp.url + "/")
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "password",
        "urn:tessera:params:oauth:grant-type:mfa-otp",  # a password login's second factor
    }
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",  # a public client
    }
    # private_key_jwt assertions: asymmetric algorithms only.
    assert set(metadata["token_endpoint_auth_signing_alg_values_supported"]) == {
        "RS256",
        "PS256",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
    }
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]
    # OpenID Connect requires RS256 for ID tokens; the keyring makes each key on first use.
    assert metadata["id_token_signing_alg_values_supported"][0] == "RS256"
    assert {"ES256", "EdDSA"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert {"sub", "auth_time", "nonce", "sid", "email"} <= set(metadata["claims_supported"])
    assert metadata["userinfo_endpoint"] == f"{idp.url}/oauth2/userinfo"


def test_both_metadata_documents_agree(http: httpx.Client) -> None:
    first, second = (http.get(path).json() for path in METADATA)
    assert first == second


@pytest.mark.parametrize(
    "name", ["token_endpoint", "revocation_endpoint", "introspection_endpoint"]
)
def test_the_advertised_endpoints_answer(http: httpx.Client, name: str) -> None:
    url = http.get(METADATA[1]).json()[name]
    response = http.post(url, data={"token": "x", "grant_type": "client_credentials"})
    assert response.status_code == 401  # there, and asking who we are
    assert response.json()["error"] == "invalid_client"


def test_jwks_uri_serves_the_keys_that_verify_our_tokens(
    idp: IdpServer, http: httpx.Client
) -> None:
    jwks_uri = http.get(METADATA[0]).json()["jwks_uri"]
    response = http.get(jwks_uri)
    assert response.status_code == 200
    keys = jose.KeySet.from_jwks(response.json())
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    assert keys.get(header(token)["kid"]) is not None
    verifier = jose.Verifier(
        keys, algorithms=["ES256"], issuer=idp.url, audience=AUDIENCE, typ="at+jwt"
    )
    assert verifier.verify(token)["sub"] == DEMO


def test_jwks_is_cacheable_for_the_configured_max_age(idp: IdpServer, http: httpx.Client) -> None:
    response = http.get("/.well-known/jwks.json")
    directives = {part.strip() for part in response.headers["cache-control"].split(",")}
    assert f"max-age={idp.settings.jwks_max_age}" in directives
    assert "no-store" not in directives


def test_jwks_publishes_public_keys_only(http: httpx.Client) -> None:
    for jwk in http.get("/.well-known/jwks.json").json()["keys"]:
        assert jwk["kty"] == "EC"
        assert {"d", "p", "q", "dp", "dq", "qi", "k"}.isdisjoint(jwk)
        assert jwk["kid"]
        assert jwk.get("use", "sig") == "sig"
