"""The Flask extension through Flask's test client and over real HTTP (werkzeug's server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from tessera import jose
from tessera.guard import Guard, Transport
from tessera.guard.flask import FlaskGuard, current_principal

from .conftest import AUDIENCE, ISSUER, Mint
from .scenario import (
    REALM,
    Call,
    Reply,
    check_cookie_mode,
    check_rfc6750_answers,
    check_tenant_isolation,
    httpx_call,
)


def build_app(signing_key: jose.Key) -> Flask:
    guard = Guard(
        keys=signing_key.public(),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        realm=REALM,
    )
    app = Flask(__name__)
    auth = FlaskGuard(guard, transport=Transport(cookie="access_token"))
    auth.init_app(app)

    def out() -> dict[str, Any]:
        assert g.principal is current_principal()
        return {"sub": current_principal().sub, "tenant": current_principal().tenant}

    @app.get("/orders")
    @auth.required(scopes=["orders:read"])
    def list_orders() -> dict[str, Any]:
        return out()

    @app.post("/orders")
    @auth.required(scopes=["orders:write"])
    def place_order() -> dict[str, Any]:
        return out()

    @app.get("/tenants/<tenant_id>/orders")
    @auth.required(scopes=["orders:read"], tenant="tenant_id")
    def tenant_orders(tenant_id: str) -> dict[str, Any]:
        return out()

    @app.get("/admin")
    @auth.required(roles=["admin"], sensitive=True)
    def admin() -> dict[str, Any]:
        return out()

    return app


def flask_call(app: Flask) -> Call:
    """Flask's test client keeps its own cookie jar: a ``Cookie`` header goes into a fresh one."""

    def call(method: str, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        client: FlaskClient = app.test_client()
        headers = dict(headers or {})
        for pair in filter(None, headers.pop("Cookie", "").split("; ")):
            name, _, value = pair.partition("=")
            client.set_cookie(name, value)
        response = client.open(path, method=method, headers=headers)
        lowered = {name.lower(): value for name, value in response.headers.items()}
        return Reply(response.status_code, lowered, response.get_json(silent=True))

    return call


@pytest.fixture
def app(signing_key: jose.Key) -> Flask:
    return build_app(signing_key)


@pytest.fixture
def live(app: Flask) -> Iterator[httpx.Client]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}") as client:
            yield client
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_rfc6750_answers_through_the_test_client(app: Flask, mint: Mint) -> None:
    check_rfc6750_answers(flask_call(app), mint)


def test_rfc6750_answers_over_real_http(live: httpx.Client, mint: Mint) -> None:
    check_rfc6750_answers(httpx_call(live), mint)


def test_cookie_mode_and_csrf(app: Flask, live: httpx.Client, mint: Mint) -> None:
    check_cookie_mode(flask_call(app), mint)
    check_cookie_mode(httpx_call(live), mint)


def test_tenant_isolation(app: Flask, live: httpx.Client, mint: Mint) -> None:
    check_tenant_isolation(flask_call(app), mint)
    check_tenant_isolation(httpx_call(live), mint)
