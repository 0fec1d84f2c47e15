"""The bounds of a request, checked before any handler runs (:class:`.edge.Edge`): its headers
(431) and its body (413, before it is read, or as it streams in).

A refusal speaks the language of the route it was aimed at: an RFC 9457 problem under
``/admin/``, an RFC 6749 ``invalid_request`` everywhere else (:func:`refusal`).

uvicorn's default parser (httptools) reads a request's headers whole before the app sees them,
so these bounds protect the handlers and the logs, not the server's memory: in front of many
nodes, bound headers at the proxy too (nginx ``large_client_header_buffers 4 16k``, HAProxy
``tune.bufsize``).

>>> refusal("/admin/tenants", 431, "headers_too_large", "request headers too large").media_type
'application/problem+json'
>>> refusal("/oauth2/token", 413, "body_too_large", "request body too large").body
b'{"error":"invalid_request","error_description":"request body too large"}'
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import Response
from starlette.types import Scope

from .answers import json_answer
from .problems import problem_response

ADMIN_PREFIX = "/admin/"


def refusal(path: str, status: int, code: str, detail: str) -> Response:
    """The answer to a request refused at the edge, in the shape its route speaks."""
    if path.startswith(ADMIN_PREFIX):
        return problem_response(code, detail, status)
    return json_answer({"error": "invalid_request", "error_description": detail}, status)


@dataclass(frozen=True, slots=True)
class Limits:
    """A request's bounds: at most ``max_header_count`` header fields, adding up to at most
    ``max_header_bytes`` (name and value of each), and a body of at most ``max_body_bytes``
    (declared or streamed). Checked by :class:`.edge.Edge`."""

    max_header_bytes: int
    max_header_count: int
    max_body_bytes: int

    def refusal(self, scope: Scope) -> Response | None:
        """Why a request is refused before its body is read: 431 for its headers, 400 for a
        malformed ``Content-Length``, 413 for a declared body too large; else ``None``.

        >>> limits = Limits(max_header_bytes=64, max_header_count=10, max_body_bytes=8)
        >>> scope = {"path": "/oauth2/token", "headers": [(b"content-length", b"9")]}
        >>> limits.refusal(scope).status_code
        413
        >>> limits.refusal({"path": "/", "headers": [(b"x", b"y" * 64)]}).status_code
        431
        """
        headers = scope["headers"]
        too_many = len(headers) > self.max_header_count
        if too_many or sum(len(name) + len(value) for name, value in headers) > (
            self.max_header_bytes
        ):
            what = "too many request headers" if too_many else "request headers too large"
            return refusal(scope["path"], 431, "headers_too_large", what)
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    return refusal(scope["path"], 400, "malformed", "malformed Content-Length")
                if int(value) > self.max_body_bytes:
                    return too_large(scope["path"])
        return None


class BodyTooLarge(Exception):
    """A streamed body went past its bound (raised from the app's ``receive``)."""


def too_large(path: str) -> Response:
    """The 413 of a body past its bound."""
    return refusal(path, 413, "body_too_large", "request body too large")
