"""A relying party's back-channel endpoint for the tests: a real HTTP server on 127.0.0.1 that
keeps what was posted to it and answers with the status it is told to."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class Receiver:
    """Serves ``POST /logout`` until :meth:`close`; ``status`` is what it answers."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.forms: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                form = {name: values[0] for name, values in parse_qs(body).items()}
                form["content-type"] = self.headers.get("content-type", "")
                receiver.forms.append(form)
                self.send_response(receiver.status)
                self.send_header("cache-control", "no-store")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/logout"

    def wait_for(self, count: int, timeout: float = 15) -> list[dict[str, str]]:
        """The forms received, once there are ``count`` (or the timeout has passed)."""
        deadline = time.monotonic() + timeout
        while len(self.forms) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.forms)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
