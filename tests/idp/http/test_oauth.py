"""POST /oauth2/revoke (RFC 7009) and /oauth2/introspect (RFC 7662) over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from tessera import jose

from .checks import assert_no_store, assert_oauth_error, header, payload
from .servers import DEMO, WEB, IdpServer, client_credentials, introspect, password_grant


def resign(idp: IdpServer, token: str, **changes: Any) -> str:
    """The same claims with ``changes``, signed by the provider's own active key."""
    claims = {**payload(token), **changes}
    key = idp.provider.keyring.signing_key()
    return jose.jwt.encode(claims, key, headers={"typ": "at+jwt"})


@pytest.fixture(scope="module")
def other_secret(idp: IdpServer) -> str:
    """A second confidential client of the same tenant."""
    return idp.add_client("other")


# ---------------------------------------------------------------- revocation (RFC 7009)


def test_revoking_an_access_token_makes_it_inactive(idp: IdpServer, http: httpx.Client) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    assert introspect(http, token, DEMO, idp.demo_secret)["active"] is True
    response = http.post("/oauth2/revoke", data={"token": token}, auth=(DEMO, idp.demo_secret))
    assert response.status_code == 200, response.text
    assert_no_store(response)
    assert introspect(http, token, DEMO, idp.demo_secret) == {"active": False}


def test_revoking_twice_is_still_200(idp: IdpServer, http: httpx.Client) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    for _ in range(2):
        response = http.post("/oauth2/revoke", data={"token": token}, auth=(DEMO, idp.demo_secret))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 4000],
    ids=["opaque", "three-dots", "alg-none", "long"],
)
def test_revoking_an_unknown_token_is_200(idp: IdpServer, http: httpx.Client, token: str) -> None:
    response = http.post("/oauth2/revoke", data={"token": token}, auth=(DEMO, idp.demo_secret))
    assert response.status_code == 200, response.text


def test_the_token_type_hint_is_only_a_hint(idp: IdpServer, http: httpx.Client) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    response = http.post(
        "/oauth2/revoke",
        data={"token": token, "token_type_hint": "refresh_token"},
        auth=(DEMO, idp.demo_secret),
    )
    assert response.status_code == 200, response.text
    assert introspect(http, token, DEMO, idp.demo_secret) == {"active": False}


@pytest.mark.parametrize(
    "auth",
    [None, (DEMO, "wrong"), ("ghost", "x")],
    ids=["none", "wrong-secret", "unknown-client"],
)
def test_revocation_requires_client_authentication(
    idp: IdpServer, http: httpx.Client, auth: tuple[str, str] | None
) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    response = http.post("/oauth2/revoke", data={"token": token}, auth=auth)
    assert_oauth_error(response, 401, "invalid_client")
    assert "www-authenticate" in response.headers
    assert introspect(http, token, DEMO, idp.demo_secret)["active"] is True


def test_revocation_without_a_token_is_invalid_request(idp: IdpServer, http: httpx.Client) -> None:
    response = http.post("/oauth2/revoke", data={}, auth=(DEMO, idp.demo_secret))
    assert_oauth_error(response, 400, "invalid_request")


def test_a_client_cannot_revoke_another_clients_access_token(
    idp: IdpServer, http: httpx.Client, other_secret: str
) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    response = http.post("/oauth2/revoke", data={"token": token}, auth=("other", other_secret))
    assert_oauth_error(response, 400, "unauthorized_client")
    assert introspect(http, token, DEMO, idp.demo_secret)["active"] is True


def test_revoking_a_refresh_token_revokes_its_family(idp: IdpServer, http: httpx.Client) -> None:
    idp.add_user("rita", "rita password 1")
    first = password_grant(http, "rita", "rita password 1")
    second = http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": WEB,
        },
    ).json()
    assert "refresh_token" in second
    response = http.post(
        "/oauth2/revoke",
        data={"token": first["refresh_token"], "client_id": WEB},  # a spent one of the family
    )
    assert response.status_code == 200, response.text
    refused = http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": second["refresh_token"],
            "client_id": WEB,
        },
    )
    assert_oauth_error(refused, 400, "invalid_grant")
    assert introspect(http, second["refresh_token"], DEMO, idp.demo_secret) == {"active": False}


