"""What every answer of the provider is checked for: RFC 6749 §5.2 errors, no caching, and the
claims of a token (read without verification — the tests verify where it matters)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tessera import jose


def payload(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = orjson.loads(jose.b64.decode(token.split(".")[1]))
    return claims


def header(token: str) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(jose.b64.decode(token.split(".")[0]))
    return fields


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """An RFC 6749 §5.2 answer: the status, a JSON object with ``error`` (and nothing cached)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert set(body) <= {"error", "error_description", "error_uri"}
    assert isinstance(body.get("error_description", ""), str)
