"""Every change through the admin API writes exactly one audit row — the right event, the token's
``sub`` as actor, the tenant acted on, before/after of what changed — on SQLite and PostgreSQL.
A change that changes nothing writes no row; a refused change writes none either.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tessera.idp.config import Settings
from tessera.idp.http.app import create_app
from tessera.idp.services import consents
from tessera.idp.services.rbac import create_role
from tessera.idp.store.models import AuditEvent

from ..conftest import audit_events
from .checks import payload
from .servers import BOTH_DATABASES, CHEAP_ARGON2, TENANT_ADMIN_SCOPE, IdpServer, admin_token

PASSWORD = "correct horse battery staple"
TENANT = "acme"


pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, access_token_ttl=3600, **CHEAP_ARGON2)


@pytest.fixture(scope="module", autouse=True)
def tenant_admin(idp: IdpServer) -> str:
    return idp.add_tenant_admin(TENANT, PASSWORD)


@pytest.fixture(scope="module")
def tokens(idp: IdpServer) -> dict[str, str]:
    """The tenant's own admin, and the system admin."""
    with idp.client() as http:
        return {
            "tenant-admin": admin_token(
                http,
                f"{TENANT}-admin",
                PASSWORD,
                client_id=f"{TENANT}-web",
                scope=TENANT_ADMIN_SCOPE,
            ),
            "system-admin": admin_token(http, "admin", idp.admin_password),
        }


@pytest.fixture
def http(idp: IdpServer) -> Iterator[httpx.Client]:
    with idp.client() as client:
        yield client


def fresh() -> str:
    return uuid.uuid4().hex[:12]


def targets(idp: IdpServer) -> dict[str, str]:
    """A fresh user, role and client of the tenant (the user consented to the client)."""
    name = fresh()
    user = idp.add_user(f"user-{name}", PASSWORD, TENANT)
    with idp.provider.database.session() as session:
        create_role(session, tenant_id=TENANT, name=f"role-{name}", permissions=["demo:read"])
    idp.add_client(f"client-{name}", tenant_id=TENANT)
    with idp.provider.database.session() as session:
        consents.remember(
            session,
            tenant_id=TENANT,
            user_id=user,
            client_id=f"client-{name}",
            scopes=("openid",),
            now=0,
        )
    return {"tenant": TENANT, "user": user, "role": f"role-{name}", "client": f"client-{name}"}


def new_rows(idp: IdpServer, after: int) -> list[AuditEvent]:
    return [row for row in audit_events(idp.provider) if row.id > after]


def last_id(idp: IdpServer) -> int:
    rows = audit_events(idp.provider)
    return rows[-1].id if rows else 0


@dataclass(frozen=True)
class Change:
    """A mutating call, the events it must write, and what the row's subject/client must be."""

    method: str
    path: str
    events: tuple[str, ...]
    body: Callable[[], Any] | None = None
    system: bool = False
    prepare: Callable[[httpx.Client, dict[str, str], str], None] | None = None
    subject: str | None = None  # which target the row's subject is
    client: bool = False  # whether the row names the target client

    def call(self, http: httpx.Client, values: dict[str, str], token: str) -> httpx.Response:
        body = self.body() if self.body is not None else None
        return http.request(
            self.method,
            self.path.format(**values),
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )


