"""One API scenario every framework adapter must answer identically, per RFC 6750.

Routes (each adapter's test app provides them, with cookie transport on):
``GET /orders`` (scope orders:read), ``POST /orders`` (scope orders:write),
``GET /tenants/{tenant_id}/orders`` (orders:read, tenant equality), ``GET /admin`` (role admin,
sensitive). Each returns ``{"sub": ..., "tenant": ...}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .conftest import Mint

REALM = "orders"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


Call = Callable[..., Reply]


def httpx_call(client: httpx.Client) -> Call:
    def call(method: str, path: str, headers: Mapping[str, str] | None = None, **_: Any) -> Reply:
        response = client.request(method, path, headers=dict(headers or {}))
        body = response.json() if response.content else None
        return Reply(response.status_code, response.headers, body)

    return call


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(*params: str) -> str:
    return ", ".join([f'Bearer realm="{REALM}"', *params])


def check_rfc6750_answers(call: Call, mint: Mint) -> None:
    good = mint(scope="orders:read")
    ok = call("GET", "/orders", bearer(good))
    assert ok.status == 200 and ok.body["sub"] == "ada", ok

    missing = call("GET", "/orders")
    assert missing.status == 401
    assert missing.headers["www-authenticate"] == challenge()
    assert missing.body == {"error": "unauthorized", "error_description": "missing_token"}

    expired = call("GET", "/orders", bearer(mint(exp=int(time.time()) - 60)))
    assert expired.status == 401
    assert expired.headers["www-authenticate"] == challenge(
        'error="invalid_token"', 'error_description="expired"'
    )
    assert expired.body == {"error": "invalid_token", "error_description": "expired"}

    forged = call("GET", "/orders", bearer(good[:-4] + "AAAA"))
    assert forged.status == 401 and forged.body["error_description"] == "invalid_signature"

    scope = call("POST", "/orders", bearer(good))
    assert scope.status == 403
    assert scope.headers["www-authenticate"] == challenge(
        'error="insufficient_scope"',
        'error_description="insufficient_scope"',
        'scope="orders:write"',
    )
    assert scope.body == {
        "error": "insufficient_scope",
        "error_description": "insufficient_scope",
        "scope": "orders:write",
    }

    role = call("GET", "/admin", bearer(good))
    assert role.status == 403 and role.body["error_description"] == "insufficient_role"
    admin = call("GET", "/admin", bearer(mint(roles=["admin"])))
    assert admin.status == 200

    query = call("GET", f"/orders?access_token={good}")
    assert query.status == 400
    assert query.headers["www-authenticate"] == challenge(
        'error="invalid_request"', 'error_description="token_in_query"'
    )
    assert query.body == {"error": "invalid_request", "error_description": "token_in_query"}

    for reply in (missing, expired, forged, scope, query):
        assert good not in str(reply.body) and good not in str(dict(reply.headers))


def check_cookie_mode(call: Call, mint: Mint) -> None:
    token = mint(scope="orders:read orders:write")
    jar = {"Cookie": f"access_token={token}; csrf_token=s3cret-csrf"}
    assert call("GET", "/orders", jar).status == 200

    no_csrf = call("POST", "/orders", jar)
    assert no_csrf.status == 403
    assert no_csrf.body == {"error": "invalid_request", "error_description": "csrf_failed"}
    assert "www-authenticate" not in no_csrf.headers

    wrong = call("POST", "/orders", {**jar, "X-CSRF-Token": "guess"})
    assert wrong.status == 403

    with_csrf = call("POST", "/orders", {**jar, "X-CSRF-Token": "s3cret-csrf"})
    assert with_csrf.status == 200, with_csrf

    both = call("GET", "/orders", {**jar, **bearer(token)})
    assert both.status == 400 and both.body["error_description"] == "multiple_transports"


def check_tenant_isolation(call: Call, mint: Mint) -> None:
    acme = mint(tenant="acme")
    own = call("GET", "/tenants/acme/orders", bearer(acme))
    assert own.status == 200 and own.body["tenant"] == "acme"
    other = call("GET", "/tenants/globex/orders", bearer(acme))
    assert other.status == 403
    assert other.body == {"error": "insufficient_scope", "error_description": "tenant_mismatch"}
    no_tenant = call("GET", "/tenants/acme/orders", bearer(mint(tenant=None)))
    assert no_tenant.status == 403
