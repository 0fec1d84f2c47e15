"""Over real HTTP, a correctly signed token with an ill-typed claim gets 401 ``invalid_token`` —
never a 500 — and the route sees a Principal whose fields have their annotated types.

The app is the README's own FastAPI example, executed as written and served by uvicorn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.jose.forge import forge_claims

from .servers import UvicornThread

README = Path(__file__).resolve().parents[2] / "README.md"
GOOD: dict[str, Any] = {
    "iss": "https://id.example",
    "aud": "orders",
    "sub": "ada",
    "exp": 2**31,
    "scope": "orders:read",
    "tenant": "acme",
}


@pytest.fixture(scope="module")
def readme_app() -> Iterator[tuple[httpx.Client, Any]]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    block = next(block for block in blocks if "FastAPIGuard" in block)
    namespace: dict[str, Any] = {}
    exec(compile(block, str(README), "exec"), namespace)
    server = UvicornThread(namespace["app"]).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            yield client, namespace["signing"]
    finally:
        server.stop()


def _call(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/tenants/acme/orders", headers={"Authorization": f"Bearer {token}"})


def test_a_well_typed_token_passes(readme_app: tuple[httpx.Client, Any]) -> None:
    client, key = readme_app
    answer = _call(client, forge_claims(GOOD, key))
    assert (answer.status_code, answer.json()) == (200, {"tenant": "acme", "sub": "ada"})


@pytest.mark.parametrize(
    ("claim", "value", "code"),
    [
        ("exp", None, "invalid_claim"),
        ("exp", "2147483648", "invalid_claim"),
        ("exp", 1e308, "invalid_claim"),
        ("nbf", None, "invalid_claim"),
        ("iat", True, "invalid_claim"),
        ("sub", None, "invalid_claim"),
        ("sub", "", "invalid_claim"),
        ("sub", 7, "invalid_claim"),
        ("jti", None, "invalid_claim"),
        ("aud", ["orders", None], "invalid_claim"),
        ("tenant", None, "invalid_claim"),
        ("tenant", ["acme"], "invalid_claim"),
        ("scope", ["orders:read"], "invalid_claim"),
        ("roles", "admin", "invalid_claim"),
    ],
)
def test_an_ill_typed_claim_gets_401_invalid_token_not_500(
    readme_app: tuple[httpx.Client, Any], claim: str, value: Any, code: str
) -> None:
    client, key = readme_app
    token = forge_claims({**GOOD, claim: value}, key)
    answer = _call(client, token)
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{code}"' in challenge
    assert token not in answer.text and token not in challenge


def test_a_token_without_sub_is_refused(readme_app: tuple[httpx.Client, Any]) -> None:
    client, key = readme_app
    claims = {name: value for name, value in GOOD.items() if name != "sub"}
    answer = _call(client, forge_claims(claims, key))
    assert answer.status_code == 401
    assert 'error_description="missing_claim"' in answer.headers["www-authenticate"]
