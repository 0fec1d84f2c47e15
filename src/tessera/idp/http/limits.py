"""ASGI middlewares that bound a request before any handler runs: its headers (431) and its body
(413, before it is read).

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

from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .answers import json_answer
from .problems import problem_response

ADMIN_PREFIX = "/admin/"


def refusal(path: str, status: int, code: str, detail: str) -> Response:
    """The answer to a request refused at the edge, in the shape its route speaks."""
    if path.startswith(ADMIN_PREFIX):
        return problem_response(code, detail, status)
    return json_answer({"error": "invalid_request", "error_description": detail}, status)


class HeaderLimit:
    """Refuse a request with more than ``max_count`` header fields, or whose fields add up to
    more than ``max_bytes`` (name and value of each), with ``431``."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            too_many = len(headers) > self.max_count
            if too_many or sum(len(name) + len(value) for name, value in headers) > self.max_bytes:
                what = "too many request headers" if too_many else "request headers too large"
                answer = refusal(scope["path"], 431, "headers_too_large", what)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a request whose body exceeds ``max_bytes`` (declared or streamed) with ``413``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    answer = refusal(path, 400, "malformed", "malformed Content-Length")
                    await answer(scope, receive, send)
                    return
                if int(value) > self.max_bytes:
                    await _too_large(path)(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(path)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(path: str) -> Response:
    return refusal(path, 413, "body_too_large", "request body too large")
