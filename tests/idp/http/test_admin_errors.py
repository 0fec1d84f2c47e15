"""Bad input to the admin API is a 4xx problem, never a 500, and writes nothing — on SQLite and on
PostgreSQL (which refuses NUL bytes and lone surrogates that SQLite would store).

Every body-taking route gets: no JSON, JSON that is not an object, an unknown member, and each
member of a valid body replaced by a wrong type, a NUL, a lone surrogate or an overlong text.
Path and query values get the same treatment. A problem never echoes the value it refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tessera import jose
from tessera.idp.config import Settings
from tessera.idp.http.app import create_app

from ..conftest import row_counts
from .checks import assert_problem as assert_problem_shape
from .servers import BOTH_DATABASES, CHEAP_ARGON2, TENANT_ADMIN_SCOPE, IdpServer, admin_token

PASSWORD = "correct horse battery staple"
TENANT = "acme"
SECRET = "s3cr3t-value-never-echoed"


pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, access_token_ttl=3600, **CHEAP_ARGON2)


@pytest.fixture(scope="module", autouse=True)
def tenant_admin(idp: IdpServer) -> str:
    """The tenant the routes act on, with its admin and a service client ``svc``."""
    user_id = idp.add_tenant_admin(TENANT, PASSWORD)
    idp.add_client("svc", tenant_id=TENANT)
    return user_id


@pytest.fixture(scope="module")
def headers(idp: IdpServer) -> dict[str, str]:
    """A system admin's token: every route is open to it, so only the input is wrong."""
    with idp.client() as http:
        return {"Authorization": f"Bearer {admin_token(http, 'admin', idp.admin_password)}"}


@pytest.fixture(scope="module")
def user_id(idp: IdpServer) -> str:
    return idp.add_user(f"target-{uuid.uuid4().hex[:8]}", PASSWORD, TENANT)


@pytest.fixture
def http(idp: IdpServer) -> Iterator[httpx.Client]:
    with idp.client() as client:
        yield client


T = "/admin/tenants/{tenant_id}"
# A valid body for every route that takes one.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/admin/tenants"): {"id": "new-tenant", "name": "New", "mfa_policy": "optional"},
    ("PATCH", T): {"name": "Acme", "mfa_policy": "optional"},
    ("POST", T + "/users"): {
        "username": "someone",
        "password": PASSWORD,
        "email": "someone@example.org",
        "roles": ["member"],
    },
    ("PATCH", T + "/users/{user_id}"): {
        "email": "a@example.org",
        "password": PASSWORD,
        "status": "active",
    },
    ("PUT", T + "/users/{user_id}/roles"): {"roles": ["member"]},
    ("POST", T + "/roles"): {"name": "viewer", "permissions": ["demo:read"], "description": "d"},
    ("PATCH", T + "/roles/{name}"): {"permissions": ["demo:read"], "description": "d"},
    ("POST", T + "/clients"): {
        "name": "App",
        "grant_types": ["authorization_code", "client_credentials"],
        "audience": ["demo-api"],
        "allowed_scopes": ["demo:read"],
        "default_scopes": ["demo:read"],
        "first_party": False,
        "confidential": True,
        "redirect_uris": ["https://app.example/callback"],
        "post_logout_redirect_uris": ["https://app.example/bye"],
        "backchannel_logout_uri": "https://app.example/backchannel",
        "id_token_signed_response_alg": "ES256",
        # private_key_jwt: the client then has no secret.
        "jwks": {"keys": [jose.Key.generate("ES256").public().to_jwk()]},
    },
    ("PATCH", T + "/clients/{client_id}"): {
        "name": "Svc",
        "allowed_scopes": ["demo:read"],
        "default_scopes": ["demo:read"],
        "status": "active",
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "backchannel_logout_uri": "",
        "jwks": None,  # unchanged (``svc`` has a secret: it cannot be given keys)
    },
    ("POST", "/admin/keys/rotate"): {"immediate": False},
}


def test_every_body_taking_route_is_here() -> None:
    app = create_app(Settings(database_url="sqlite://", master_key="A" * 43))
    with_body = {
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        if path.startswith("/admin")
        for method, operation in methods.items()
        if "requestBody" in operation
    }
    assert with_body == set(BODIES)


def wrong_values(value: Any) -> list[Any]:
    """Values of the wrong type, or of the right type but unstorable or too long."""
    if isinstance(value, bool):
        return ["true", 1, None, [True]]
    if isinstance(value, list):
        return ["not-a-list", [1], ["a\x00b"], ["\ud800"], ["x" * 10_000], ["ok"] * 1000, {}]
    return [1, True, ["a"], {"a": 1}, f"{SECRET}\x00", f"{SECRET}\ud800", SECRET * 1000]


