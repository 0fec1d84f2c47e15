"""Failure counters for brute-force defence: one small protocol, two stores.

:class:`DatabaseStore` counts in the provider's database (the table ``throttle_counters``), in
the caller's transaction; :class:`RedisStore` counts in Redis with one atomic Lua script per
operation, and in the database while Redis is unreachable. Either way guesses sent to every node
are counted once.

A counter is a key with a :class:`Policy`. It starts at its first failure and is forgotten
``window`` seconds later (or when its lock ends, if that is later). The first ``free`` failures
cost nothing; then each attempt waits ``2 ** (failures - free)`` seconds (at most ``max_delay``)
after the last one; at ``threshold`` failures the key is locked for ``duration`` seconds. An
admitted attempt stays "in flight" until it fails or succeeds (at most ``IN_FLIGHT`` seconds)
and counts towards the delays meanwhile: a burst of parallel guesses is refused like a series.

>>> from tessera.idp.store.database import Database
>>> database = Database("sqlite://"); database.upgrade()
>>> store = DatabaseStore()
>>> counter = Counter("a:ada", Policy(window=900, threshold=3, duration=900, free=1, max_delay=60))
>>> with database.session() as session:
...     store.attempt(session, [counter], now=0.0) is None
...     store.fail(session, [counter], now=1.0)
...     store.attempt(session, [counter], now=1.5)  # 2 ** (1 - 1) seconds after the last failure
...     store.attempt(session, [counter], now=2.0) is None
True
[False]
Refusal(wait=0.5, counter=0)
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..store.models import ThrottleCounter

log = logging.getLogger("tessera.idp")

# Seconds an admitted attempt counts as in flight if it is never settled (a crashed request).
IN_FLIGHT = 30.0
# Seconds the Redis store counts in the database after Redis failed, before trying Redis again.
REDIS_RETRY = 5.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Policy:
    """How a counter throttles (seconds, and numbers of failures)."""

    window: float
    threshold: int
    duration: float
    free: int
    max_delay: float
    clears_on_success: bool = True  # a success forgets the failures (else only settles it)


class Counter(NamedTuple):
    """A key (already hashed and short) and its policy."""

    key: str
    policy: Policy


class Refusal(NamedTuple):
    """An attempt refused: seconds to wait, and which counter refused it (its position)."""

    wait: float
    counter: int


class ThrottleStore(Protocol):
    """Where failures are counted. Every operation is atomic over all its counters; ``session``
    is the caller's transaction (what a store in the database counts in)."""

    def attempt(self, session: Session, counters: Sequence[Counter], now: float) -> Refusal | None:
        """Admit an attempt (then in flight on every counter) or refuse it (nothing counted)."""

    def fail(self, session: Session, counters: Sequence[Counter], now: float) -> list[bool]:
        """Count a failure on each counter; whether this failure locked each one."""

    def succeed(self, session: Session, counters: Sequence[Counter], now: float) -> None:
        """Settle a successful attempt: forget failures or only leave the in-flight count."""

    def clear(self, session: Session, counters: Sequence[Counter], now: float) -> bool:
        """Forget the counters entirely; whether any of them held something."""

    def close(self) -> None:
        """Release what the store holds (connections)."""


def delay(excess: int, max_delay: float) -> float:
    """Seconds to wait after ``excess`` failures beyond the free ones.

    >>> [delay(n, 60) for n in (0, 1, 5, 6, 500)]
    [1.0, 2.0, 32.0, 60, 60]
    """
    return min(2.0 ** min(excess, 62), max_delay)


