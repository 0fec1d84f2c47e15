"""The README's Python examples run exactly as written, and the guard example really guards."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tessera import jose

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_examples_run_as_written() -> None:
    blocks = _blocks()
    assert len(blocks) >= 2, "the README has the library and the guard examples"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_guard_example_accepts_a_token_and_refuses_without() -> None:
    namespace: dict[str, Any] = {}
    block = next(block for block in _blocks() if "FastAPIGuard" in block)
    exec(compile(block, str(README), "exec"), namespace)
    claims = {"iss": "https://id.example", "aud": "orders", "sub": "ada", "exp": 2**31,
              "scope": "orders:read", "tenant": "acme"}  # fmt: skip
    token = jose.jwt.encode(claims, namespace["signing"])
    client = TestClient(namespace["app"])
    ok = client.get("/tenants/acme/orders", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json() == {"tenant": "acme", "sub": "ada"}
    other_tenant = client.get("/tenants/other/orders", headers={"Authorization": f"Bearer {token}"})
    assert other_tenant.status_code == 403
    missing = client.get("/tenants/acme/orders")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
