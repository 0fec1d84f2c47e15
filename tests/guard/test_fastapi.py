"""The FastAPI adapter through TestClient and over real HTTP (uvicorn), plus its OpenAPI.

No `from __future__ import annotations` here: FastAPI must see the local Annotated aliases.
"""

from collections.abc import Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from tessera import jose
from tessera.guard import Guard, Principal, Transport
from tessera.guard.fastapi import FastAPIGuard

from .conftest import AUDIENCE, ISSUER, Mint
from .scenario import (
    REALM,
    check_cookie_mode,
    check_rfc6750_answers,
    check_tenant_isolation,
    httpx_call,
)
from .servers import UvicornThread


def build_app(signing_key: jose.Key) -> FastAPI:
    guard = Guard(
        keys=signing_key.public(),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        realm=REALM,
    )
    app = FastAPI()
    auth = FastAPIGuard(
        guard,
        app=app,
        transport=Transport(cookie="access_token"),
        token_url="/token",
        scopes={"orders:read": "read orders", "orders:write": "place orders"},
    )

    def out(user: Principal) -> dict[str, str | None]:
        return {"sub": user.sub, "tenant": user.tenant}

    reader = Annotated[Principal, Security(auth.require(scopes=["orders:read"]))]
    writer = Annotated[Principal, Security(auth.require(), scopes=["orders:write"])]
    tenant_reader = Annotated[
        Principal, Security(auth.require(scopes=["orders:read"], tenant="tenant_id"))
    ]
    admin_only = Annotated[Principal, Security(auth.require(roles=["admin"], sensitive=True))]

    @app.get("/orders")
    async def list_orders(user: reader) -> dict[str, str | None]:
        return out(user)

    @app.post("/orders")
    async def place_order(user: writer) -> dict[str, str | None]:
        return out(user)

    @app.get("/tenants/{tenant_id}/orders")
    async def tenant_orders(tenant_id: str, user: tenant_reader) -> dict[str, str | None]:
        return out(user)

    @app.get("/admin")
    async def admin(user: admin_only) -> dict[str, str | None]:
        return out(user)

    return app


@pytest.fixture
def app(signing_key: jose.Key) -> FastAPI:
    return build_app(signing_key)


@pytest.fixture
def live(app: FastAPI) -> Iterator[httpx.Client]:
    server = UvicornThread(app).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        server.stop()


def test_rfc6750_answers_through_the_test_client(app: FastAPI, mint: Mint) -> None:
    with TestClient(app) as client:
        check_rfc6750_answers(httpx_call(client), mint)


def test_rfc6750_answers_over_real_http(live: httpx.Client, mint: Mint) -> None:
    check_rfc6750_answers(httpx_call(live), mint)


def test_cookie_mode_and_csrf(app: FastAPI, live: httpx.Client, mint: Mint) -> None:
    with TestClient(app) as client:
        check_cookie_mode(httpx_call(client), mint)
    check_cookie_mode(httpx_call(live), mint)


def test_tenant_isolation(app: FastAPI, live: httpx.Client, mint: Mint) -> None:
    with TestClient(app) as client:
        check_tenant_isolation(httpx_call(client), mint)
    check_tenant_isolation(httpx_call(live), mint)


def test_openapi_shows_the_scheme_and_each_routes_scopes(app: FastAPI) -> None:
    schema = app.openapi()
    scheme = schema["components"]["securitySchemes"]["tessera"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["clientCredentials"]["scopes"] == {
        "orders:read": "read orders",
        "orders:write": "place orders",
    }
    paths = schema["paths"]
    assert paths["/orders"]["get"]["security"] == [{"tessera": ["orders:read"]}]
    assert paths["/orders"]["post"]["security"] == [{"tessera": ["orders:write"]}]
    assert paths["/admin"]["get"]["security"] == [{"tessera": []}]


def test_bearer_scheme_without_a_token_url(signing_key: jose.Key) -> None:
    guard = Guard(keys=signing_key.public(), issuer=None, audience=None, algorithms=["ES256"])
    app = FastAPI()
    auth = FastAPIGuard(guard, app=app)

    @app.get("/me")
    async def me(user: Annotated[Principal, Security(auth.require())]) -> dict[str, str | None]:
        return {"sub": user.sub}

    scheme = app.openapi()["components"]["securitySchemes"]["tessera"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