class DatabaseStore:
    """Counters in the provider's database, counted in the caller's transaction: every node
    (and every worker process) on one database counts together, and a count commits with the
    audit row of the attempt it belongs to.

    Each operation first locks its counters' rows, in key order, so that two nodes' operations
    on one account follow each other: a missing row is inserted (``ON CONFLICT DO NOTHING``),
    then the rows are read ``FOR UPDATE`` on PostgreSQL (SQLite's writer already holds the
    whole database). Callers commit an admitted attempt before slow work (an argon2id hash,
    ``Lockout.admit``), so no lock is held through it. A row left counting nothing is deleted.
    """

    def attempt(self, session: Session, counters: Sequence[Counter], now: float) -> Refusal | None:
        """Admit an attempt (then in flight on every counter) or refuse it (nothing counted)."""
        rows = _locked(session, counters, now)
        worst: Refusal | None = None
        for index, (key, policy) in enumerate(counters):
            wait = _wait(rows[key], policy, now)
            if wait > 0 and (worst is None or wait > worst.wait):
                worst = Refusal(wait, index)
        if worst is None:
            for key, policy in counters:
                row = _live(rows[key], policy, now)
                row.in_flight = _in_flight(row, now) + 1
                row.in_flight_at = row.last_attempt_at = now
        _tidy(session, rows, now)
        return worst

    def fail(self, session: Session, counters: Sequence[Counter], now: float) -> list[bool]:
        """Count a failure on each counter; whether this failure locked each one."""
        rows = _locked(session, counters, now)
        locked = []
        for key, policy in counters:
            row = _live(rows[key], policy, now)
            row.failures += 1
            row.in_flight = max(_in_flight(row, now) - 1, 0)
            row.last_attempt_at = now
            locks = row.failures >= policy.threshold and row.locked_until <= now
            if locks:
                row.locked_until = now + policy.duration
                row.expires_at = max(row.expires_at, row.locked_until)
            locked.append(locks)
        _tidy(session, rows, now)
        return locked

    def succeed(self, session: Session, counters: Sequence[Counter], now: float) -> None:
        """Settle a successful attempt: forget failures or only leave the in-flight count."""
        rows = _locked(session, counters, now)
        for key, policy in counters:
            row = rows[key]
            if policy.clears_on_success:
                _forget(row, now)
            elif row.expires_at > now:
                row.in_flight = max(_in_flight(row, now) - 1, 0)
        _tidy(session, rows, now)

    def clear(self, session: Session, counters: Sequence[Counter], now: float) -> bool:
        """Forget the counters entirely; whether any of them held something."""
        rows = _locked(session, counters, now)
        live = [rows[key].expires_at > now for key, _ in counters]
        for key, _ in counters:
            _forget(rows[key], now)
        _tidy(session, rows, now)
        return any(live)

    def close(self) -> None:
        """Nothing to release: the counts are in the caller's transaction."""


