"""The HTTP answer to a refusal, per RFC 6750 §3: status, ``WWW-Authenticate``, a JSON body.

The challenge carries the realm, the RFC 6750 ``error``, the stable code as
``error_description``, and for a missing scope the ``scope`` the route needs. A request that sent
no token gets a bare challenge. Nothing in an answer echoes the token.

>>> from tessera.guard.errors import TokenRefused, InsufficientScope
>>> reply = answer(TokenRefused("expired"), realm="orders")
>>> reply.status, reply.headers["WWW-Authenticate"]
(401, 'Bearer realm="orders", error="invalid_token", error_description="expired"')
>>> reply.body
b'{"error":"invalid_token","error_description":"expired"}'
>>> answer(InsufficientScope(["orders:write"]), realm="orders").headers["WWW-Authenticate"]
'Bearer realm="orders", error="insufficient_scope", error_description="insufficient_scope", \
scope="orders:write"'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import GuardError, InsufficientScope, Unavailable


@dataclass(frozen=True, slots=True)
class Answer:
    """Status, headers and JSON body of an HTTP refusal."""

    status: int
    headers: dict[str, str]
    body: bytes
    content: dict[str, Any]


def answer(error: GuardError, *, realm: str) -> Answer:
    """The HTTP answer for ``error``.

    >>> from tessera.guard.errors import MissingToken
    >>> answer(MissingToken(), realm="api").headers
    {'WWW-Authenticate': 'Bearer realm="api"', 'Cache-Control': 'no-store'}
    """
    content: dict[str, Any] = {"error": error.error or "unauthorized"}
    content["error_description"] = error.code
    if isinstance(error, InsufficientScope):
        content["scope"] = " ".join(error.scope)
    headers: dict[str, str] = {}
    if error.challenge:
        headers["WWW-Authenticate"] = challenge(error, realm=realm)
    if isinstance(error, Unavailable):
        headers["Retry-After"] = "5"
    headers["Cache-Control"] = "no-store"
    return Answer(error.status, headers, orjson.dumps(content), content)


def challenge(error: GuardError, *, realm: str) -> str:
    """The ``WWW-Authenticate`` value for ``error``.

    >>> from tessera.guard.errors import InvalidRequest
    >>> challenge(InvalidRequest("token_in_query"), realm="api")
    'Bearer realm="api", error="invalid_request", error_description="token_in_query"'
    """
    params = [("realm", realm)]
    if error.error is not None:
        params += [("error", error.error), ("error_description", error.code)]
    if isinstance(error, InsufficientScope):
        params.append(("scope", " ".join(error.scope)))
    return "Bearer " + ", ".join(f'{name}="{_quoted(value)}"' for name, value in params)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
