"""Tenant isolation of the admin API, route by route, on SQLite and PostgreSQL.

For EVERY tenant route and method: no token is a 401 with a Bearer challenge; a token without the
route's permission is a 403 ``insufficient_scope``; the admin of tenant B is refused (403) on
tenant A's paths — existing or not — and nothing is written; tenant A's admin finds none of B's
objects (404, and lists without them); a system admin acts on both tenants. The system routes
(``/admin/tenants``, ``/admin/keys``) refuse every tenant admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from tessera.idp.config import Settings
from tessera.idp.http.app import create_app
from tessera.idp.services import consents
from tessera.idp.services.rbac import TENANT_ADMIN, create_role

from ..conftest import row_counts
from .checks import payload
from .servers import (
    BOTH_DATABASES,
    CHEAP_ARGON2,
    SYSTEM_ADMIN_SCOPE,
    TENANT_ADMIN_SCOPE,
    IdpServer,
    admin_token,
)

PASSWORD = "correct horse battery staple"
A, B = "acme", "globex"
ROOT = "root"


pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, access_token_ttl=3600, **CHEAP_ARGON2)


@dataclass
class World:
    """Two tenants, each with its own admin, and the system admin; tokens by who and scope."""

    idp: IdpServer
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, who: str, scope: str | None = None) -> str:
        """``who``'s admin token (ROOT: the system admin) for ``scope`` (default: all theirs)."""
        wanted = scope or (SYSTEM_ADMIN_SCOPE if who == ROOT else TENANT_ADMIN_SCOPE)
        key = (who, wanted)
        if key not in self.tokens:
            with self.idp.client() as http:
                if who == ROOT:
                    found = admin_token(http, "admin", self.idp.admin_password, scope=wanted)
                else:
                    found = admin_token(
                        http, f"{who}-admin", PASSWORD, client_id=f"{who}-web", scope=wanted
                    )
            self.tokens[key] = found
        return self.tokens[key]


@pytest.fixture(scope="module")
def world(idp: IdpServer) -> World:
    for tenant in (A, B):
        idp.add_tenant_admin(tenant, PASSWORD)
    return World(idp)


@pytest.fixture
def http(idp: IdpServer) -> Iterator[httpx.Client]:
    with idp.client() as client:
        yield client


def targets(idp: IdpServer, tenant: str) -> dict[str, str]:
    """Fresh objects of ``tenant`` for one route to act on: a user, a role and a client."""
    name = uuid.uuid4().hex[:10]
    user = idp.add_user(f"user-{name}", PASSWORD, tenant)
    with idp.provider.database.session() as session:
        create_role(session, tenant_id=tenant, name=f"role-{name}", permissions=["demo:read"])
    idp.add_client(f"client-{name}", tenant_id=tenant)
    with idp.provider.database.session() as session:  # the user consented to the client
        consents.remember(
            session,
            tenant_id=tenant,
            user_id=user,
            client_id=f"client-{name}",
            scopes=("openid",),
            now=0,
        )
    return {"tenant": tenant, "user": user, "role": f"role-{name}", "client": f"client-{name}"}


