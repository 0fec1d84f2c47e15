"""A revocation list shared through Redis: a denylist of keys, and a log that every guard follows
from where it left off.

Wire format (what an identity provider writes; :meth:`RedisRevocationList.revoke`,
:meth:`~RedisRevocationList.revoke_subject` and :meth:`~RedisRevocationList.republish` write
exactly this):

- ``{prefix}jti:{jti}`` = ``"1"``, expiring at the token's ``exp`` (``EXPIREAT``);
- ``{prefix}sub:{sub}`` = the not-before (epoch seconds), expiring when every token issued
  before it has expired;
- each write is appended, in the same ``MULTI``/``EXEC``, to the stream ``{prefix}log`` (capped
  at about ``log_length`` entries) as one field ``e`` holding JSON: ``{"jti": "...", "exp":
  1700000000}``, ``{"sub": "...", "nbf": 1700000000, "exp": ...}``, or ``{"resync": 1}`` (the
  keys were written again: read them all).

Why a Redis stream: pub/sub drops whatever is published while a subscriber is away; a stream
keeps it, and each guard remembers the id of the last entry it applied, so one that reconnects
reads exactly what it missed (``XREAD`` from that id). Redis is already what the provider and
its guards share (the keys a starting guard loads); NATS JetStream would give the same guarantee
with a second server to run. A guard that was away longer than the log keeps (its last id is
older than the first entry left), or that finds another Redis (``run_id``, e.g. restarted without
persistence), reads the keys again instead. The provider's database stays the truth: a provider
that could not write here writes its whole denylist again once it can (``republish``).

Every guard answers from memory: a check costs a dictionary lookup, and a revocation reaches it
one blocking ``XREAD`` after it is appended. When Redis stops answering for ``max_silence``
seconds the list raises ``RevocationUnavailable`` for anything it does not already know is
revoked, and the guard fails closed on sensitive routes.

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
from collections.abc import Iterable
from types import TracebackType
from typing import Any, cast

import orjson
import redis

from .errors import RevocationUnavailable

logger = logging.getLogger("tessera.guard")

DEFAULT_PREFIX = "tessera:revocation:"
# Entries the log keeps (about: Redis trims whole nodes). A guard away for longer than this
# many revocations reads the keys again.
LOG_LENGTH = 100_000
_BATCH = 500  # keys read or written per round trip when loading or republishing

# What redis-py returns for a stream (without decode_responses): entries, and XREAD's replies.
_Entries = list[tuple[bytes, dict[bytes, bytes]]]
_Replies = list[tuple[bytes, _Entries]]


def entry_id(value: bytes | str) -> tuple[int, int]:
    """A stream entry id (``milliseconds-sequence``) as a pair that sorts as Redis does.

    >>> entry_id(b"1700000000000-3") < entry_id("1700000000001-0")
    True
    """
    text = value.decode("ascii") if isinstance(value, bytes) else value
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


class RedisRevocationList:
    """A :class:`~tessera.guard.revocation.RevocationList` backed by Redis (see module doc).

    Call :meth:`start` (or use it as a context manager) to follow the log; until it is in sync,
    or while Redis is unreachable, unknown answers raise ``RevocationUnavailable``.

    >>> RedisRevocationList("redis://127.0.0.1:1/0", prefix="doc:").log
    'doc:log'
    """

    def __init__(
        self,
        redis_client: redis.Redis | str,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_silence: float = 3.0,
        log_length: int = LOG_LENGTH,
    ) -> None:
        if isinstance(redis_client, str):
            redis_client = redis.Redis.from_url(
                redis_client, socket_timeout=max_silence, socket_connect_timeout=max_silence
            )
        self.redis = redis_client
        self.prefix = prefix
        self.log = prefix + "log"
        self.max_silence = max_silence
        self.log_length = log_length
        self._jtis: dict[str, float] = {}
        self._subjects: dict[str, tuple[float, float]] = {}
        self._last_id: bytes | None = None  # the last log entry applied
        self._server: str | None = None  # the run_id of the Redis that id belongs to
        self._in_sync_until = 0.0
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loads = 0  # how many times every key was read (startup, a gap, another Redis)

    # ---------------------------------------------------------------- lifecycle

    def start(self, *, wait: float = 2.0) -> RedisRevocationList:
        """Follow the log in a background thread; wait up to ``wait`` seconds for the first
        sync.

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
        """Revoke one token until ``expires_at`` and append it to the log.

        >>> writer = RedisRevocationList("redis://127.0.0.1:9/0")
        >>> writer.revoke("t-1", expires_at=2**31)  # nothing listens on port 9
        Traceback (most recent call last):
        ...
        redis.exceptions.ConnectionError: ...
        """
        self._jtis[jti] = float(expires_at)
        with self.redis.pipeline() as pipe:
            pipe.set(self.prefix + "jti:" + jti, "1", exat=int(expires_at))
            self._append(pipe, {"jti": jti, "exp": int(expires_at)})
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
        with self.redis.pipeline() as pipe:
            pipe.set(self.prefix + "sub:" + sub, repr(moment), exat=int(expires_at))
            self._append(pipe, {"sub": sub, "nbf": moment, "exp": int(expires_at)})
            pipe.execute()

    def republish(
        self,
        jtis: Iterable[tuple[str, float]],
        subjects: Iterable[tuple[str, float, float]],
        *,
        now: float | None = None,
    ) -> int:
        """Write a whole denylist again — ``(jti, expires_at)`` and ``(sub, not_before,
        expires_at)``, what the provider's database holds — then append one ``resync`` entry,
        so every guard reads the keys again. Entries already expired are left out; returns how
        many were written.

        >>> writer = RedisRevocationList("redis://127.0.0.1:9/0")
        >>> writer.republish([], [])  # nothing listens on port 9
        Traceback (most recent call last):
        ...
        redis.exceptions.ConnectionError: ...
        """
        moment = time.time() if now is None else now
        writes = [
            (self.prefix + "jti:" + jti, "1", int(expires_at))
            for jti, expires_at in jtis
            if expires_at > moment
        ] + [
            (self.prefix + "sub:" + sub, repr(float(not_before)), int(expires_at))
            for sub, not_before, expires_at in subjects
            if expires_at > moment
        ]
        for start in range(0, len(writes), _BATCH):
            with self.redis.pipeline(transaction=False) as pipe:
                for name, value, expires_at in writes[start : start + _BATCH]:
                    pipe.set(name, value, exat=expires_at)
                pipe.execute()
        with self.redis.pipeline() as pipe:
            self._append(pipe, {"resync": 1})
            pipe.execute()
        return len(writes)

    def server_id(self) -> str:
        """The ``run_id`` of the Redis answering now: another one means another server, or
        the same one restarted (and, without persistence, empty).

        >>> RedisRevocationList("redis://127.0.0.1:9/0").server_id()
        Traceback (most recent call last):
        ...
        redis.exceptions.ConnectionError: ...
        """
        return str(self.redis.info("server")["run_id"])

    def _append(self, pipe: Any, event: dict[str, Any]) -> None:
        pipe.xadd(self.log, {"e": orjson.dumps(event)}, maxlen=self.log_length, approximate=True)

    # ---------------------------------------------------------------- the mirror

    def _require_sync(self) -> None:
        if time.monotonic() >= self._in_sync_until:
            raise RevocationUnavailable("redis revocation list is not in sync")

    def _alive(self) -> None:
        self._in_sync_until = time.monotonic() + self.max_silence

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                self._follow()
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

    def _follow(self) -> None:
        server = self.server_id()
        if self._last_id is None or server != self._server or self._missed_entries():
            self._load()
        self._server = server
        self._alive()
        self._ready.set()
        block = max(1, int(self.max_silence * 1000 / 3))  # a heartbeat well inside the silence
        while not self._stop.is_set():
            assert self._last_id is not None
            replies = self.redis.xread({self.log: self._last_id}, count=_BATCH, block=block)
            for _, entries in cast(_Replies, replies):
                for ident, fields in entries:
                    self._apply(fields.get(b"e", b""))
                    self._last_id = ident
            self._alive()

    def _missed_entries(self) -> bool:
        """Whether entries after the last one applied may have been trimmed from the log."""
        assert self._last_id is not None
        first = cast(_Entries, self.redis.xrange(self.log, count=1))
        return bool(first) and entry_id(first[0][0]) > entry_id(self._last_id)

    def _load(self) -> None:
        """Read every key; the log is followed from the entry that was last before reading
        (an entry appended meanwhile is applied twice, which changes nothing)."""
        last = cast(_Entries, self.redis.xrevrange(self.log, count=1))
        self._last_id = last[0][0] if last else b"0-0"
        self._load_keys()

    def _load_keys(self) -> None:
        jtis: dict[str, float] = {}
        subjects: dict[str, tuple[float, float]] = {}
        now = time.time()
        for kind in ("jti", "sub"):
            names = list(self.redis.scan_iter(match=self.prefix + kind + ":*", count=1000))
            for start in range(0, len(names), _BATCH):
                batch = names[start : start + _BATCH]
                with self.redis.pipeline(transaction=False) as pipe:
                    for name in batch:
                        pipe.get(name)
                        pipe.pttl(name)
                    replies = pipe.execute()
                for name, value, ttl in zip(batch, replies[::2], replies[1::2], strict=True):
                    if value is None or ttl is None or ttl < 0:
                        continue
                    ident = name.decode("utf-8")[len(self.prefix) + len(kind) + 1 :]
                    if kind == "jti":
                        jtis[ident] = now + ttl / 1000
                    else:
                        subjects[ident] = (float(value), now + ttl / 1000)
        self._jtis, self._subjects = jtis, subjects
        self.loads += 1

    def _apply(self, data: bytes) -> None:
        try:
            event = orjson.loads(data)
            if "jti" in event:
                self._jtis[str(event["jti"])] = float(event["exp"])
            elif "sub" in event:
                self._subjects[str(event["sub"])] = (float(event["nbf"]), float(event["exp"]))
            elif "resync" in event:
                self._load_keys()
            else:
                raise KeyError("no known field")
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            logger.warning("ignored a malformed revocation event", extra={"outcome": "ignored"})
