"""A revocation list shared through Redis, mirrored locally and kept current by pub/sub.

Wire format (what an identity provider writes; :meth:`RedisRevocationList.revoke` and
:meth:`~RedisRevocationList.revoke_subject` write exactly this):

- ``{prefix}jti:{jti}`` = ``"1"``, expiring at the token's ``exp`` (``EXPIREAT``);
- ``{prefix}sub:{sub}`` = the not-before (epoch seconds), expiring when every token issued
  before it has expired;
- each write is announced on the channel ``{prefix}events`` as JSON:
  ``{"jti": "...", "exp": 1700000000}`` or ``{"sub": "...", "nbf": 1700000000, "exp": ...}``.

Every guard subscribes, loads the current entries once subscribed (so nothing falls between the
two), and then answers from memory: a revocation reaches all guards at the speed of pub/sub, and
a check costs a dictionary lookup. A background thread pings the subscription; when Redis stops
answering for ``max_silence`` seconds the list raises ``RevocationUnavailable`` for anything it
does not already know is revoked, and the guard fails closed on sensitive routes. After a
reconnection it loads everything again (pub/sub does not replay what was missed).

>>> revocations = RedisRevocationList("redis://127.0.0.1:1/0", prefix="doc:")
>>> revocations.is_revoked("t-1")
Traceback (most recent call last):
...
tessera.guard.errors.RevocationUnavailable: redis revocation list is not in sync
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any, cast

import orjson
import redis

from .errors import RevocationUnavailable

logger = logging.getLogger("tessera.guard")

DEFAULT_PREFIX = "tessera:revocation:"


class RedisRevocationList:
    """A :class:`~tessera.guard.revocation.RevocationList` backed by Redis (see module doc).

    Call :meth:`start` (or use it as a context manager) to subscribe; until it is in sync, or
    while Redis is unreachable, unknown answers raise ``RevocationUnavailable``.

    >>> RedisRevocationList("redis://127.0.0.1:1/0", prefix="doc:").channel
    'doc:events'
    """

    def __init__(
        self,
        redis_client: redis.Redis | str,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_silence: float = 3.0,
        resync_interval: float = 60.0,
    ) -> None:
        if isinstance(redis_client, str):
            redis_client = redis.Redis.from_url(
                redis_client, socket_timeout=max_silence, socket_connect_timeout=max_silence
            )
        self.redis = redis_client
        self.prefix = prefix
        self.channel = prefix + "events"
        self.max_silence = max_silence
        self.resync_interval = resync_interval
        self._jtis: dict[str, float] = {}
        self._subjects: dict[str, tuple[float, float]] = {}
        self._in_sync_until = 0.0
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self, *, wait: float = 2.0) -> RedisRevocationList:
        """Subscribe in a background thread; wait up to ``wait`` seconds for the first sync.

        >>> revocations = RedisRevocationList("redis://127.0.0.1:9/0", prefix="doc:")
        >>> revocations.start(wait=0.1).in_sync  # nothing listens on port 9
        False
        >>> revocations.close()
        """
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="tessera-revocation", daemon=True
            )
            self._thread.start()
        self._ready.wait(wait)
        return self

    def close(self) -> None:
        """Stop the background thread and close the connections.

        >>> RedisRevocationList("redis://127.0.0.1:9/0").close()
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.max_silence + 2)
            self._thread = None
        self._in_sync_until = 0.0
        self.redis.close()

    def __enter__(self) -> RedisRevocationList:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def in_sync(self) -> bool:
        """Whether the local mirror is known to be current.

        >>> RedisRevocationList("redis://127.0.0.1:9/0").in_sync
        False
        """
        return time.monotonic() < self._in_sync_until

    # ---------------------------------------------------------------- answers

    def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is revoked; raises ``RevocationUnavailable`` if it cannot know.

        >>> RedisRevocationList("redis://127.0.0.1:9/0").is_revoked("t-1")
        Traceback (most recent call last):
        ...
        tessera.guard.errors.RevocationUnavailable: redis revocation list is not in sync
        """
        expires_at = self._jtis.get(jti)
        if expires_at is not None and expires_at > time.time():
            return True
        self._require_sync()
        return False

    def not_before(self, sub: str) -> float | None:
        """The subject's not-before; raises ``RevocationUnavailable`` if it cannot know.

        >>> RedisRevocationList("redis://127.0.0.1:9/0").not_before("ada")
        Traceback (most recent call last):
        ...
        tessera.guard.errors.RevocationUnavailable: redis revocation list is not in sync
        """
        entry = self._subjects.get(sub)
        if entry is not None and entry[1] > time.time():
            return entry[0]
        self._require_sync()
        return None

    # ---------------------------------------------------------------- writes (the IdP's side)

    def revoke(self, jti: str, *, expires_at: float) -> None:
        """Revoke one token until ``expires_at`` and announce it to every guard.

        >>> writer = RedisRevocationList("redis://127.0.0.1:9/0")
        >>> writer.revoke("t-1", expires_at=2**31)  # nothing listens on port 9
        Traceback (most recent call last):
        ...
        redis.exceptions.ConnectionError: ...
        """
        self._jtis[jti] = float(expires_at)
        message = orjson.dumps({"jti": jti, "exp": int(expires_at)})
        with self.redis.pipeline() as pipe:
            pipe.set(self.prefix + "jti:" + jti, "1", exat=int(expires_at))
            pipe.publish(self.channel, message)
            pipe.execute()

    def revoke_subject(
        self, sub: str, *, not_before: float | None = None, expires_at: float
    ) -> None:
        """Revoke every token of ``sub`` issued before ``not_before`` (default: now).

        >>> writer = RedisRevocationList("redis://127.0.0.1:9/0")
        >>> writer.revoke_subject("ada", expires_at=2**31)  # nothing listens on port 9
        Traceback (most recent call last):
        ...
        redis.exceptions.ConnectionError: ...
        """
        moment = float(time.time() if not_before is None else not_before)
        self._subjects[sub] = (moment, float(expires_at))
        message = orjson.dumps({"sub": sub, "nbf": moment, "exp": int(expires_at)})
        with self.redis.pipeline() as pipe:
            pipe.set(self.prefix + "sub:" + sub, repr(moment), exat=int(expires_at))
            pipe.publish(self.channel, message)
            pipe.execute()

    # ---------------------------------------------------------------- the mirror

    def _require_sync(self) -> None:
        if time.monotonic() >= self._in_sync_until:
            raise RevocationUnavailable("redis revocation list is not in sync")

    def _alive(self) -> None:
        self._in_sync_until = time.monotonic() + self.max_silence

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            pubsub = cast(Any, self.redis).pubsub()
            try:
                self._follow(pubsub)
                backoff = 0.05
            except (redis.RedisError, OSError) as error:
                self._in_sync_until = 0.0
                logger.warning(
                    "revocation list lost redis: %s",
                    type(error).__name__,
                    extra={"outcome": "revocation_unavailable"},
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                pubsub.close()

    def _follow(self, pubsub: Any) -> None:
        pubsub.subscribe(self.channel)
        deadline = time.monotonic() + self.max_silence
        while True:  # the subscription is confirmed before the snapshot is read
            message = pubsub.get_message(timeout=self.max_silence)
            if message is not None and message["type"] == "subscribe":
                break
            if time.monotonic() > deadline:
                raise redis.TimeoutError("no subscription confirmation")
        self._resync()
        self._ready.set()
        synced = pinged = time.monotonic()
        heartbeat = self.max_silence / 3
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=min(heartbeat, 0.25))
            now = time.monotonic()
            if message is not None:
                if message["type"] == "message":
                    self._apply(message["data"])
                self._alive()
            if now - pinged >= heartbeat:
                pubsub.ping()
                pinged = now
            if now - synced >= self.resync_interval:
                self._resync()
                synced = now

    def _resync(self) -> None:
        jtis: dict[str, float] = {}
        subjects: dict[str, tuple[float, float]] = {}
        now = time.time()
        for kind in ("jti", "sub"):
            names = list(self.redis.scan_iter(match=self.prefix + kind + ":*", count=1000))
            for start in range(0, len(names), 500):
                batch = names[start : start + 500]
                with self.redis.pipeline(transaction=False) as pipe:
                    for name in batch:
                        pipe.get(name)
                        pipe.ttl(name)
                    replies = pipe.execute()
                for name, value, ttl in zip(batch, replies[::2], replies[1::2], strict=True):
                    if value is None or ttl is None or ttl < 0:
                        continue
                    ident = name.decode("utf-8")[len(self.prefix) + len(kind) + 1 :]
                    if kind == "jti":
                        jtis[ident] = now + ttl
                    else:
                        subjects[ident] = (float(value), now + ttl)
        self._jtis, self._subjects = jtis, subjects
        self._alive()

    def _apply(self, data: bytes) -> None:
        try:
            event = orjson.loads(data)
            if "jti" in event:
                self._jtis[str(event["jti"])] = float(event["exp"])
            elif "sub" in event:
                self._subjects[str(event["sub"])] = (float(event["nbf"]), float(event["exp"]))
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            logger.warning("ignored a malformed revocation event", extra={"outcome": "ignored"})
