"""A bounded load through the balancer, for the fault tests: client_credentials grants and
refresh chains on a few threads, every answer kept (status, token id, Retry-After, when)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import httpx

from tessera import jose

from .cluster import Prepared


def refresh(http: httpx.Client, prepared: Prepared, token: str) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(prepared.app_id, prepared.app_secret),
    )


def client_credentials(http: httpx.Client, prepared: Prepared) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(prepared.service_id, prepared.service_secret),
    )


def jti_of(answer: httpx.Response) -> str:
    return str(jose.jwt.decode_unverified(answer.json()["access_token"])[1]["jti"])


@dataclass(frozen=True)
class Answer:
    kind: str  # client_credentials, refresh, introspection or password
    status: int  # 0: no answer (the connection failed or was cut)
    jti: str | None  # the access token's, on a 200
    retry_after: str | None
    at: float  # monotonic time the answer came


@dataclass
class Load:
    """A bounded load through the balancer: threads of client_credentials grants and refresh
    chains — and, ``mixed``, of introspections and password logins too."""

    prepared: Prepared
    url: str  # the balancer's, or one node's
    answers: list[Answer] = field(default_factory=list)
    threads: int = 6  # shared evenly by the kinds of request
    mixed: bool = False
    faulted_at: float = 0.0  # monotonic time ``during()`` began
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, seconds: float, *, during: Callable[[], None], at: float) -> None:
        """Load for ``seconds``; ``during()`` runs ``at`` seconds in, on this thread."""
        spares = self.prepared.new_families(40)
        kinds: list[tuple[Callable[..., None], tuple[object, ...]]] = [
            (self._grants, ()),
            (self._chain, (spares,)),
        ]
        if self.mixed:
            kinds += [(self._introspections, ()), (self._logins, ())]
        each = max(1, self.threads // len(kinds))
        workers = [
            threading.Thread(target=target, args=arguments)
            for target, arguments in kinds
            for _ in range(each)
        ]
        for worker in workers:
            worker.start()
        time.sleep(at)
        self.faulted_at = time.monotonic()
        during()
        time.sleep(max(seconds - at, 0))
        self._stop.set()
        for worker in workers:
            worker.join(timeout=30)

    @property
    def failures(self) -> list[Answer]:
        """What got no answer, or a server error."""
        return [answer for answer in self.answers if answer.status == 0 or answer.status >= 500]

    def _call(self, kind: str, call: Callable[[], httpx.Response]) -> httpx.Response | None:
        try:
            response: httpx.Response | None = call()
        except httpx.TransportError:
            response = None
        status = response.status_code if response is not None else 0
        issued = status == 200 and kind != "introspection"
        jti = jti_of(response) if response is not None and issued else None
        retry_after = response.headers.get("retry-after") if response is not None else None
        with self._lock:
            self.answers.append(Answer(kind, status, jti, retry_after, time.monotonic()))
        return response

    def _grants(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self._stop.is_set():
                self._call("client_credentials", partial(client_credentials, http, self.prepared))

    def _chain(self, spares: list[str]) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            token = self._take(spares)
            while not self._stop.is_set() and token is not None:
                answer = self._call("refresh", partial(refresh, http, self.prepared, token))
                if answer is None or answer.status_code >= 500:
                    continue  # rotated or not: try the same token again (a replay revokes)
                if answer.status_code == 200:
                    token = answer.json()["refresh_token"]
                else:  # its family was revoked (an answer lost, then replayed): start another
                    token = self._take(spares)

    def _introspections(self) -> None:
        prepared = self.prepared
        with httpx.Client(base_url=self.url, timeout=10) as http:
            token = None
            while not self._stop.is_set():
                if token is None:
                    answer = self._call(
                        "client_credentials", partial(client_credentials, http, prepared)
                    )
                    token = (
                        answer.json()["access_token"]
                        if answer and answer.status_code == 200
                        else None
                    )
                    continue
                self._call(
                    "introspection",
                    partial(
                        http.post,
                        "/oauth2/introspect",
                        data={"token": token},
                        auth=(prepared.service_id, prepared.service_secret),
                    ),
                )

    def _logins(self) -> None:
        prepared = self.prepared
        form = {"grant_type": "password", "username": "ada", "password": prepared.password}
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self._stop.is_set():
                self._call(
                    "password",
                    partial(
                        http.post,
                        "/oauth2/token",
                        data=form,
                        auth=(prepared.login_id, prepared.login_secret),
                    ),
                )

    def _take(self, spares: list[str]) -> str | None:
        with self._lock:
            return spares.pop() if spares else None
