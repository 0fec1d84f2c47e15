"""Relying parties nobody here wrote sign people in through Tessera, unchanged: Authlib's OAuth 2.0
client with its OpenID Connect ID-token checks, and pyoidc (``oic``) with its own. Each starts
from discovery, sends the browser (httpx with cookies, through the real sign-in page) to the
authorization endpoint with PKCE, redeems the code, validates the ID token, reads userinfo,
refreshes, and logs out at the end-session endpoint."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .browsing import Browser, person, relying_party
from .checks import payload
from .servers import BOTH_DATABASES, CHEAP_ARGON2, IdpServer

with warnings.catch_warnings():  # Authlib 1.x's OIDC checks live beside its deprecated jose
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt
    from authlib.oidc.core import CodeIDToken

from oic import rndstr
from oic.oic import Client as PyoidcClient
from oic.oic.message import AuthorizationResponse, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, **CHEAP_ARGON2)

CALLBACK = "https://rp.example/callback"
AFTER = "https://rp.example/signed-out"


@pytest.fixture
def browser(idp: IdpServer) -> Iterator[Browser]:
    browser = Browser(idp)
    yield browser
    browser.close()


def through_the_pages(browser: Browser, url: str, username: str, password: str) -> str:
    """Open ``url`` (an authorization request), sign in on the page; the callback URL the
    browser is sent back to."""
    page = browser.http.get(url)
    assert page.status_code == 200, page.text[:300]
    back = browser.sign_in(page, username, password)
    assert back.status_code == 303, back.text[:300]
    location: str = back.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return location


def test_authlib_signs_in_refreshes_and_logs_out(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(
        idp, redirect_uris=(CALLBACK,), post_logout_redirect_uris=(AFTER,)
    )
    username, password, user_id = person(idp, email="ada@example.org")
    metadata = httpx.get(f"{idp.url}/.well-known/openid-configuration").json()
    nonce, verifier = generate_token(20), generate_token(48)
    with OAuth2Client(
        client_id,
        secret,
        scope="openid profile email offline_access",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    ) as oauth:
        url, state = oauth.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = through_the_pages(browser, url, username, password)
        answered = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        assert answered["state"] == state and answered["iss"] == metadata["issuer"]  # RFC 9207

        token = oauth.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        keys = JsonWebKey.import_key_set(httpx.get(metadata["jwks_uri"]).json())
        claims = authlib_jwt.decode(
            token["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"values": [metadata["issuer"]]}},
            claims_params={
                "nonce": nonce,
                "client_id": client_id,
                "access_token": token["access_token"],
            },
        )
        claims.validate(leeway=5)  # iss, aud, exp, iat, nonce, at_hash, auth_time
        assert claims["sub"] == user_id

        userinfo = oauth.get(metadata["userinfo_endpoint"]).json()
        assert userinfo["sub"] == user_id and userinfo["email"] == "ada@example.org"
        assert userinfo["preferred_username"] == username

        refreshed = oauth.refresh_token(metadata["token_endpoint"])
        assert payload(refreshed["id_token"])["sub"] == user_id

    logout = browser.http.get(
        metadata["end_session_endpoint"],
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": AFTER,
            "state": "bye",
        },
    )
    assert logout.status_code == 303 and logout.headers["location"] == AFTER + "?state=bye"
    assert browser.session_cookie() is None


def test_pyoidc_signs_in_with_its_own_id_token_checks(idp: IdpServer, browser: Browser) -> None:
    client_id, secret = relying_party(idp, redirect_uris=(CALLBACK,))
    username, password, user_id = person(idp, email="grace@example.org")
    rp = PyoidcClient(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(idp.url)  # discovery, and the JWKS into its key jar
    rp.store_registration_info(
        RegistrationResponse(
            client_id=client_id,
            client_secret=secret,
            redirect_uris=[CALLBACK],
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    state, nonce = rndstr(), rndstr()
    challenge, verifier = rp.add_code_challenge()
    request = rp.construct_AuthorizationRequest(
        request_args={
            "response_type": "code",
            "scope": ["openid", "profile", "email"],
            "redirect_uri": CALLBACK,
            "state": state,
            "nonce": nonce,
            **challenge,
        }
    )
    url = request.request(rp.authorization_endpoint)
    callback = through_the_pages(browser, url, username, password)

    answer = rp.parse_response(
        AuthorizationResponse, info=urlsplit(callback).query, sformat="urlencoded"
    )
    assert isinstance(answer, AuthorizationResponse) and answer["state"] == state
    tokens = rp.do_access_token_request(
        state=state,
        request_args={"code": answer["code"], "code_verifier": verifier},
        authn_method="client_secret_basic",
    )
    id_token: dict[str, Any] = dict(tokens["id_token"])  # verified by pyoidc: signature, iss,
    assert id_token["sub"] == user_id and id_token["nonce"] == nonce  # aud, exp, nonce
    assert id_token["aud"] == [client_id] or id_token["aud"] == client_id

    userinfo = rp.do_user_info_request(state=state)
    assert userinfo["sub"] == user_id and userinfo["email"] == "grace@example.org"

    refreshed = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert "access_token" in refreshed and refreshed["access_token"] != tokens["access_token"]
