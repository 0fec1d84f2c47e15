"""The authorization_code grant over real HTTP, redeemed by Authlib's OAuth 2.0 client with PKCE
and checked by its OpenID Connect ID-token rules; a code raced by two requests at once gives
tokens once. (The codes come from the provider's own component: the authorization endpoint
that hands them to browsers is the next step of issue 15.)"""

from __future__ import annotations

import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tessera.idp.services.authorization_codes import CodeGrant
from tessera.idp.services.clients import create_client

from .checks import assert_no_store, assert_oauth_error
from .servers import AUDIENCE, BOTH_DATABASES, IdpServer

with warnings.catch_warnings():  # Authlib 1.x's OIDC checks live beside its deprecated jose
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt
    from authlib.oidc.core import CodeIDToken

pytestmark = pytest.mark.idp(databases=BOTH_DATABASES)

REDIRECT = "https://app.example/callback"


def rp(idp: IdpServer) -> tuple[str, str]:
    """A confidential relying party allowed the code and refresh grants: (id, secret)."""
    with idp.provider.database.session() as session:
        made = create_client(
            session,
            idp.provider.master,
            tenant_id="default",
            name="relying party",
            grant_types=("authorization_code", "refresh_token"),
            audience=(AUDIENCE,),
            allowed_scopes=("demo:read",),
            redirect_uris=(REDIRECT,),
        )
    assert made.secret is not None
    return made.client.id, made.secret


def signed_in(
    idp: IdpServer,
    client_id: str,
    verifier: str,
    nonce: str,
    *,
    scope: str = "openid demo:read",
    email: str | None = None,
) -> tuple[str, str]:
    """What the authorization endpoint will do: a user signed in, a code for the client.
    Returns (user id, code)."""
    username = f"user-{uuid.uuid4().hex[:8]}"
    user_id = idp.add_user(username, f"pw-{uuid.uuid4().hex}", email=email)
    grant = CodeGrant(
        tenant_id="default",
        client_id=client_id,
        user_id=user_id,
        redirect_uri=REDIRECT,
        scope=scope,
        code_challenge=create_s256_code_challenge(verifier),
        auth_time=int(time.time()),
        amr="pwd",
        nonce=nonce,
    )
    with idp.provider.database.session() as session:
        return user_id, idp.provider.codes.issue(session, grant, now=int(time.time()))


def test_authlib_redeems_a_code_with_pkce_and_accepts_the_id_token(idp: IdpServer) -> None:
    client_id, secret = rp(idp)
    verifier, nonce = generate_token(64), generate_token(20)
    user_id, code = signed_in(idp, client_id, verifier, nonce)
    with OAuth2Client(client_id, secret, redirect_uri=REDIRECT) as oauth:
        token = oauth.fetch_token(f"{idp.url}/oauth2/token", code=code, code_verifier=verifier)
        keys = JsonWebKey.import_key_set(httpx.get(f"{idp.url}/.well-known/jwks.json").json())
        claims = authlib_jwt.decode(
            token["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"values": [idp.url]}},
            claims_params={
                "nonce": nonce,
                "client_id": client_id,
                "access_token": token["access_token"],
            },
        )
        claims.validate(leeway=5)
        assert claims["sub"] == user_id
        assert token["scope"] == "openid demo:read" and "refresh_token" in token

        refreshed = oauth.refresh_token(f"{idp.url}/oauth2/token")
        assert refreshed["id_token"] != token["id_token"]
        assert refreshed["refresh_token"] != token["refresh_token"]


def test_the_same_code_raced_twice_gives_tokens_once(idp: IdpServer) -> None:
    client_id, secret = rp(idp)
    verifier = generate_token(64)
    form = {
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    for _ in range(10):
        _, code = signed_in(idp, client_id, verifier, "n")

        def redeem(code: str = code) -> httpx.Response:
            with idp.client() as http:
                return http.post(
                    "/oauth2/token", data={**form, "code": code}, auth=(client_id, secret)
                )

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda _: redeem(), range(2)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 400], [answer.text for answer in answers]
        for answer in answers:
            assert_no_store(answer)
            if answer.status_code == 400:
                assert_oauth_error(answer, 400, "invalid_grant")


def test_a_replayed_code_makes_the_first_tokens_inactive(idp: IdpServer) -> None:
    client_id, secret = rp(idp)
    verifier = generate_token(64)
    _, code = signed_in(idp, client_id, verifier, "n")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    with idp.client() as http:
        first = http.post("/oauth2/token", data=form, auth=(client_id, secret)).json()
        assert_oauth_error(
            http.post("/oauth2/token", data=form, auth=(client_id, secret)), 400, "invalid_grant"
        )
        for token in (first["access_token"], first["refresh_token"]):
            described = http.post(
                "/oauth2/introspect", data={"token": token}, auth=(client_id, secret)
            ).json()
            assert described == {"active": False}
