"""Clients nobody here wrote, against the provider over real HTTP: PyJWT's PyJWKClient verifies
our tokens from our JWKS URL; Authlib's OAuth2 client gets tokens, refreshes, revokes."""

from __future__ import annotations

import warnings
from typing import Any

import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError

with warnings.catch_warnings():  # Authlib would rather run on httpx2; httpx is what we have
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

from ..idp.http.servers import AUDIENCE, DEMO, WEB, IdpServer, client_credentials, introspect
from .conftest import ApiFactory


def metadata(idp: IdpServer) -> dict[str, Any]:
    with idp.client() as http:
        answer: dict[str, Any] = http.get("/.well-known/oauth-authorization-server").json()
    return answer


def test_pyjwt_jwks_client_verifies_our_tokens(idp: IdpServer) -> None:
    with idp.client() as http:
        token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    keys = jwt.PyJWKClient(metadata(idp)["jwks_uri"], cache_keys=False)
    signing_key = keys.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        audience=AUDIENCE,
        issuer=idp.url,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    assert claims["sub"] == DEMO
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"

    head, body, signature = token.split(".")
    forged = ".".join([head, body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB"), signature])
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(forged, signing_key.key, algorithms=["ES256"], audience=AUDIENCE)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials_token_opens_the_guarded_api(
    idp: IdpServer, protected_api: ApiFactory, method: str
) -> None:
    api = protected_api(idp.url)
    with OAuth2Client(DEMO, idp.demo_secret, token_endpoint_auth_method=method) as client:
        token = client.fetch_token(
            metadata(idp)["token_endpoint"], grant_type="client_credentials", scope="demo:write"
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "demo:write"
        response = client.get(f"{api.url}/write")  # Authlib adds the bearer token itself
    assert response.status_code == 200, response.text
    assert response.json() == {"written_by": DEMO}


def test_authlib_password_grant_refreshes_with_rotation(
    idp: IdpServer, protected_api: ApiFactory
) -> None:
    api = protected_api(idp.url)
    user_id = idp.add_user("ivan", "ivan's long password")
    endpoint = metadata(idp)["token_endpoint"]
    with OAuth2Client(WEB, token_endpoint_auth_method="none") as client:
        first = client.fetch_token(endpoint, username="ivan", password="ivan's long password")
        assert first["refresh_token"]
        assert client.get(f"{api.url}/whoami").json()["sub"] == user_id

        second = client.refresh_token(endpoint)
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        whoami = client.get(f"{api.url}/whoami")
        assert whoami.status_code == 200, whoami.text
        assert whoami.json()["sub"] == user_id

        with pytest.raises(OAuthError) as refused:  # the spent token again: reuse
            client.refresh_token(endpoint, refresh_token=first["refresh_token"])
        assert refused.value.error == "invalid_grant"
        with pytest.raises(OAuthError):  # the family is gone
            client.refresh_token(endpoint, refresh_token=second["refresh_token"])


def test_authlib_revokes_and_introspects(idp: IdpServer) -> None:
    meta = metadata(idp)
    with OAuth2Client(DEMO, idp.demo_secret) as client:
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        access = token["access_token"]
        described = client.introspect_token(meta["introspection_endpoint"], token=access)
        assert described.status_code == 200
        assert described.json()["active"] is True
        revoked = client.revoke_token(
            meta["revocation_endpoint"], token=access, token_type_hint="access_token"
        )
        assert revoked.status_code == 200, revoked.text
    with idp.client() as http:
        assert introspect(http, access, DEMO, idp.demo_secret) == {"active": False}
