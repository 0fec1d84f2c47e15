"""The whole flow over real HTTP: the provider mints, a guarded API accepts or refuses.

client_credentials, refresh rotation and reuse detection run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import httpx
import pytest

from ..idp.http.checks import assert_oauth_error, payload
from ..idp.http.servers import (
    DEMO,
    WEB,
    IdpServer,
    client_credentials,
    introspect,
    password_grant,
    serving,
)
from .conftest import ApiFactory


def refresh_grant(http: httpx.Client, refresh_token: str) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": WEB},
    )


def test_client_credentials_token_opens_an_api_that_knows_only_the_issuer_url(
    any_idp: IdpServer, protected_api: ApiFactory
) -> None:
    api = protected_api(any_idp.url)
    with any_idp.client() as http:
        token = client_credentials(http, DEMO, any_idp.demo_secret)["access_token"]

    response = api.get("/whoami", token)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": DEMO,
        "client_id": DEMO,
        "tenant": "default",
        "scopes": ["demo:read"],
        "jti": payload(token)["jti"],
    }
    assert api.keys.url == f"{any_idp.url}/.well-known/jwks.json"  # found by discovery
    assert api.keys.fetches == 1


def test_the_api_refuses_a_request_without_a_token(
    idp: IdpServer, protected_api: ApiFactory
) -> None:
    api = protected_api(idp.url)
    response = api.get("/whoami", None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


def test_the_api_refuses_a_token_without_the_scope_and_takes_one_with_it(
    idp: IdpServer, protected_api: ApiFactory
) -> None:
    api = protected_api(idp.url)
    with idp.client() as http:
        reader = client_credentials(http, DEMO, idp.demo_secret)["access_token"]
        writer = client_credentials(http, DEMO, idp.demo_secret, scope="demo:write")["access_token"]
    refused = api.get("/write", reader)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert 'scope="demo:write"' in refused.headers["www-authenticate"]
    accepted = api.get("/write", writer)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"written_by": DEMO}


def test_the_api_refuses_a_token_for_another_issuer(
    idp: IdpServer, protected_api: ApiFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with serving("sqlite", tmp_path_factory.mktemp("other")) as other, other.client() as http:
        foreign = client_credentials(http, DEMO, other.demo_secret)["access_token"]
    api = protected_api(idp.url)
    response = api.get("/whoami", foreign)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_refresh_rotation_gives_tokens_the_api_accepts(
    any_idp: IdpServer, protected_api: ApiFactory
) -> None:
    api = protected_api(any_idp.url)
    user_id = any_idp.add_user("ada", "ada's long password")
    with any_idp.client() as http:
        first = password_grant(http, "ada", "ada's long password")
        assert api.get("/whoami", first["access_token"]).json()["sub"] == user_id

        response = refresh_grant(http, first["refresh_token"])
        assert response.status_code == 200, response.text
        second = response.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert payload(second["access_token"])["jti"] != payload(first["access_token"])["jti"]
        whoami = api.get("/whoami", second["access_token"])
        assert whoami.status_code == 200, whoami.text
        assert whoami.json()["sub"] == user_id
        assert whoami.json()["client_id"] == WEB

        third = refresh_grant(http, second["refresh_token"])
        assert third.status_code == 200, third.text
        assert introspect(http, second["refresh_token"], DEMO, any_idp.demo_secret) == {
            "active": False
        }


def test_refresh_token_reuse_revokes_the_whole_family(any_idp: IdpServer) -> None:
    any_idp.add_user("eve", "eve's long password")
    with any_idp.client() as http:
        first = password_grant(http, "eve", "eve's long password")
        second = refresh_grant(http, first["refresh_token"])
        assert second.status_code == 200, second.text

        replay = refresh_grant(http, first["refresh_token"])  # a thief replays the spent one
        assert_oauth_error(replay, 400, "invalid_grant")
        # ... and the legitimate holder's current token dies with the family
        assert_oauth_error(
            refresh_grant(http, second.json()["refresh_token"]), 400, "invalid_grant"
        )
        answer = introspect(http, second.json()["refresh_token"], DEMO, any_idp.demo_secret)
        assert answer == {"active": False}
