"""Revocation fan-out to Redis, in the wire format ``tessera.guard``'s Redis list follows: the
denylist's keys and the log every guard reads from where it left off.

The database is the truth; Redis carries it to the guards. What could not be written there is
owed, and written again from the database (:meth:`RedisFanout.repair`, every second on each
server): nothing committed is ever lost to a Redis outage or restart.

>>> fanout = RedisFanout("redis://127.0.0.1:1/0")
>>> fanout.prefix, fanout.owed_for(now=0.0)
('tessera:revocation:', 0.0)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from sqlalchemy import select

from ...guard.revocation_redis import DEFAULT_PREFIX, RedisRevocationList
from ..store.database import Database
from ..store.models import RevokedToken, SubjectNotBefore

log = logging.getLogger("tessera.idp")

# Seconds between two complete writes of the denylist even when nothing seems owed: what a
# process that could not write and then ended (a command of the CLI) owed reaches Redis by then.
RECONCILE_EVERY = 60.0
# Seconds a write to Redis may take (on the path of the request that revoked, after commit).
TIMEOUT = 1.0


class RedisFanout:
    """Appends each committed revocation to the Redis log, so every guard learns of it at once.

    When a write fails (Redis down), the revocation still holds at the provider (introspection,
    refresh) and guards on sensitive routes fail closed; this node then owes Redis its whole
    denylist, and stops trying each revocation on its own (no request waits on a dead Redis).
    :meth:`repair` pays it once Redis answers; it also writes everything again when it meets
    another Redis than before (a restart without persistence), at its first call, and every
    ``RECONCILE_EVERY`` seconds.
    """

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self._writer = RedisRevocationList(url, prefix=prefix, max_silence=TIMEOUT)
        self._lock = threading.Lock()
        self._owed_since: float | None = None  # the first write that failed, not yet repaid
        self._direct = True  # whether each revocation is written as it commits
        self._failures = 0  # every failed write, ever (a repair repays only if none came since)
        self._server: str | None = None  # the Redis (run_id) last written in full
        self._reconciled = 0.0  # monotonic time of the last complete write
        self.published = 0  # revocations written as they committed
        self.republished = 0  # complete writes of the denylist

    def revoke_jti(self, jti: str, expires_at: int) -> None:
        """Publish a revoked access token until its expiry."""
        self._publish(lambda: self._writer.revoke(jti, expires_at=expires_at))

    def not_before(self, tenant_id: str, subject: str, not_before: int, expires_at: int) -> None:
        """Publish a subject's not-before (logout everywhere)."""
        self._publish(
            lambda: self._writer.revoke_subject(
                subject, not_before=not_before, expires_at=expires_at
            )
        )

    def owed_for(self, *, now: float | None = None) -> float:
        """Seconds the oldest revocation committed here and not yet in Redis has waited (0.0:
        none is owed). What ``/metrics`` reports as the fan-out lag."""
        owed = self._owed_since
        if owed is None:
            return 0.0
        return max((time.time() if now is None else now) - owed, 0.0)

    @property
    def failures(self) -> int:
        """Writes to Redis that failed since this process started."""
        return self._failures

    def repair(self, database: Database, *, now: float | None = None) -> int | None:
        """Write the whole denylist from ``database`` to Redis when it is owed, when Redis is
        another one than last time, at the first call, or when ``RECONCILE_EVERY`` has passed;
        returns how many entries were written (``None``: nothing was due, or Redis is still
        away). Safe on every node at once: the writes are the same."""
        moment = time.time() if now is None else now
        with self._lock:
            failures = self._failures
            owed = self._owed_since is not None
        try:
            server = self._writer.server_id()
            due = time.monotonic() - self._reconciled >= RECONCILE_EVERY
            if not owed and not due and server == self._server:
                return None
            # From here each revocation is written again as it commits: one committed before
            # the read below is in it, one after is written on its own.
            with self._lock:
                if self._failures == failures:
                    self._direct = True
            jtis, subjects = _denylist(database, moment)
            written = self._writer.republish(jtis, subjects, now=moment)
        except redis.RedisError as error:
            self._failed(error, moment)
            return None
        with self._lock:
            if self._failures == failures:
                if self._owed_since is not None:
                    log.warning("revocation fan-out: Redis reachable again; denylist written")
                self._owed_since = None
                self._server = server
                self._reconciled = time.monotonic()
        self.republished += 1
        return written

    def close(self) -> None:
        """Close the connection to Redis."""
        self._writer.redis.close()

    def _publish(self, write: Callable[[], None]) -> None:
        if not self._direct:  # owed: the next repair writes this one with the rest
            return
        try:
            write()
        except redis.RedisError as error:
            self._failed(error, time.time())
        else:
            self.published += 1

    def _failed(self, error: Exception, now: float) -> None:
        with self._lock:
            first = self._owed_since is None
            self._failures += 1
            self._direct = False
            if first:
                self._owed_since = now
        if first:
            log.warning(
                "revocation fan-out: Redis unreachable (%s); the database's denylist is"
                " written again once it answers",
                type(error).__name__,
            )


def _denylist(
    database: Database, now: float
) -> tuple[list[tuple[str, float]], list[tuple[str, float, float]]]:
    """The live entries: revoked tokens' ids, and subjects' not-befores (the latest of a
    subject's, should two tenants share a subject name)."""
    with database.session(readonly=True) as session:
        jtis = [
            (jti, float(expires_at))
            for jti, expires_at in session.execute(
                select(RevokedToken.jti, RevokedToken.expires_at).where(
                    RevokedToken.expires_at > now
                )
            )
        ]
        latest: dict[str, tuple[float, float]] = {}
        for subject, not_before, expires_at in session.execute(
            select(
                SubjectNotBefore.subject,
                SubjectNotBefore.not_before,
                SubjectNotBefore.expires_at,
            ).where(SubjectNotBefore.expires_at > now)
        ):
            kept_before, kept_until = latest.get(subject, (not_before, expires_at))
            latest[subject] = (max(kept_before, not_before), max(kept_until, expires_at))
    return jtis, [(subject, float(nbf), float(exp)) for subject, (nbf, exp) in latest.items()]