def fresh() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Route:
    """One operation: its path template, the permission it needs, a body, its success status."""

    method: str
    path: str
    permission: str
    body: Callable[[], Any] | None = None
    ok: int = 200

    @property
    def names_an_object(self) -> bool:
        return any(part in self.path for part in ("{user}", "{role}", "{client}"))

    def url(self, values: dict[str, str]) -> str:
        return self.path.format(**values)

    def call(self, http: httpx.Client, values: dict[str, str], token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = self.body() if self.body is not None else None
        return http.request(self.method, self.url(values), json=body, headers=headers)


T = "/admin/tenants/{tenant}"
TENANT_ROUTES = [
    Route("GET", T, "admin:users"),
    Route("PATCH", T, "admin:users", lambda: {"name": f"renamed {fresh()}"}),
    Route("GET", T + "/users", "admin:users"),
    Route(
        "POST",
        T + "/users",
        "admin:users",
        lambda: {"username": f"new-{fresh()}", "password": PASSWORD, "roles": ["member"]},
        201,
    ),
    Route("GET", T + "/users/{user}", "admin:users"),
    Route("PATCH", T + "/users/{user}", "admin:users", lambda: {"email": f"{fresh()}@ex.org"}),
    Route("PUT", T + "/users/{user}/roles", "admin:users", lambda: {"roles": ["admin"]}),
    Route("POST", T + "/users/{user}/unlock", "admin:users"),
    Route("POST", T + "/users/{user}/reset-mfa", "admin:users"),
    Route("GET", T + "/users/{user}/consents", "admin:users"),
    Route("DELETE", T + "/users/{user}/consents/{client}", "admin:users", ok=204),
    Route("GET", T + "/roles", "admin:roles"),
    Route(
        "POST",
        T + "/roles",
        "admin:roles",
        lambda: {"name": f"r-{fresh()}", "permissions": ["demo:read"]},
        201,
    ),
    Route("GET", T + "/roles/{role}", "admin:roles"),
    Route("PATCH", T + "/roles/{role}", "admin:roles", lambda: {"description": fresh()}),
    Route("DELETE", T + "/roles/{role}", "admin:roles", ok=204),
    Route("GET", T + "/clients", "admin:clients"),
    Route(
        "POST",
        T + "/clients",
        "admin:clients",
        lambda: {
            "name": fresh(),
            "grant_types": ["client_credentials"],
            "audience": ["demo-api"],
            "allowed_scopes": ["demo:read"],
        },
        201,
    ),
    Route("GET", T + "/clients/{client}", "admin:clients"),
    Route("PATCH", T + "/clients/{client}", "admin:clients", lambda: {"name": fresh()}),
    Route("POST", T + "/clients/{client}/rotate-secret", "admin:clients"),
    Route("GET", T + "/audit", "admin:audit"),
    Route("GET", T + "/audit/export", "admin:audit"),
]

SYSTEM_ROUTES = [
    Route("GET", "/admin/tenants", "admin:tenants"),
    Route(
        "POST", "/admin/tenants", "admin:tenants", lambda: {"id": f"t-{fresh()}", "name": "T"}, 201
    ),
    Route("GET", "/admin/keys", "admin:keys"),
    Route("POST", "/admin/keys/rotate", "admin:keys", lambda: {"immediate": False}),
    Route("GET", "/admin/audit", "admin:audit"),
]


def _template(path: str) -> str:
    return (
        path.replace("{tenant_id}", "{tenant}")
        .replace("{user_id}", "{user}")
        .replace("{name}", "{role}")
        .replace("{client_id}", "{client}")
    )


def test_every_admin_route_is_covered() -> None:
    app = create_app(Settings(database_url="sqlite://", master_key="A" * 43))
    served = {
        (method.upper(), _template(path))
        for path, methods in app.openapi()["paths"].items()
        if path.startswith("/admin")
        for method in methods
    }
    listed = {(route.method, route.path) for route in TENANT_ROUTES + SYSTEM_ROUTES}
    assert served == listed


def test_admin_routes_are_tagged_and_declare_their_permission() -> None:
    app = create_app(Settings(database_url="sqlite://", master_key="A" * 43))
    schema = app.openapi()
    for route in TENANT_ROUTES + SYSTEM_ROUTES:
        path = (
            route.path.replace("{tenant}", "{tenant_id}")
            .replace("{user}", "{user_id}")
            .replace("{role}", "{name}")
            .replace("{client}", "{client_id}")
        )
        operation = schema["paths"][path][route.method.lower()]
        assert operation["tags"] == ["admin"]
        assert {"tessera-admin": [route.permission]} in operation["security"]


IDS = [f"{route.method} {route.path}" for route in TENANT_ROUTES]


def assert_refused(response: httpx.Response, status: int, error: str | None) -> None:
    """An RFC 6750 refusal: the status, a Bearer challenge naming ``error``."""
    assert response.status_code == status, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="tessera-admin"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
        assert response.json()["error"] == error


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=IDS)
def test_no_token_is_a_401_with_a_challenge(world: World, http: httpx.Client, route: Route) -> None:
    values = targets(world.idp, A)
    before = row_counts(world.idp.provider)
    assert_refused(route.call(http, values, None), 401, None)
    garbage = route.call(http, values, "not.a.token")
    assert_refused(garbage, 401, "invalid_token")
    assert row_counts(world.idp.provider) == before


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=IDS)
def test_a_token_without_the_permission_is_a_403(
    world: World, http: httpx.Client, route: Route
) -> None:
    values = targets(world.idp, A)
    others = " ".join(item for item in TENANT_ADMIN if item != route.permission)
    tokens = [world.token(A, others), world.token(ROOT, others + " admin:tenants")]
    before = row_counts(world.idp.provider)
    for token in tokens:
        response = route.call(http, values, token)
        assert_refused(response, 403, "insufficient_scope")
        assert route.permission in response.headers["www-authenticate"]
    assert row_counts(world.idp.provider) == before


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=IDS)
def test_another_tenants_admin_is_refused(world: World, http: httpx.Client, route: Route) -> None:
    values = targets(world.idp, A)
    theirs, system = world.token(B), world.token(ROOT, TENANT_ADMIN_SCOPE)
    before = row_counts(world.idp.provider)
    for tenant in (A, "nowhere"):  # whether the tenant exists or not
        response = route.call(http, {**values, "tenant": tenant}, theirs)
        assert_refused(response, 403, "insufficient_scope")
        assert "tenant_mismatch" in response.headers["www-authenticate"]
    # A system admin without admin:tenants is just the admin of the system tenant.
    response = route.call(http, values, system)
    assert_refused(response, 403, "insufficient_scope")
    assert row_counts(world.idp.provider) == before


