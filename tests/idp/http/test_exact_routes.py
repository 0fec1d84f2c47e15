"""The fixed-path routes found by a dictionary lookup answer exactly as FastAPI's router would
have answered them: same status, headers and body, the app's exception handlers included."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from tessera import jose
from tessera.idp.config import Settings
from tessera.idp.http.app import create_app
from tessera.idp.http.exact_routes import ExactRoutes

from ...services import migrated_database

# Requests whose answers do not depend on time or chance: each is sent through the index and
# through FastAPI's router, and the two answers compared.
BAD = {"authorization": "Basic " + base64.b64encode(b"demo:wrong-secret").decode()}
FORM = {"content-type": "application/x-www-form-urlencoded"}
REQUESTS: list[tuple[str, str, dict[str, str], str]] = [
    ("GET", "/.well-known/jwks.json", {}, ""),
    ("GET", "/.well-known/openid-configuration", {}, ""),
    ("GET", "/.well-known/oauth-authorization-server", {}, ""),
    ("POST", "/oauth2/token", FORM, "grant_type=client_credentials"),
    (
        "POST",
        "/oauth2/token",
        {**FORM, **BAD},
        "grant_type=client_credentials",
    ),
    ("POST", "/oauth2/token", {"content-type": "application/json"}, "{}"),
    ("POST", "/oauth2/token", FORM, "grant_type=a&grant_type=b"),
    ("POST", "/oauth2/introspect", FORM, ""),
    ("POST", "/oauth2/introspect", {**FORM, **BAD}, "token=x"),
    ("POST", "/oauth2/revoke", {**FORM, **BAD}, "token=x"),
    ("GET", "/oauth2/userinfo", {}, ""),
    ("GET", "/oauth2/userinfo", {"authorization": "Bearer not.a.jwt"}, ""),
    ("GET", "/oauth2/userinfo", {"authorization": "Basic abc"}, ""),
    ("POST", "/oauth2/userinfo", {**FORM, "authorization": "Bearer x"}, "access_token=y"),
    ("GET", "/oauth2/authorize", {}, ""),
    ("GET", "/oauth2/authorize?client_id=nobody&response_type=code", {}, ""),
    ("PUT", "/oauth2/token", {}, ""),  # a method the route lacks: the router's 405, both ways
    ("GET", "/oauth2/token/", {}, ""),
]
VARYING = {"x-request-id", "date", "set-cookie"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    with migrated_database("sqlite", tmp_path_factory.mktemp("exact")) as url:
        settings = Settings(
            database_url=url,
            master_key=jose.b64.encode_str(b"\x01" * 32),
            master_key_file=Path(url.removeprefix("sqlite:///")).with_name("master.key"),
            issuer="http://testserver",
        )
        yield create_app(settings)


def _index(app: FastAPI) -> ExactRoutes:
    stack = app.router.middleware_stack
    assert isinstance(stack, ExactRoutes)
    return stack


def _answer(client: TestClient, method: str, path: str, headers: dict[str, str], body: str) -> Any:
    response = client.request(method, path, headers=headers, content=body)
    kept = sorted((name, value) for name, value in response.headers.items() if name not in VARYING)
    return response.status_code, kept, response.content


def test_the_busiest_routes_are_found_by_one_lookup(app: FastAPI) -> None:
    routes = _index(app).routes
    for hot in (
        ("POST", "/oauth2/token"),
        ("POST", "/oauth2/introspect"),
        ("GET", "/oauth2/userinfo"),
        ("POST", "/oauth2/userinfo"),
        ("GET", "/oauth2/authorize"),
        ("GET", "/.well-known/jwks.json"),
    ):
        route, _ = routes[hot]
        assert route.path == hot[1] and hot[0] in route.methods
    # Routes with dependencies or path parameters stay FastAPI's.
    assert not any(path.startswith("/admin/") for _, path in routes)
    assert not any("{" in path for _, path in routes)
    assert ("GET", "/metrics") not in routes


@pytest.mark.parametrize(("method", "path", "headers", "body"), REQUESTS)
def test_an_indexed_answer_is_the_routers_answer(
    app: FastAPI, method: str, path: str, headers: dict[str, str], body: str
) -> None:
    index = _index(app)
    with TestClient(app, base_url="http://testserver") as client:
        through_index = _answer(client, method, path, headers, body)
        saved = index.routes
        index.routes = {}  # every request to FastAPI's router
        try:
            through_router = _answer(client, method, path, headers, body)
        finally:
            index.routes = saved
    assert through_index == through_router
    assert through_index[0] < 500


def test_a_request_under_a_root_path_goes_to_the_router(app: FastAPI) -> None:
    seen: list[str] = []

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])

    index = ExactRoutes(router, _index(app).routes)
    scope = {"type": "http", "method": "GET", "path": "/.well-known/jwks.json", "root_path": "/x"}

    async def nothing() -> dict[str, Any]:
        raise AssertionError("not read")

    async def unsent(message: Any) -> None:
        raise AssertionError("not sent")

    asyncio.run(index(scope, nothing, unsent))
    assert seen == ["/.well-known/jwks.json"]


def test_the_metrics_label_an_indexed_request_by_its_route(app: FastAPI) -> None:
    with TestClient(app, base_url="http://testserver") as client:
        client.get("/.well-known/jwks.json")
        text = app.state.metrics.render().decode()
    assert 'route="/.well-known/jwks.json"' in text