def _locked(
    session: Session, counters: Sequence[Counter], now: float
) -> dict[str, ThrottleCounter]:
    """Every counter's row, locked for the rest of ``session``'s transaction."""
    keys = sorted({counter.key for counter in counters})
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows: dict[str, ThrottleCounter] = {}
    for _ in range(_LOCK_TRIES):
        missing = [key for key in keys if key not in rows]
        session.execute(
            insert(ThrottleCounter)
            .values([_empty(key, now) for key in missing])
            .on_conflict_do_nothing(index_elements=[ThrottleCounter.key])
        )
        found = session.scalars(
            select(ThrottleCounter)
            .where(ThrottleCounter.key.in_(missing))
            .order_by(ThrottleCounter.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        rows.update((row.key, row) for row in found)
        if len(rows) == len(keys):
            return rows
    # Only housekeeping deletes rows, and only long-expired ones, between our insert and read.
    raise RuntimeError("throttle counters vanished while being locked")


_LOCK_TRIES = 3  # a row purged between the insert and the read is inserted again


def _empty(key: str, now: float) -> dict[str, Any]:
    """A row that counts nothing (already expired at ``now``)."""
    return {
        "key": key,
        "failures": 0,
        "in_flight": 0,
        "in_flight_at": 0.0,
        "last_attempt_at": 0.0,
        "started_at": now,
        "locked_until": 0.0,
        "expires_at": now,
    }


def _tidy(session: Session, rows: dict[str, ThrottleCounter], now: float) -> None:
    """Delete the rows that count nothing (no failure, none in flight, no lock): a success
    leaves the tables as they were before the attempt."""
    for row in rows.values():
        if row.expires_at <= now or (
            row.failures == 0 and _in_flight(row, now) == 0 and row.locked_until <= now
        ):
            session.delete(row)


def _forget(row: ThrottleCounter, now: float) -> None:
    for name, value in _empty(row.key, now).items():
        setattr(row, name, value)


def _live(row: ThrottleCounter, policy: Policy, now: float) -> ThrottleCounter:
    """``row``, started afresh at ``now`` if it counted nothing any more."""
    if row.expires_at <= now:
        _forget(row, now)
        row.expires_at = now + policy.window
    return row


def _in_flight(row: ThrottleCounter, now: float) -> int:
    return row.in_flight if row.in_flight_at + IN_FLIGHT > now else 0


def _wait(row: ThrottleCounter, policy: Policy, now: float) -> float:
    """Seconds the counter ``row`` makes an attempt at ``now`` wait."""
    if row.expires_at <= now:
        return 0.0
    if row.locked_until > now:
        return row.locked_until - now
    attempts = row.failures + _in_flight(row, now)
    if attempts < policy.free:
        return 0.0
    return row.last_attempt_at + delay(attempts - policy.free, policy.max_delay) - now


# Fields of a counter's hash: f failures, p in flight, pa in flight since, l last attempt,
# s start, u locked until. ARGV: now, IN_FLIGHT, then six values per key (see _arguments).
_LUA_COMMON = """
local now = tonumber(ARGV[1])
local in_flight = tonumber(ARGV[2])

local function policy(i)
  local b = 2 + (i - 1) * 6
  return {window = tonumber(ARGV[b + 1]), threshold = tonumber(ARGV[b + 2]),
          duration = tonumber(ARGV[b + 3]), free = tonumber(ARGV[b + 4]),
          max_delay = tonumber(ARGV[b + 5]), clears = ARGV[b + 6] == '1'}
end

local function load(key, p)
  local v = redis.call('HMGET', key, 'f', 'p', 'pa', 'l', 's', 'u')
  local e = {f = 0, p = 0, pa = 0, l = 0, s = nil, u = 0}
  local s, u = tonumber(v[5]), tonumber(v[6]) or 0
  if s == nil or math.max(s + p.window, u) <= now then
    return e
  end
  e.f, e.pa, e.l, e.s, e.u = tonumber(v[1]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0, s, u
  if e.pa + in_flight > now then
    e.p = tonumber(v[2]) or 0
  end
  return e
end

local function save(key, e, p)
  if e.s == nil then
    e.s = now
  end
  redis.call('HSET', key, 'f', tostring(e.f), 'p', tostring(e.p), 'pa', tostring(e.pa),
             'l', tostring(e.l), 's', tostring(e.s), 'u', tostring(e.u))
  local ends = math.max(e.s + p.window, e.u)
  redis.call('PEXPIRE', key, string.format('%d', math.max(1, math.ceil((ends - now) * 1000))))
end
"""

_LUA_ATTEMPT = """
local entries, worst, which = {}, 0, 0
for i, key in ipairs(KEYS) do
  local p = policy(i)
  local e = load(key, p)
  entries[i] = e
  local wait = 0
  if e.u > now then
    wait = e.u - now
  elseif e.f + e.p >= p.free then
    wait = e.l + math.min(2 ^ math.min(e.f + e.p - p.free, 62), p.max_delay) - now
  end
  if wait > worst then
    worst, which = wait, i
  end
end
if which > 0 then
  return {tostring(worst), which}
end
for i, key in ipairs(KEYS) do
  local e = entries[i]
  e.p, e.pa, e.l = e.p + 1, now, now
  save(key, e, policy(i))
end
return {'0', 0}
"""

_LUA_FAIL = """
local locked = {}
for i, key in ipairs(KEYS) do
  local p = policy(i)
  local e = load(key, p)
  e.f, e.l = e.f + 1, now
  if e.p > 0 then
    e.p = e.p - 1
  end
  locked[i] = 0
  if e.f >= p.threshold and e.u <= now then
    e.u, locked[i] = now + p.duration, 1
  end
  save(key, e, p)
end
return locked
"""

_LUA_SUCCEED = """
for i, key in ipairs(KEYS) do
  local p = policy(i)
  if p.clears then
    redis.call('DEL', key)
  else
    local e = load(key, p)
    if e.s ~= nil and e.p > 0 then
      e.p = e.p - 1
      save(key, e, p)
    end
  end
end
return 0
"""

_LUA_CLEAR = """
local live = 0
for i, key in ipairs(KEYS) do
  if load(key, policy(i)).s ~= nil then
    live = live + 1
  end
  redis.call('DEL', key)
end
return live
"""


class RedisStore:
    """Counters in Redis under ``prefix``, shared by every node (each operation one Lua script;
    a single Redis, not a cluster: one script touches the account's and the address's keys).
    Times are the nodes' own clocks, which must agree (as they must for tokens' expiry).

    Redis unreachable: this node counts in the database (its ``fallback``, with every other
    node that lost Redis) for ``REDIS_RETRY`` seconds, then tries Redis again. Throttling never
    stops (an attacker who breaks Redis gains at most the counts Redis held), and logins never
    wait on a dead Redis for more than one timeout per period.

    >>> RedisStore("redis://127.0.0.1:1/0", prefix="doc:").prefix
    'doc:'
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        fallback: DatabaseStore | None = None,
        timeout: float = 1.0,
    ) -> None:
        # Loaded here: only a deployment that configures Redis pays for its client (~20 MB).
        import redis

        self.prefix = prefix
        self._redis_error: type[Exception] = redis.RedisError
        self.redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.fallback = fallback or DatabaseStore()
        self._scripts = {
            name: self.redis.register_script(_LUA_COMMON + body)
            for name, body in [
                ("attempt", _LUA_ATTEMPT),
                ("fail", _LUA_FAIL),
                ("succeed", _LUA_SUCCEED),
                ("clear", _LUA_CLEAR),
            ]
        }
        self._local_until = 0.0  # monotonic time until which this node counts in the database

    def attempt(self, session: Session, counters: Sequence[Counter], now: float) -> Refusal | None:
        """Admit an attempt (then in flight on every counter) or refuse it (nothing counted)."""

        def remote() -> Refusal | None:
            wait, index = self._run("attempt", counters, now)
            return Refusal(float(wait), int(index) - 1) if int(index) else None

        return self._either(remote, lambda: self.fallback.attempt(session, counters, now))

    def fail(self, session: Session, counters: Sequence[Counter], now: float) -> list[bool]:
        """Count a failure on each counter; whether this failure locked each one."""
        return self._either(
            lambda: [bool(int(flag)) for flag in self._run("fail", counters, now)],
            lambda: self.fallback.fail(session, counters, now),
        )

    def succeed(self, session: Session, counters: Sequence[Counter], now: float) -> None:
        """Settle a successful attempt: forget failures or only leave the in-flight count."""
        self._either(
            lambda: self._run("succeed", counters, now),
            lambda: self.fallback.succeed(session, counters, now),
        )

    def clear(self, session: Session, counters: Sequence[Counter], now: float) -> bool:
        """Forget the counters entirely (in Redis and in the database); whether any held
        something."""
        local = self.fallback.clear(session, counters, now)
        try:  # an admin's unlock tries Redis even while this node counts in the database
            return bool(int(self._run("clear", counters, now))) or local
        except self._redis_error as error:
            self._unreachable(error)
            return local

    def reachable(self) -> bool:
        """Whether Redis answers a PING now (within the store's timeout)."""
        try:
            return bool(self.redis.ping())
        except self._redis_error:
            return False

    def close(self) -> None:
        """Close the connection pool."""
        self.redis.close()

    def _run(self, name: str, counters: Sequence[Counter], now: float) -> Any:
        keys = [self.prefix + counter.key for counter in counters]
        return self._scripts[name](keys=keys, args=_arguments(counters, now))

    def _either(self, remote: Callable[[], T], local: Callable[[], T]) -> T:
        if time.monotonic() < self._local_until:
            return local()
        try:
            result = remote()
        except self._redis_error as error:
            self._unreachable(error)
            return local()
        if self._local_until:
            self._local_until = 0.0
            log.warning("throttling: Redis reachable again; counting there")
        return result

    def _unreachable(self, error: Exception) -> None:
        if time.monotonic() >= self._local_until:
            log.warning(
                "throttling: Redis unreachable (%s); counting in the database for %.0f s",
                type(error).__name__,
                REDIS_RETRY,
            )
        self._local_until = time.monotonic() + REDIS_RETRY


def _arguments(counters: Sequence[Counter], now: float) -> list[str]:
    args = [repr(now), repr(IN_FLIGHT)]
    for _, policy in counters:
        args += [
            repr(float(policy.window)),
            str(policy.threshold),
            repr(float(policy.duration)),
            str(policy.free),
            repr(float(policy.max_delay)),
            "1" if policy.clears_on_success else "0",
        ]
    return args