NAMING = [route for route in TENANT_ROUTES if route.names_an_object]


@pytest.mark.parametrize("route", NAMING, ids=[f"{r.method} {r.path}" for r in NAMING])
def test_a_tenant_admin_finds_none_of_another_tenants_objects(
    world: World, http: httpx.Client, route: Route
) -> None:
    theirs = targets(world.idp, B)
    ours, system = world.token(A), world.token(ROOT)
    before = row_counts(world.idp.provider)
    # Even a system admin reaches them only under their own tenant.
    for token in (ours, system):
        response = route.call(http, {**theirs, "tenant": A}, token)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404
    assert row_counts(world.idp.provider) == before


LISTS = {"users": ("user", "id"), "roles": ("role", "name"), "clients": ("client", "id")}


@pytest.mark.parametrize("kind", sorted(LISTS))
def test_lists_hold_only_the_tenants_own_objects(
    world: World, http: httpx.Client, kind: str
) -> None:
    ours, theirs = targets(world.idp, A), targets(world.idp, B)
    member, key = LISTS[kind]
    for token in (world.token(A), world.token(ROOT)):
        answer = http.get(
            f"/admin/tenants/{A}/{kind}",
            params={"limit": 200} if kind == "users" else {},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        items = answer.json()[kind]
        found = {item[key] for item in items}
        assert ours[member] in found
        assert theirs[member] not in found
        assert {item["tenant"] for item in items} == {A}


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=IDS)
def test_the_tenants_admin_and_a_system_admin_may_act(
    world: World, http: httpx.Client, route: Route
) -> None:
    for who, tenant in ((A, A), (ROOT, A), (ROOT, B), (B, B)):
        values = targets(world.idp, tenant)
        response = route.call(http, values, world.token(who))
        assert response.status_code == route.ok, (who, tenant, response.text)
        if route.path.endswith("/audit/export"):
            lines = [orjson.loads(line) for line in response.text.splitlines()]
            assert lines and {line["tenant"] for line in lines} == {tenant}
        elif route.path.endswith("/audit"):
            events = response.json()["events"]
            assert events and {event["tenant"] for event in events} == {tenant}
        elif route.ok != 204 and "tenant" in response.json():
            assert response.json()["tenant"] == tenant


@pytest.mark.parametrize(
    "route", SYSTEM_ROUTES, ids=[f"{r.method} {r.path}" for r in SYSTEM_ROUTES]
)
def test_system_routes_refuse_every_tenant_admin(
    world: World, http: httpx.Client, route: Route
) -> None:
    others = " ".join(item for item in SYSTEM_ADMIN_SCOPE.split() if item != route.permission)
    tokens = world.token(A), world.token(B), world.token(ROOT, others)
    before = row_counts(world.idp.provider)
    assert_refused(route.call(http, {}, None), 401, None)
    for token in tokens:
        assert_refused(route.call(http, {}, token), 403, "insufficient_scope")
    assert row_counts(world.idp.provider) == before
    response = route.call(http, {}, world.token(ROOT))
    assert response.status_code == route.ok, response.text


def test_a_tenant_token_with_forged_system_scope_cannot_exist(
    world: World, http: httpx.Client
) -> None:
    """A tenant admin asking for admin:tenants gets a token without it (least privilege)."""
    token = world.token(A, TENANT_ADMIN_SCOPE + " admin:tenants admin:keys")
    assert set(payload(token)["scope"].split()) == set(TENANT_ADMIN)
    response = http.get(f"/admin/tenants/{B}", headers={"Authorization": f"Bearer {token}"})
    assert_refused(response, 403, "insufficient_scope")
