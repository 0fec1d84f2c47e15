"""The examples run with one command and answer as their docs say (real processes, real HTTP)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from ..services import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["fastapi_orders", "flask_api"])
def running(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    env.pop("TESSERA_ISSUER", None)
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / f"{request.param}.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/", timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{request.param} did not start") from None
                time.sleep(0.1)
        yield request.param, base
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
        assert "curl" in output


def test_example_serves_and_guards(running: tuple[str, str]) -> None:
    name, base = running
    path = "/tenants/acme/orders" if name == "fastapi_orders" else "/notes"
    reply = httpx.get(base + path)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == 'Bearer realm="api"'


def test_fastapi_orders_example_isolates_tenants() -> None:
    from fastapi.testclient import TestClient

    example = load("fastapi_orders")
    token = example.demo_token("orders:read orders:write")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(example.app) as client:
        placed = client.post("/tenants/acme/orders?item=tea", headers=headers)
        assert placed.status_code == 201
        assert client.get("/tenants/acme/orders", headers=headers).json()[0]["item"] == "tea"
        assert client.get("/tenants/globex/orders", headers=headers).status_code == 403
        cancel = client.delete("/tenants/acme/orders/1", headers=headers)
        assert cancel.json()["error_description"] == "insufficient_role"
    paths = example.app.openapi()["paths"]["/tenants/{tenant_id}/orders"]
    assert paths["get"]["security"] == [{"tessera": ["orders:read"]}]
    assert paths["post"]["security"] == [{"tessera": ["orders:write"]}]


def test_flask_example_round_trip() -> None:
    example = load("flask_api")
    headers = {"Authorization": f"Bearer {example.demo_token('notes:read notes:write')}"}
    client = example.app.test_client()
    assert client.post("/notes", json={"text": "hi"}, headers=headers).status_code == 201
    assert client.get("/notes", headers=headers).get_json() == {"notes": ["hi"]}
    assert client.get("/admin/stats", headers=headers).status_code == 403
