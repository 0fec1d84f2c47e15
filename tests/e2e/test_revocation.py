"""Revocation reaches every guard: the provider writes it to its database (introspection says
inactive) and publishes it on Redis, where a guard's RedisRevocationList hears it at once."""

from __future__ import annotations

import time

import httpx

from tessera.guard.revocation_redis import RedisRevocationList

from ..idp.http.servers import DEMO, IdpServer, client_credentials, introspect
from ..services import REDIS_URL
from .api import ProtectedApi
from .conftest import ApiFactory

# How soon a guard must refuse a token the provider has just revoked.
PROPAGATION = 0.100


def refused_within(api: ProtectedApi, token: str, seconds: float) -> float | None:
    """How long until ``api`` refuses ``token`` (polled over HTTP); ``None`` if it never did."""
    started = time.monotonic()
    while True:
        response = api.get("/whoami", token)
        elapsed = time.monotonic() - started
        if response.status_code == 401:
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            assert response.json()["error_description"] == "revoked"
            return elapsed
        assert response.status_code == 200, response.text
        if elapsed > seconds:
            return None
        time.sleep(0.002)


def browser_login(http: httpx.Client, username: str, password: str) -> tuple[str, str, str]:
    """POST /auth/login; the access token, the refresh cookie and the CSRF cookie."""
    http.cookies.clear()
    response = http.post("/auth/login", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    refresh, csrf = response.cookies["tessera_refresh"], response.cookies["tessera_csrf"]
    http.cookies.clear()
    return response.json()["access_token"], refresh, csrf


def test_a_revoked_token_is_inactive_and_refused_by_a_redis_guard_within_100ms(
    redis_idp: IdpServer,
    redis_revocations: RedisRevocationList,
    protected_api: ApiFactory,
) -> None:
    api = protected_api(redis_idp.url, revocation=redis_revocations)
    with redis_idp.client() as http:
        token = client_credentials(http, DEMO, redis_idp.demo_secret)["access_token"]
        other = client_credentials(http, DEMO, redis_idp.demo_secret)["access_token"]
        assert api.get("/whoami", token).status_code == 200

        response = http.post(
            "/oauth2/revoke", data={"token": token}, auth=(DEMO, redis_idp.demo_secret)
        )
        assert response.status_code == 200, response.text
        elapsed = refused_within(api, token, PROPAGATION)
        assert elapsed is not None, "the guard still accepts the revoked token after 100 ms"

        assert introspect(http, token, DEMO, redis_idp.demo_secret) == {"active": False}
    assert api.get("/whoami", other).status_code == 200  # only that token


def test_a_guard_started_after_the_revocation_refuses_too(
    redis_idp: IdpServer, redis_prefix: str, protected_api: ApiFactory
) -> None:
    with redis_idp.client() as http:
        token = client_credentials(http, DEMO, redis_idp.demo_secret)["access_token"]
        response = http.post(
            "/oauth2/revoke", data={"token": token}, auth=(DEMO, redis_idp.demo_secret)
        )
        assert response.status_code == 200, response.text
    with RedisRevocationList(REDIS_URL, prefix=redis_prefix).start(wait=5) as late:
        api = protected_api(redis_idp.url, revocation=late)
        refused = api.get("/whoami", token)
        assert refused.status_code == 401, refused.text


def test_logout_all_is_refused_at_a_redis_guard(
    redis_idp: IdpServer,
    redis_revocations: RedisRevocationList,
    protected_api: ApiFactory,
) -> None:
    api = protected_api(redis_idp.url, revocation=redis_revocations)
    redis_idp.add_user("grace", "grace's long password")
    redis_idp.add_user("heidi", "heidi's long password")
    with redis_idp.client() as http:
        laptop, refresh, csrf = browser_login(http, "grace", "grace's long password")
        phone, _, _ = browser_login(http, "grace", "grace's long password")
        bystander, _, _ = browser_login(http, "heidi", "heidi's long password")
        for token in (laptop, phone, bystander):
            assert api.get("/whoami", token).status_code == 200

        response = http.post(
            "/auth/logout-all",
            headers={
                "Cookie": f"tessera_refresh={refresh}; tessera_csrf={csrf}",
                "X-CSRF-Token": csrf,
            },
        )
        assert response.status_code == 200, response.text
        for token in (laptop, phone):
            assert refused_within(api, token, PROPAGATION) is not None
            assert introspect(http, token, DEMO, redis_idp.demo_secret) == {"active": False}
    assert api.get("/whoami", bystander).status_code == 200
