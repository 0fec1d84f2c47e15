"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a provider session ends,
every client that took part in it and registered a ``backchannel_logout_uri`` is told, server to
server, with a signed logout token (``typ: logout+jwt``; ``events``, ``sid``, ``sub``; never a
``nonce``).

Delivery happens after the logout has committed, on a small pool of threads: a slow or dead
client never holds a logout up. Each delivery gets a short timeout and a bounded number of
attempts; its outcome is audited (``logout.backchannel_sent`` or ``logout.backchannel_failed``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tessera import jose

from ..config import Settings
from ..store.database import Database
from .audit import record
from .keyring import Keyring

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("tessera.idp.backchannel")

TYP = "logout+jwt"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_TTL = 120  # a logout token is used at once; two minutes covers clock skew
ATTEMPTS = 3
BACKOFF = 0.5  # seconds before the second attempt; doubled before each next one


@dataclass(frozen=True, slots=True)
class Delivery:
    """One logout token for one client's back-channel logout URI."""

    tenant_id: str
    client_id: str
    uri: str
    token: str
    subject: str
    session_id: str


class BackchannelLogout:
    """Mints logout tokens and delivers them in the background."""

    def __init__(self, keyring: Keyring, database: Database, settings: Settings) -> None:
        self._keyring = keyring
        self._database = database
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tessera-logout")
        self._http: httpx.Client | None = None  # made at the first delivery (_client)
        self._http_lock = threading.Lock()

    def logout_token(
        self,
        *,
        client_id: str,
        alg: str,
        subject: str,
        session_id: str,
        now: int,
        session: Session | None = None,
    ) -> str:
        """A logout token for ``client_id`` naming the user and the provider session."""
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_TTL,
            "jti": str(uuid.uuid4()),
            "sub": subject,
            "sid": session_id,
            "events": {EVENT: {}},
        }
        key = self._keyring.signing_key(now, alg=alg, session=session)
        return jose.jwt.encode(claims, key, headers={"typ": TYP})

    def send(self, deliveries: list[Delivery]) -> None:
        """Deliver each token in the background (each outcome is audited)."""
        for delivery in deliveries:
            self._pool.submit(self._deliver, delivery)

    def _client(self) -> httpx.Client:
        # httpx (~20 MB with what it imports) is loaded by the first back-channel logout, not
        # by every provider that never sends one.
        with self._http_lock:
            if self._http is None:
                import httpx

                self._http = httpx.Client(timeout=self._settings.backchannel_logout_timeout)
            return self._http

    def _deliver(self, delivery: Delivery) -> bool:
        import httpx

        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF * 2 ** (attempt - 1))
            try:
                response = self._client().post(delivery.uri, data={"logout_token": delivery.token})
            except httpx.HTTPError as error:
                problem = type(error).__name__
                continue
            # §2.8: 200 (or 204) means the client logged the session out; 400 is a refusal
            # that another attempt will not change.
            if response.status_code in (200, 204):
                self._audit(delivery, attempt + 1, None)
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code == 400:
                break
        self._audit(delivery, attempt + 1, problem)
        return False

    def _audit(self, delivery: Delivery, attempts: int, problem: str | None) -> None:
        details: dict[str, Any] = {"session": delivery.session_id, "attempts": attempts}
        if problem is not None:
            details["problem"] = problem
        try:
            with self._database.session() as session:
                record(
                    session,
                    "logout.backchannel_failed" if problem else "logout.backchannel_sent",
                    tenant_id=delivery.tenant_id,
                    outcome="failure" if problem else "success",
                    subject=delivery.subject,
                    client_id=delivery.client_id,
                    details=details,
                )
        except Exception:  # the provider may be closing; the log still says it
            log.exception("could not audit a back-channel logout to %s", delivery.client_id)

    def close(self) -> None:
        """Finish the deliveries under way and release the threads and connections."""
        self._pool.shutdown(wait=True)
        if self._http is not None:
            self._http.close()