CASES = (
    [
        (method, path, {**body, member: bad})
        for (method, path), body in BODIES.items()
        for member, value in body.items()
        for bad in wrong_values(value)
    ]
    + [(method, path, {**body, "unknown": SECRET}) for (method, path), body in BODIES.items()]
    + [(method, path, [body]) for (method, path), body in BODIES.items()]
)


def send(
    http: httpx.Client, method: str, path: str, user_id: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """``body`` as the request's content; JSON unless ``headers`` say otherwise."""
    url = path.format(tenant_id=TENANT, user_id=user_id, name="member", client_id="svc")
    headers = {"Content-Type": "application/json", **headers}
    return http.request(method, url, content=body, headers=headers)


def encoded(body: Any) -> bytes:
    """JSON as ASCII: a lone surrogate travels as its escape, which a UTF-8 encoder refuses."""
    return json.dumps(body).encode()


def assert_problem(response: httpx.Response, status: int = 422) -> None:
    assert_problem_shape(response, status)
    assert SECRET not in response.text


def test_malformed_bodies_are_a_422_problem_and_write_nothing(
    idp: IdpServer, http: httpx.Client, headers: dict[str, str], user_id: str
) -> None:
    before = row_counts(idp.provider)
    for method, path, body in CASES:
        assert_problem(send(http, method, path, user_id, encoded(body), headers))
    for method, path in BODIES:
        for raw in (b"", b"{", b"not json", b'{"a": 1, "a": 2', b"\xff\xfe", b"null"):
            assert_problem(send(http, method, path, user_id, raw, headers))
        form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        assert_problem(send(http, method, path, user_id, b"name=x", form), 415)
    assert row_counts(idp.provider) == before


def test_a_valid_body_of_each_route_is_accepted(
    http: httpx.Client, headers: dict[str, str], user_id: str
) -> None:
    """The baseline the malformed cases vary: each body as given is fine."""
    for (method, path), body in BODIES.items():
        response = send(http, method, path, user_id, encoded(body), headers)
        assert response.status_code in (200, 201), (method, path, response.text)


BAD_IDS = ["%00", "a%00b", "%ED%A0%80", "%F0%9F", "x" * 300, "%20", "..%2F..%2Fetc"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_unstorable_or_unknown_ids_in_the_path_are_a_404(
    idp: IdpServer, http: httpx.Client, headers: dict[str, str], bad: str
) -> None:
    before = row_counts(idp.provider)
    for method, path in (
        ("GET", T + "/users/{bad}"),
        ("PATCH", T + "/users/{bad}"),
        ("PUT", T + "/users/{bad}/roles"),
        ("POST", T + "/users/{bad}/unlock"),
        ("POST", T + "/users/{bad}/reset-mfa"),
        ("GET", T + "/roles/{bad}"),
        ("PATCH", T + "/roles/{bad}"),
        ("DELETE", T + "/roles/{bad}"),
        ("GET", T + "/clients/{bad}"),
        ("PATCH", T + "/clients/{bad}"),
        ("POST", T + "/clients/{bad}/rotate-secret"),
        ("GET", "/admin/tenants/{bad}"),
        ("GET", "/admin/tenants/{bad}/users"),
        ("GET", "/admin/tenants/{bad}/audit"),
    ):
        body: dict[str, Any] | None = None
        if path.endswith("/roles"):
            body = {"roles": []}
        elif method == "PATCH":
            body = {}
        url = path.format(tenant_id=TENANT, bad=bad)
        response = http.request(method, url, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
    assert row_counts(idp.provider) == before


@pytest.mark.parametrize(
    "params",
    ["after=a%00b", "after=%ED%A0%80", "after=" + "x" * 201, "limit=many", "limit=10000"],
)
def test_bad_user_list_parameters_are_never_a_500(
    http: httpx.Client, headers: dict[str, str], params: str
) -> None:
    response = http.get(f"/admin/tenants/{TENANT}/users?{params}", headers=headers)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json() == {"users": [], "next_cursor": None}
    else:
        assert_problem(response)


def test_a_tenant_admin_token_cannot_smuggle_a_body_past_the_guard(
    idp: IdpServer, http: httpx.Client
) -> None:
    """A refused token is refused before its body is looked at (but after the body is parsed:
    malformed JSON is a 422 even then, which tells nothing about the tenant)."""
    with idp.client() as client:
        token = admin_token(
            client,
            f"{TENANT}-admin",
            PASSWORD,
            client_id=f"{TENANT}-web",
            scope=TENANT_ADMIN_SCOPE,
        )
    response = http.post(
        "/admin/tenants/default/users",
        json={"username": "x", "password": PASSWORD},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