def test_a_client_cannot_revoke_another_clients_refresh_token(
    idp: IdpServer, http: httpx.Client
) -> None:
    idp.add_user("sam", "sam password 1")
    grant = password_grant(http, "sam", "sam password 1")
    response = http.post(
        "/oauth2/revoke",
        data={"token": grant["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(DEMO, idp.demo_secret),
    )
    assert_oauth_error(response, 400, "unauthorized_client")
    answer = introspect(http, grant["refresh_token"], DEMO, idp.demo_secret)
    assert answer["active"] is True


# ---------------------------------------------------------------- introspection (RFC 7662)


def test_introspection_describes_an_active_access_token(idp: IdpServer, http: httpx.Client) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret, scope="demo:read demo:write")[
        "access_token"
    ]
    response = http.post("/oauth2/introspect", data={"token": token}, auth=(DEMO, idp.demo_secret))
    assert response.status_code == 200, response.text
    assert_no_store(response)
    answer = response.json()
    claims = payload(token)
    assert answer["active"] is True
    assert answer["token_type"] == "Bearer"
    for name in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"):
        assert answer[name] == claims[name]
    assert answer["scope"] == "demo:read demo:write"


def test_introspection_describes_a_refresh_token_until_it_is_spent(
    idp: IdpServer, http: httpx.Client
) -> None:
    idp.add_user("tina", "tina password 1")
    grant = password_grant(http, "tina", "tina password 1")
    answer = introspect(http, grant["refresh_token"], DEMO, idp.demo_secret)
    assert answer["active"] is True
    assert answer["token_type"] == "refresh_token"
    assert answer["client_id"] == WEB
    assert answer["sub"] == payload(grant["access_token"])["sub"]
    rotated = http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
            "client_id": WEB,
        },
    ).json()
    assert introspect(http, grant["refresh_token"], DEMO, idp.demo_secret) == {"active": False}
    assert introspect(http, rotated["refresh_token"], DEMO, idp.demo_secret)["active"] is True


def _expired(idp: IdpServer, token: str) -> str:
    now = int(time.time())
    return resign(idp, token, iat=now - 3600, exp=now - 1800)


def _tampered(idp: IdpServer, token: str) -> str:
    head, _, signature = token.split(".")
    claims = {**payload(token), "scope": "demo:read demo:write admin"}
    return ".".join([head, jose.b64.encode_str(orjson.dumps(claims)), signature])


def _foreign(idp: IdpServer, token: str) -> str:
    key = jose.Key.generate("ES256", kid=header(token)["kid"])  # our kid, not our key
    return jose.jwt.encode(payload(token), key, headers={"typ": "at+jwt"})


def _wrong_issuer(idp: IdpServer, token: str) -> str:
    return resign(idp, token, iss="https://elsewhere.example")


INACTIVE_CASES = {
    "unknown opaque string": lambda idp, token: "no-such-token",
    "three dots of garbage": lambda idp, token: "a.b.c",
    "expired": _expired,
    "tampered claims": _tampered,
    "signed by a key that is not ours": _foreign,
    "another issuer": _wrong_issuer,
}


@pytest.mark.parametrize("case", list(INACTIVE_CASES), ids=list(INACTIVE_CASES))
def test_introspection_says_inactive_and_nothing_more(
    idp: IdpServer, http: httpx.Client, case: str
) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    presented = INACTIVE_CASES[case](idp, token)
    assert introspect(http, presented, DEMO, idp.demo_secret) == {"active": False}


def test_a_token_of_another_tenant_is_inactive_for_the_caller(
    idp: IdpServer, http: httpx.Client
) -> None:
    idp.add_tenant("acme")
    secret = idp.add_client("acme-svc", tenant_id="acme")
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    assert introspect(http, token, "acme-svc", secret) == {"active": False}
    own = client_credentials(http, "acme-svc", secret)["access_token"]
    assert introspect(http, own, "acme-svc", secret)["active"] is True


@pytest.mark.parametrize(
    "auth",
    [None, (DEMO, "wrong"), ("ghost", "x")],
    ids=["none", "wrong-secret", "unknown-client"],
)
def test_introspection_requires_client_authentication(
    idp: IdpServer, http: httpx.Client, auth: tuple[str, str] | None
) -> None:
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    response = http.post("/oauth2/introspect", data={"token": token}, auth=auth)
    assert_oauth_error(response, 401, "invalid_client")
    assert "active" not in response.json()


def test_a_public_client_cannot_introspect(idp: IdpServer, http: httpx.Client) -> None:
    # Its id is public (it ships in the browser app): anyone could scan tokens with it, or
    # check a stolen refresh token without spending it (RFC 7662 §4).
    token = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
    idp.add_user("uma", "uma password 1")
    refresh = password_grant(http, "uma", "uma password 1")["refresh_token"]
    for presented in (token, refresh):
        response = http.post("/oauth2/introspect", data={"token": presented, "client_id": WEB})
        assert_oauth_error(response, 401, "invalid_client")
        assert "active" not in response.json()


def test_introspection_without_a_token_is_invalid_request(
    idp: IdpServer, http: httpx.Client
) -> None:
    response = http.post("/oauth2/introspect", data={}, auth=(DEMO, idp.demo_secret))
    assert_oauth_error(response, 400, "invalid_request")
