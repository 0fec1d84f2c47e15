"""RFC 6750 answers: exact status, WWW-Authenticate and JSON body for every refusal."""

from __future__ import annotations

import orjson
import pytest

from tessera.guard import (
    CsrfFailed,
    Forbidden,
    GuardError,
    InsufficientScope,
    InvalidRequest,
    MissingToken,
    TokenRefused,
    TokenRevoked,
    Unavailable,
    answer,
)


@pytest.mark.parametrize(
    ("error", "status", "challenge", "body"),
    [
        (MissingToken(), 401, 'Bearer realm="api"', {"error": "unauthorized"}),
        (
            TokenRefused("expired"),
            401,
            'Bearer realm="api", error="invalid_token", error_description="expired"',
            {"error": "invalid_token", "error_description": "expired"},
        ),
        (
            TokenRevoked(),
            401,
            'Bearer realm="api", error="invalid_token", error_description="revoked"',
            {"error": "invalid_token", "error_description": "revoked"},
        ),
        (
            InsufficientScope(["b", "a"]),
            403,
            'Bearer realm="api", error="insufficient_scope", '
            'error_description="insufficient_scope", scope="a b"',
            {
                "error": "insufficient_scope",
                "error_description": "insufficient_scope",
                "scope": "a b",
            },
        ),
        (
            Forbidden("tenant_mismatch"),
            403,
            'Bearer realm="api", error="insufficient_scope", error_description="tenant_mismatch"',
            {"error": "insufficient_scope", "error_description": "tenant_mismatch"},
        ),
        (
            InvalidRequest("token_in_query"),
            400,
            'Bearer realm="api", error="invalid_request", error_description="token_in_query"',
            {"error": "invalid_request", "error_description": "token_in_query"},
        ),
        (CsrfFailed(), 403, None, {"error": "invalid_request", "error_description": "csrf_failed"}),
        (
            Unavailable("keys_unavailable"),
            503,
            None,
            {"error": "temporarily_unavailable", "error_description": "keys_unavailable"},
        ),
    ],
)
def test_answer_per_rfc6750(
    error: GuardError, status: int, challenge: str | None, body: dict[str, str]
) -> None:
    reply = answer(error, realm="api")
    assert reply.status == status
    assert reply.headers.get("WWW-Authenticate") == challenge
    expected = {"error_description": error.code, **body}
    assert orjson.loads(reply.body) == expected == reply.content
    assert reply.headers["Cache-Control"] == "no-store"


def test_realm_is_quoted_safely() -> None:
    reply = answer(MissingToken(), realm='my "api"')
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="my \\"api\\""'


def test_unavailable_asks_to_retry() -> None:
    assert answer(Unavailable("keys_unavailable"), realm="api").headers["Retry-After"] == "5"
