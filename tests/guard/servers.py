"""Real servers for the guard's tests: an ASGI app under uvicorn on 127.0.0.1, an ephemeral port.

``JwksServer`` plays an identity provider's key endpoint and metadata: it counts every request
it serves (so limits are checked at the server) and can be switched to misbehave.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

from ..services import free_port

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class UvicornThread:
    """Serve ``app`` with uvicorn in a daemon thread until ``stop()``."""

    def __init__(self, app: Any, port: int = 0) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            interface="asgi3",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    def start(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class JwksServer:
    """A JWKS endpoint (``/jwks``) and issuer metadata (``/.well-known/...``) that count requests.

    ``mode``: ``ok``; ``error`` (HTTP 500); ``oversize`` (a body past 512 KiB with no
    Content-Length); ``redirect`` (302 to a good JWKS); ``slow`` (trickles bytes).
    """

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.mode = "ok"
        self.cache_control: str | None = None
        self.metadata_issuer: str | None = None
        self.metadata_at = "openid-configuration"
        self.counts: dict[str, int] = {}
        self.inactive: set[str] = set()
        self.introspection_answer: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._uvicorn = UvicornThread(self.app)

    @property
    def jwks_fetches(self) -> int:
        return self.counts.get("/jwks", 0)

    @property
    def url(self) -> str:
        return self._uvicorn.url

    def start(self) -> JwksServer:
        self._uvicorn.start()
        return self

    def stop(self) -> None:
        self._uvicorn.stop()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        path = scope["path"]
        with self._lock:
            self.counts[path] = self.counts.get(path, 0) + 1
        if path == "/jwks":
            await self._jwks(send)
        elif path == "/introspect":
            await self._introspect(scope, receive, send)
        elif path == "/array":
            await _reply(send, 200, b"[1]")
        elif path == "/good-jwks":
            await _reply(send, 200, orjson.dumps(self.jwks))
        elif path.startswith("/.well-known/") and self.metadata_issuer is not None:
            metadata = {"issuer": self.metadata_issuer, "jwks_uri": self.url + "/jwks"}
            if path.endswith(self.metadata_at):
                await _reply(send, 200, orjson.dumps(metadata))
            else:
                await _reply(send, 404, b"{}")
        else:
            await _reply(send, 404, b"{}")

    async def _introspect(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = dict(scope["headers"])
        expected = b"Basic " + base64.b64encode(b"api:s3cret")
        if scope["method"] != "POST" or headers.get(b"authorization") != expected:
            await _reply(send, 401, b'{"error":"invalid_client"}')
            return
        form = urllib.parse.parse_qs(body.decode())
        token = form.get("token", [""])[0]
        answer = self.introspection_answer
        if answer is None:
            answer = {"active": token not in self.inactive}
        await _reply(send, 200, orjson.dumps(answer))

    async def _jwks(self, send: Send) -> None:
        if self.mode == "error":
            await _reply(send, 500, b"{}")
        elif self.mode == "redirect":
            await _reply(send, 302, b"", [(b"location", (self.url + "/good-jwks").encode())])
        elif self.mode == "declared-oversize":
            await _reply(send, 200, b" " * (600 * 1024) + orjson.dumps(self.jwks))
        elif self.mode == "gzip":
            await _reply(send, 200, orjson.dumps(self.jwks), [(b"content-encoding", b"gzip")])
        elif self.mode == "oversize":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            chunk = b" " * 65536
            for _ in range(16):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": orjson.dumps(self.jwks)})
        else:
            headers = []
            if self.cache_control is not None:
                headers.append((b"cache-control", self.cache_control.encode()))
            await _reply(send, 200, orjson.dumps(self.jwks), headers)


async def _reply(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RedisProcess:
    """A redis-server of the test's own on a free port, started and stopped by the test alone."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class CuttableProxy:
    """A TCP relay to 127.0.0.1:``target`` on a free port that a test can cut: :meth:`cut`
    closes every relayed connection and refuses new ones until :meth:`restore` — a network
    partition between one client and its server, while the server and its other clients go on.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                _close(client)
                continue
            # The timeout was the connection's: an idle relayed connection (a pooled one) must
            # live as long as its ends keep it, not die after 2 s without a byte.
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