def patch_user(body: dict[str, Any]) -> Callable[[httpx.Client, dict[str, str], str], None]:
    def prepare(http: httpx.Client, values: dict[str, str], token: str) -> None:
        response = http.patch(
            f"/admin/tenants/{TENANT}/users/{values['user']}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text

    return prepare


T = "/admin/tenants/{tenant}"
CHANGES = [
    Change(
        "POST",
        "/admin/tenants",
        ("tenant.created",),
        lambda: {"id": f"t-{fresh()}", "name": "New"},
        system=True,
    ),
    Change("PATCH", T, ("tenant.updated",), lambda: {"name": f"Acme {fresh()}"}),
    Change(
        "POST",
        T + "/users",
        ("user.created",),
        lambda: {"username": f"u-{fresh()}", "password": PASSWORD, "email": f"{fresh()}@ex.org"},
    ),
    Change(
        "PATCH",
        T + "/users/{user}",
        ("user.updated",),
        lambda: {"email": f"{fresh()}@ex.org"},
        subject="user",
    ),
    Change(
        "PATCH",
        T + "/users/{user}",
        ("user.updated",),
        lambda: {"password": "another good long passphrase"},
        subject="user",
    ),
    Change(
        "PATCH",
        T + "/users/{user}",
        ("user.locked",),
        lambda: {"status": "locked"},
        subject="user",
    ),
    Change(
        "PATCH",
        T + "/users/{user}",
        ("user.unlocked",),
        lambda: {"status": "active"},
        prepare=patch_user({"status": "locked"}),
        subject="user",
    ),
    Change(
        "PATCH",
        T + "/users/{user}",
        ("user.disabled",),
        lambda: {"status": "disabled"},
        subject="user",
    ),
    Change(
        "PATCH",
        T + "/users/{user}",
        ("user.enabled",),
        lambda: {"status": "active"},
        prepare=patch_user({"status": "disabled"}),
        subject="user",
    ),
    Change(
        "PUT",
        T + "/users/{user}/roles",
        ("user.roles_changed",),
        lambda: {"roles": ["member", "admin"]},
        subject="user",
    ),
    Change(
        "POST",
        T + "/users/{user}/unlock",
        ("user.unlocked",),
        prepare=patch_user({"status": "locked"}),
        subject="user",
    ),
    Change("POST", T + "/users/{user}/reset-mfa", ("mfa.reset",), subject="user"),
    Change(
        "DELETE",
        T + "/users/{user}/consents/{client}",
        ("consent.withdrawn",),
        subject="user",
        client=True,
    ),
    Change(
        "POST",
        T + "/roles",
        ("role.created",),
        lambda: {"name": f"r-{fresh()}", "permissions": ["demo:read"]},
    ),
    Change(
        "PATCH",
        T + "/roles/{role}",
        ("role.updated",),
        lambda: {"permissions": ["demo:read", "demo:write"]},
    ),
    Change("DELETE", T + "/roles/{role}", ("role.deleted",)),
    Change(
        "POST",
        T + "/clients",
        ("client.created",),
        lambda: {
            "name": fresh(),
            "grant_types": ["client_credentials"],
            "audience": ["demo-api"],
            "allowed_scopes": ["demo:read"],
            "default_scopes": ["demo:read"],
        },
    ),
    Change(
        "PATCH",
        T + "/clients/{client}",
        ("client.updated",),
        lambda: {"status": "disabled"},
        client=True,
    ),
    Change("POST", T + "/clients/{client}/rotate-secret", ("client.secret_rotated",), client=True),
    Change(
        "POST", "/admin/keys/rotate", ("key.rotated",), lambda: {"immediate": False}, system=True
    ),
]


def _template(path: str) -> str:
    return (
        path.replace("{tenant_id}", "{tenant}")
        .replace("{user_id}", "{user}")
        .replace("{name}", "{role}")
        .replace("{client_id}", "{client}")
    )


def test_every_mutating_endpoint_is_checked() -> None:
    app = create_app(Settings(database_url="sqlite://", master_key="A" * 43))
    mutating = {
        (method.upper(), _template(path))
        for path, methods in app.openapi()["paths"].items()
        if path.startswith("/admin")
        for method in methods
        if method != "get"
    }
    assert mutating == {(change.method, change.path) for change in CHANGES}


CASES = [
    (change, who)
    for change in CHANGES
    for who in (("system-admin",) if change.system else ("tenant-admin", "system-admin"))
]


@pytest.mark.parametrize(
    ("change", "who"),
    CASES,
    ids=[f"{who}: {change.method} {change.path} {change.events[0]}" for change, who in CASES],
)
def test_each_change_writes_its_audit_row(
    idp: IdpServer, http: httpx.Client, tokens: dict[str, str], change: Change, who: str
) -> None:
    token = tokens[who]
    values = targets(idp)
    if change.prepare is not None:
        change.prepare(http, values, token)
    before = last_id(idp)
    response = change.call(http, values, token)
    assert 200 <= response.status_code < 300, response.text
    rows = new_rows(idp, before)
    assert [row.event for row in rows] == list(change.events)
    actor = payload(token)["sub"]
    if change.path.startswith("/admin/keys"):
        expected_tenant = "*"  # keys belong to no tenant
    elif change.path == "/admin/tenants":
        expected_tenant = response.json()["id"]
    else:
        expected_tenant = TENANT
    for row in rows:
        assert row.actor == actor
        assert row.tenant_id == expected_tenant
        assert row.outcome == "success"
        assert row.ip == "127.0.0.1"
        assert row.user_agent is not None and row.user_agent.startswith("python-httpx")
    first = rows[0]
    details = orjson.loads(first.details)
    if change.subject is not None:
        assert first.subject == values[change.subject]
    if change.client:
        assert first.client_id == values["client"]
    if change.method in ("PATCH", "PUT"):  # before and after of what changed
        assert details["after"]
        assert details["before"] != details["after"]
    text = first.details
    body = change.body() if change.body is not None else {}
    if "password" in body:  # a password is never in the log
        assert body["password"] not in text and "another good" not in text


PATCHES = [
    (T, lambda values, current: {}),
    (T, lambda values, current: {"name": current["name"], "mfa_policy": current["mfa_policy"]}),
    (T + "/users/{user}", lambda values, current: {}),
    (
        T + "/users/{user}",
        lambda values, current: {"email": current["email"] or "", "status": current["status"]},
    ),
    (T + "/users/{user}/roles", lambda values, current: {"roles": current["roles"]}),
    (T + "/roles/{role}", lambda values, current: {}),
    (
        T + "/roles/{role}",
        lambda values, current: {
            "permissions": current["permissions"],
            "description": current["description"],
        },
    ),
    (T + "/clients/{client}", lambda values, current: {}),
    (
        T + "/clients/{client}",
        lambda values, current: {
            "name": current["name"],
            "allowed_scopes": current["allowed_scopes"],
            "default_scopes": current["default_scopes"],
            "status": current["status"],
            "redirect_uris": current["redirect_uris"],
            "post_logout_redirect_uris": current["post_logout_redirect_uris"],
            "backchannel_logout_uri": current["backchannel_logout_uri"],
            "jwks": current["jwks"],
        },
    ),
]


@pytest.mark.parametrize(
    ("path", "body"), PATCHES, ids=[f"{p} {i}" for i, (p, _) in enumerate(PATCHES)]
)
def test_a_change_that_changes_nothing_writes_no_row(
    idp: IdpServer,
    http: httpx.Client,
    tokens: dict[str, str],
    path: str,
    body: Callable[[dict[str, str], dict[str, Any]], dict[str, Any]],
) -> None:
    values = targets(idp)
    headers = {"Authorization": f"Bearer {tokens['tenant-admin']}"}
    read = path.removesuffix("/roles").format(**values)
    current = http.get(read, headers=headers).json()
    before = last_id(idp)
    method = "PUT" if path.endswith("/roles") else "PATCH"
    response = http.request(
        method, path.format(**values), json=body(values, current), headers=headers
    )
    assert response.status_code == 200, response.text
    assert new_rows(idp, before) == []


def test_a_refused_change_writes_no_row(
    idp: IdpServer, http: httpx.Client, tokens: dict[str, str]
) -> None:
    values = targets(idp)
    headers = {"Authorization": f"Bearer {tokens['tenant-admin']}"}
    before = last_id(idp)
    refusals = [
        http.post(  # a weak password
            f"/admin/tenants/{TENANT}/users",
            json={"username": f"u-{fresh()}", "password": "password"},
            headers=headers,
        ),
        http.post(  # a taken username
            f"/admin/tenants/{TENANT}/users",
            json={"username": f"{TENANT}-admin", "password": PASSWORD},
            headers=headers,
        ),
        http.put(  # an unknown role
            f"/admin/tenants/{TENANT}/users/{values['user']}/roles",
            json={"roles": ["member", "no-such-role"]},
            headers=headers,
        ),
        http.post(  # a system permission outside the system tenant
            f"/admin/tenants/{TENANT}/roles",
            json={"name": f"r-{fresh()}", "permissions": ["admin:tenants"]},
            headers=headers,
        ),
        http.post(  # a duplicate role
            f"/admin/tenants/{TENANT}/roles",
            json={"name": values["role"]},
            headers=headers,
        ),
        http.post(  # the password grant for a third-party client
            f"/admin/tenants/{TENANT}/clients",
            json={"name": "x", "grant_types": ["password"], "audience": ["demo-api"]},
            headers=headers,
        ),
    ]
    assert [response.status_code for response in refusals] == [422, 409, 422, 422, 409, 422]
    for response in refusals:
        assert response.headers["content-type"] == "application/problem+json"
    assert new_rows(idp, before) == []
