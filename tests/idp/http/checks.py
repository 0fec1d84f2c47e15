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


PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code"}


def _headers(response: Any) -> dict[str, str]:
    """Lower-cased headers of an httpx response, or of schemathesis's (whose values are lists)."""
    return {
        name.lower(): value[0] if isinstance(value, list) else value
        for name, value in response.headers.items()
    }


def assert_problem(response: Any, status: int, code: str | None = None) -> None:
    """An RFC 9457 problem of the admin API: its media type, its members, a ``type`` stable
    per ``code``, and the status it answers with."""
    headers = _headers(response)
    assert response.status_code == status, response.text
    assert headers["content-type"] == "application/problem+json", response.text
    assert headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) >= PROBLEM_MEMBERS, body
    assert body["status"] == status
    assert body["type"] == f"urn:tessera:problem:{body['code']}"
    if code is not None:
        assert body["code"] == code, body


def assert_admin_refusal(response: Any) -> None:
    """Every 4xx of the admin API: the guard's RFC 6750 answer (a ``Bearer`` challenge: 401,
    403, or 400 for a malformed credential), or an RFC 9457 problem — never FastAPI's
    ``{"detail": ...}``."""
    if _headers(response).get("www-authenticate", "").startswith("Bearer"):
        assert response.status_code in (400, 401, 403), response.status_code
        body = response.json()
        assert isinstance(body.get("error"), str), body
        return
    assert_problem(response, response.status_code)


def assert_error_page(response: Any) -> None:
    """The provider's own HTML error page (nowhere safe to redirect to), with its headers."""
    headers = _headers(response)
    assert headers["content-type"].startswith("text/html")
    assert "Cannot continue" in response.text
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
