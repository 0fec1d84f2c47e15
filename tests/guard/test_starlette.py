"""The Starlette backend: AuthenticationMiddleware, request.user, request.auth.scopes, Starlette's
own @requires, and RFC 6750 answers — through TestClient and over real HTTP (uvicorn)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import requires as starlette_requires
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tessera import jose
from tessera.guard import Guard, Transport
from tessera.guard.starlette import PrincipalUser, middleware, requires

from .conftest import AUDIENCE, ISSUER, Mint
from .scenario import (
    REALM,
    bearer,
    check_cookie_mode,
    check_rfc6750_answers,
    check_tenant_isolation,
    httpx_call,
)
from .servers import UvicornThread


def out(request: Request) -> Response:
    user = request.user
    assert isinstance(user, PrincipalUser)
    return JSONResponse({"sub": user.principal.sub, "tenant": user.principal.tenant})


@requires(scopes=["orders:read"])
async def list_orders(request: Request) -> Response:
    return out(request)


@requires(scopes=["orders:write"])
async def place_order(request: Request) -> Response:
    return out(request)


@requires(scopes=["orders:read"], tenant="tenant_id")
async def tenant_orders(request: Request) -> Response:
    return out(request)


@requires(roles=["admin"], sensitive=True)
async def admin(request: Request) -> Response:
    return out(request)


@starlette_requires(["authenticated", "orders:read"])
async def native(request: Request) -> Response:
    return JSONResponse(
        {
            "user": request.user.display_name,
            "authenticated": request.user.is_authenticated,
            "scopes": request.auth.scopes,
        }
    )


def build_app(signing_key: jose.Key) -> Starlette:
    guard = Guard(
        keys=signing_key.public(),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        realm=REALM,
    )
    routes = [
        Route("/orders", list_orders, methods=["GET"]),
        Route("/orders", place_order, methods=["POST"]),
        Route("/tenants/{tenant_id}/orders", tenant_orders),
        Route("/admin", admin),
        Route("/native", native),
    ]
    return Starlette(
        routes=routes, middleware=[middleware(guard, transport=Transport(cookie="access_token"))]
    )


@pytest.fixture
def app(signing_key: jose.Key) -> Starlette:
    return build_app(signing_key)


@pytest.fixture
def live(app: Starlette) -> Iterator[httpx.Client]:
    server = UvicornThread(app).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        server.stop()


def test_rfc6750_answers_through_the_test_client(app: Starlette, mint: Mint) -> None:
    with TestClient(app) as client:
        check_rfc6750_answers(httpx_call(client), mint)


def test_rfc6750_answers_over_real_http(live: httpx.Client, mint: Mint) -> None:
    check_rfc6750_answers(httpx_call(live), mint)


def test_cookie_mode_and_csrf(app: Starlette, live: httpx.Client, mint: Mint) -> None:
    with TestClient(app) as client:
        check_cookie_mode(httpx_call(client), mint)
    check_cookie_mode(httpx_call(live), mint)


def test_tenant_isolation(app: Starlette, live: httpx.Client, mint: Mint) -> None:
    with TestClient(app) as client:
        check_tenant_isolation(httpx_call(client), mint)
    check_tenant_isolation(httpx_call(live), mint)


def test_starlettes_own_requires_sees_user_and_scopes(app: Starlette, mint: Mint) -> None:
    with TestClient(app) as client:
        reply = client.get("/native", headers=bearer(mint(scope="orders:read extra")))
        assert reply.status_code == 200
        assert reply.json() == {
            "user": "ada",
            "authenticated": True,
            "scopes": ["authenticated", "extra", "orders:read"],
        }
        assert client.get("/native", headers=bearer(mint(scope="other"))).status_code == 403
        assert client.get("/native").status_code == 403  # anonymous: Starlette's own answer
