"""Failure counters for brute-force defence: one small protocol, two stores.

:class:`MemoryStore` counts in this process (thread-safe, bounded, expired entries evicted);
:class:`RedisStore` counts in Redis with one atomic Lua script per operation, so guesses sent to
every node are counted once, and counts on its own node while Redis is unreachable.

A counter is a key with a :class:`Policy`. It starts at its first failure and is forgotten
``window`` seconds later (or when its lock ends, if that is later). The first ``free`` failures
cost nothing; then each attempt waits ``2 ** (failures - free)`` seconds (at most ``max_delay``)
after the last one; at ``threshold`` failures the key is locked for ``duration`` seconds. An
admitted attempt stays "in flight" until it fails or succeeds (at most ``IN_FLIGHT`` seconds)
and counts towards the delays meanwhile: a burst of parallel guesses is refused like a series.

>>> store = MemoryStore()
>>> counter = Counter("ada", Policy(window=900, threshold=3, duration=900, free=1, max_delay=60))
>>> store.attempt([counter], now=0.0) is None
True
>>> store.fail([counter], now=1.0)
[False]
>>> store.attempt([counter], now=1.5)  # 2 ** (1 - 1) seconds after the last failure
Refusal(wait=0.5, counter=0)
>>> store.attempt([counter], now=2.0) is None
True
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    pass

log = logging.getLogger("tessera.idp")

# Seconds an admitted attempt counts as in flight if it is never settled (a crashed request).
IN_FLIGHT = 30.0
# Seconds the Redis store counts on its own node after Redis failed, before trying Redis again.
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
    """Where failures are counted. Every operation is atomic over all its counters."""

    def attempt(self, counters: Sequence[Counter], now: float) -> Refusal | None:
        """Admit an attempt (then in flight on every counter) or refuse it (nothing counted)."""

    def fail(self, counters: Sequence[Counter], now: float) -> list[bool]:
        """Count a failure on each counter; whether this failure locked each one."""

    def succeed(self, counters: Sequence[Counter], now: float) -> None:
        """Settle a successful attempt: forget failures or only leave the in-flight count."""

    def clear(self, counters: Sequence[Counter], now: float) -> bool:
        """Forget the counters entirely; whether any of them held something."""

    def close(self) -> None:
        """Release what the store holds (connections)."""


def delay(excess: int, max_delay: float) -> float:
    """Seconds to wait after ``excess`` failures beyond the free ones.

    >>> [delay(n, 60) for n in (0, 1, 5, 6, 500)]
    [1.0, 2.0, 32.0, 60, 60]
    """
    return min(2.0 ** min(excess, 62), max_delay)


@dataclass(slots=True)
class _Entry:
    start: float
    expires: float
    failures: int = 0
    pending: int = 0
    pending_at: float = 0.0
    last: float = 0.0
    until: float = 0.0

    def in_flight(self, now: float) -> int:
        return self.pending if self.pending_at + IN_FLIGHT > now else 0

    def wait(self, policy: Policy, now: float) -> float:
        if self.until > now:
            return self.until - now
        attempts = self.failures + self.in_flight(now)
        if attempts < policy.free:
            return 0.0
        return self.last + delay(attempts - policy.free, policy.max_delay) - now


class MemoryStore:
    """Counters in this process: each node counts on its own (the default, without Redis).

    At most ``max_entries`` keys: expired ones are swept every minute; when it is full anyway,
    the tenth of the keys worth least (not locked, fewest failures, soonest to expire) go.
    """

    SWEEP_EVERY = 60.0

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def attempt(self, counters: Sequence[Counter], now: float) -> Refusal | None:
        """Admit an attempt (then in flight on every counter) or refuse it (nothing counted)."""
        with self._lock:
            worst: Refusal | None = None
            for index, (key, policy) in enumerate(counters):
                entry = self._live(key, now)
                wait = 0.0 if entry is None else entry.wait(policy, now)
                if wait > 0 and (worst is None or wait > worst.wait):
                    worst = Refusal(wait, index)
            if worst is not None:
                return worst
            for key, policy in counters:
                entry = self._entry(key, policy, now)
                entry.pending = entry.in_flight(now) + 1
                entry.pending_at = entry.last = now
            return None

    def fail(self, counters: Sequence[Counter], now: float) -> list[bool]:
        """Count a failure on each counter; whether this failure locked each one."""
        with self._lock:
            locked = []
            for key, policy in counters:
                entry = self._entry(key, policy, now)
                entry.failures += 1
                entry.pending = max(entry.in_flight(now) - 1, 0)
                entry.last = now
                locks = entry.failures >= policy.threshold and entry.until <= now
                if locks:
                    entry.until = now + policy.duration
                    entry.expires = max(entry.expires, entry.until)
                locked.append(locks)
            return locked

    def succeed(self, counters: Sequence[Counter], now: float) -> None:
        """Settle a successful attempt: forget failures or only leave the in-flight count."""
        with self._lock:
            for key, policy in counters:
                if policy.clears_on_success:
                    self._entries.pop(key, None)
                elif (entry := self._live(key, now)) is not None:
                    entry.pending = max(entry.in_flight(now) - 1, 0)

    def clear(self, counters: Sequence[Counter], now: float) -> bool:
        """Forget the counters entirely; whether any of them held something."""
        with self._lock:
            live = [self._live(key, now) is not None for key, _ in counters]
            for key, _ in counters:
                self._entries.pop(key, None)
            return any(live)

    def close(self) -> None:
        """Nothing to release."""

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= now:
            del self._entries[key]
            return None
        return entry

    def _entry(self, key: str, policy: Policy, now: float) -> _Entry:
        entry = self._live(key, now)
        if entry is None:
            self._make_room(now)
            entry = self._entries[key] = _Entry(start=now, expires=now + policy.window)
        return entry

    def _make_room(self, now: float) -> None:
        if now >= self._next_sweep or len(self._entries) >= self.max_entries:
            self._next_sweep = now + self.SWEEP_EVERY
            for key in [key for key, entry in self._entries.items() if entry.expires <= now]:
                del self._entries[key]
        if len(self._entries) >= self.max_entries:
            worth = heapq.nsmallest(
                max(1, self.max_entries // 10),
                self._entries.items(),
                key=lambda item: (item[1].until > now, item[1].failures, item[1].expires),
            )
            for key, _ in worth:
                del self._entries[key]


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

    Redis unreachable: this node counts in its ``fallback`` memory store for ``REDIS_RETRY``
    seconds, then tries Redis again. Throttling never stops (an attacker who breaks Redis gains
    at most one allowance per node, and a user lock is written to the database, which every
    node reads), and logins never wait on a dead Redis for more than one timeout per period.

    >>> RedisStore("redis://127.0.0.1:1/0", prefix="doc:").prefix
    'doc:'
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        fallback: MemoryStore | None = None,
        timeout: float = 1.0,
    ) -> None:
        # Loaded here: only a deployment that configures Redis pays for its client (~20 MB).
        import redis

        self.prefix = prefix
        self._redis_error: type[Exception] = redis.RedisError
        self.redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.fallback = fallback or MemoryStore()
        self._scripts = {
            name: self.redis.register_script(_LUA_COMMON + body)
            for name, body in [
                ("attempt", _LUA_ATTEMPT),
                ("fail", _LUA_FAIL),
                ("succeed", _LUA_SUCCEED),
                ("clear", _LUA_CLEAR),
            ]
        }
        self._local_until = 0.0  # monotonic time until which this node counts on its own

    def attempt(self, counters: Sequence[Counter], now: float) -> Refusal | None:
        """Admit an attempt (then in flight on every counter) or refuse it (nothing counted)."""

        def remote() -> Refusal | None:
            wait, index = self._run("attempt", counters, now)
            return Refusal(float(wait), int(index) - 1) if int(index) else None

        return self._either(remote, lambda: self.fallback.attempt(counters, now))

    def fail(self, counters: Sequence[Counter], now: float) -> list[bool]:
        """Count a failure on each counter; whether this failure locked each one."""
        return self._either(
            lambda: [bool(int(flag)) for flag in self._run("fail", counters, now)],
            lambda: self.fallback.fail(counters, now),
        )

    def succeed(self, counters: Sequence[Counter], now: float) -> None:
        """Settle a successful attempt: forget failures or only leave the in-flight count."""
        self._either(
            lambda: self._run("succeed", counters, now),
            lambda: self.fallback.succeed(counters, now),
        )

    def clear(self, counters: Sequence[Counter], now: float) -> bool:
        """Forget the counters entirely (here and in the fallback); whether any held something."""
        local = self.fallback.clear(counters, now)
        try:  # an admin's unlock tries Redis even while this node counts alone
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
                "throttling: Redis unreachable (%s); counting on this node for %.0f s",
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
