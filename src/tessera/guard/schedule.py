"""When a remote key set is fetched again: cache lifetime, unknown-kid cooldown, stale serving.

Pure bookkeeping, no I/O: callers pass the time. A fetch is *due* when the cached keys expired
(their lifetime is the server's ``Cache-Control: max-age`` clamped to ``[min_ttl, max_ttl]``,
``ttl`` when unsaid); an unknown ``kid`` may force one only if no fetch started within
``cooldown``; after a failure the last good keys serve until ``max_stale`` past their expiry.

>>> from tessera.jose import KeySet
>>> schedule = Schedule(CachePolicy(cooldown=30))
>>> schedule.start(now=0)
>>> schedule.succeed(now=0, document={"keys": []}, keys=KeySet([]), max_age=None)
>>> schedule.fresh(now=299) is not None, schedule.due(now=300), schedule.may_refetch(now=10)
(True, True, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tessera import jose


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Cache lifetime bounds, unknown-kid cooldown and stale limit, in seconds.

    >>> CachePolicy().lifetime(max_age=7)
    60.0
    """

    ttl: float = 300.0
    min_ttl: float = 60.0
    max_ttl: float = 3600.0
    cooldown: float = 30.0
    max_stale: float = 3600.0

    def __post_init__(self) -> None:
        values = (self.ttl, self.min_ttl, self.max_ttl, self.cooldown, self.max_stale)
        if any(value < 0 for value in values) or self.min_ttl > self.max_ttl:
            raise jose.UsageError("cache times must be non-negative and min_ttl <= max_ttl")

    def lifetime(self, max_age: float | None) -> float:
        """How long a response is fresh: its ``max-age`` within the bounds, else ``ttl``.

        >>> CachePolicy().lifetime(None), CachePolicy().lifetime(10**9)
        (300.0, 3600.0)
        """
        if max_age is None:
            return float(self.ttl)
        return float(min(self.max_ttl, max(self.min_ttl, max_age)))


class Schedule:
    """The state of one cached key set and the decisions about fetching it again."""

    __slots__ = ("attempted_at", "document", "expires_at", "keys", "policy", "retry_at")

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy
        self.keys: jose.KeySet | None = None
        self.document: dict[str, Any] | None = None
        self.expires_at = -math.inf
        self.attempted_at = -math.inf
        self.retry_at = -math.inf

    def fresh(self, now: float) -> jose.KeySet | None:
        """The keys if they have not expired, else ``None``.

        >>> Schedule(CachePolicy()).fresh(now=0) is None
        True
        """
        return self.keys if now < self.expires_at else None

    def serveable(self, now: float) -> jose.KeySet | None:
        """The keys if they may still be served (fresh, or stale within ``max_stale``).

        >>> schedule = Schedule(CachePolicy(ttl=300, max_stale=600))
        >>> schedule.succeed(now=0, document={}, keys=jose.KeySet([]), max_age=None)
        >>> schedule.serveable(now=899) is not None, schedule.serveable(now=900)
        (True, None)
        """
        if self.keys is not None and now < self.expires_at + self.policy.max_stale:
            return self.keys
        return None

    def due(self, now: float) -> bool:
        """Whether a fetch should start: the keys expired and no failure asks to wait.

        >>> schedule = Schedule(CachePolicy(cooldown=30))
        >>> schedule.fail(now=0)
        >>> schedule.due(now=29), schedule.due(now=30)
        (False, True)
        """
        return now >= self.expires_at and now >= self.retry_at

    def may_refetch(self, now: float) -> bool:
        """Whether an unknown ``kid`` may force a fetch (none started within the cooldown).

        >>> schedule = Schedule(CachePolicy(cooldown=30))
        >>> schedule.start(now=0)
        >>> schedule.may_refetch(now=29.9), schedule.may_refetch(now=30)
        (False, True)
        """
        return now - self.attempted_at >= self.policy.cooldown

    def start(self, now: float) -> None:
        """Record that a fetch started (the cooldown counts from here).

        >>> schedule = Schedule(CachePolicy())
        >>> schedule.start(now=5)
        >>> schedule.attempted_at
        5
        """
        self.attempted_at = now

    def succeed(
        self, now: float, document: dict[str, Any], keys: jose.KeySet, max_age: float | None
    ) -> None:
        """Record a good fetch; an unchanged document keeps the same ``KeySet`` object.

        >>> schedule = Schedule(CachePolicy())
        >>> first = jose.KeySet([])
        >>> schedule.succeed(now=0, document={"keys": []}, keys=first, max_age=600)
        >>> schedule.succeed(now=9, document={"keys": []}, keys=jose.KeySet([]), max_age=600)
        >>> schedule.keys is first, schedule.expires_at
        (True, 609.0)
        """
        if self.keys is None or document != self.document:
            self.keys, self.document = keys, document
        self.expires_at = now + self.policy.lifetime(max_age)
        self.retry_at = -math.inf

    def fail(self, now: float) -> None:
        """Record a failed fetch: the next scheduled one waits a cooldown.

        >>> schedule = Schedule(CachePolicy(cooldown=30))
        >>> schedule.fail(now=100)
        >>> schedule.retry_at
        130
        """
        self.retry_at = now + self.policy.cooldown
