"""Schemathesis against the provider's own OpenAPI, over real HTTP: for every operation, bounded
and derandomized examples (valid and invalid), with and without a valid client, and none of
them gets a 5xx. The OAuth endpoints must also answer every refusal as an RFC 6749 JSON error.
The admin routes are also fuzzed with a system admin's token, to get past their guard; their
refusals are RFC 9457 problems or RFC 6750 answers.

The runs are on SQLite and on PostgreSQL, the stricter store (it refuses NUL bytes, for one).
"""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tessera.idp.config import Settings
from tessera.idp.http.app import create_app

from .checks import assert_admin_refusal, assert_error_page
from .servers import BOTH_DATABASES, DEMO, IdpServer, admin_token

# Bounded, derandomized: 30 examples missed the NUL byte that made PostgreSQL answer 500 on
# /auth/login; 100 find it, in seconds.
EXAMPLES = 100
# Without an admin's token no admin request gets past the guard, whatever its body: a few show
# the refusal's shape. With the token, enough to reach every handler's refusals.
GUARDED_EXAMPLES = 10
ADMIN_EXAMPLES = 60


def _operations() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://", master_key="A" * 43))
    return [
        (method.upper(), path)
        for path, methods in sorted(app.openapi()["paths"].items())
        for method in methods
    ]


OPERATIONS = _operations()


# About three minutes of generated requests: `pytest -m 'not slow'` leaves them out.
pytestmark = [pytest.mark.idp(databases=BOTH_DATABASES), pytest.mark.slow]


@pytest.fixture(scope="module")
def api(idp: IdpServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{idp.url}/openapi.json")


def test_every_operation_is_fuzzed() -> None:
    assert {path for _, path in OPERATIONS} >= {
        "/oauth2/token",
        "/oauth2/revoke",
        "/oauth2/introspect",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/logout-all",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/admin/tenants",
        "/admin/tenants/{tenant_id}/users/{user_id}",
        "/admin/tenants/{tenant_id}/audit/export",
        "/admin/keys/rotate",
    }


ADMIN_OPERATIONS = [(method, path) for method, path in OPERATIONS if path.startswith("/admin/")]
# Endpoints a browser visits: what they cannot answer at a client is an HTML page.
PAGES = ("/oauth2/authorize", "/oauth2/logout")
PUBLIC_OPERATIONS = [operation for operation in OPERATIONS if operation not in ADMIN_OPERATIONS]


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "demo-client"])
@pytest.mark.parametrize(
    ("method", "path"), PUBLIC_OPERATIONS, ids=[f"{m} {p}" for m, p in PUBLIC_OPERATIONS]
)
def test_no_generated_request_gets_a_server_error(
    idp: IdpServer, api: schemathesis.BaseSchema, method: str, path: str, authenticated: bool
) -> None:
    credentials = base64.b64encode(f"{DEMO}:{idp.demo_secret}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"} if authenticated else {}
    fuzz(idp, api, method, path, headers)


@pytest.mark.parametrize(
    ("method", "path"), ADMIN_OPERATIONS, ids=[f"{m} {p}" for m, p in ADMIN_OPERATIONS]
)
def test_no_generated_admin_request_without_a_token_gets_past_the_guard(
    idp: IdpServer, api: schemathesis.BaseSchema, method: str, path: str
) -> None:
    seen = fuzz(idp, api, method, path, {}, examples=GUARDED_EXAMPLES)
    # the guard (RFC 6750: 400 for a malformed credential, 401), or a problem about the
    # request itself (no route, not JSON, too large)
    assert seen <= {400, 401, 404, 405, 413, 415, 422, 431}, seen


@pytest.mark.parametrize(
    ("method", "path"), ADMIN_OPERATIONS, ids=[f"{m} {p}" for m, p in ADMIN_OPERATIONS]
)
def test_no_generated_admin_request_gets_a_server_error(
    idp: IdpServer, api: schemathesis.BaseSchema, method: str, path: str
) -> None:
    """With a system admin's token the requests get past the guard to the handlers."""
    with idp.client() as http:
        token = admin_token(http, "admin", idp.admin_password)
    seen = fuzz(
        idp, api, method, path, {"Authorization": f"Bearer {token}"}, examples=ADMIN_EXAMPLES
    )
    assert seen - {401, 403}, "the guard refused every request"


def fuzz(
    idp: IdpServer,
    api: schemathesis.BaseSchema,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    examples: int = EXAMPLES,
) -> set[int]:
    """Send the examples of one operation; none may get a 5xx, refusals must be typed.
    Returns the statuses seen."""
    operation = api[path][method]
    seen: set[int] = set()

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=idp.url, headers=headers, timeout=10)
        case.validate_response(response, checks=[not_a_server_error])
        seen.add(response.status_code)
        if path in PAGES and 400 <= response.status_code < 500:
            assert_error_page(response)  # no redirect URI to answer at, and no crash
        elif path.startswith("/oauth2/") and 400 <= response.status_code < 500:
            body = response.json()
            assert isinstance(body.get("error"), str), body
        if path.startswith("/admin/") and 400 <= response.status_code < 500:
            assert_admin_refusal(response)

    run()
    assert seen, "no request was sent"
    return seen
