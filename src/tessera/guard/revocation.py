"""Revocation: "is this ``jti`` revoked?" and "did this subject log out everywhere after ``iat``?"

A :class:`RevocationList` answers both; :func:`is_revoked` applies them to a verified claims set.
Lists raise :class:`~tessera.guard.errors.RevocationUnavailable` when they cannot answer; the
guard then fails closed on sensitive routes and follows its policy elsewhere. Backends:
:class:`MemoryRevocationList` (here), ``RedisRevocationList`` (``revocation_redis``), and
introspection (``introspection``) for where no Redis is shared.

>>> revocations = MemoryRevocationList()
>>> revocations.revoke("t-1", expires_at=2**31)
>>> is_revoked(revocations, {"jti": "t-1", "sub": "ada", "iat": 100})
True
>>> revocations.revoke_subject("bob", not_before=200, expires_at=2**31)
>>> is_revoked(revocations, {"jti": "t-2", "sub": "bob", "iat": 100})
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from tessera import jose


@runtime_checkable
class RevocationList(Protocol):
    """Answers for revoked token ids and per-subject not-before times (logout everywhere)."""

    def is_revoked(self, jti: str) -> bool:
        """Whether the token with this ``jti`` was revoked."""
        ...

    def not_before(self, sub: str) -> float | None:
        """The time before which every token of ``sub`` is revoked, or ``None``."""
        ...


@runtime_checkable
class TokenStatus(Protocol):
    """Answers whether a whole token is still active (an introspection endpoint does this)."""

    def is_active(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Whether the issuer still considers ``token`` active."""
        ...


@runtime_checkable
class AsyncTokenStatus(Protocol):
    """The async twin of :class:`TokenStatus`."""

    async def is_active(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Whether the issuer still considers ``token`` active."""
        ...


def is_revoked(revocations: RevocationList, claims: Mapping[str, Any]) -> bool:
    """Whether ``claims`` are revoked: by ``jti``, or by a subject not-before later than ``iat``.

    A token without ``iat`` cannot show it came after a logout, so a not-before refuses it.

    >>> is_revoked(MemoryRevocationList(), {"jti": "t-1", "sub": "ada", "iat": 1})
    False
    """
    jti = claims.get("jti")
    if type(jti) is str and revocations.is_revoked(jti):
        return True
    sub = claims.get("sub")
    if type(sub) is str:
        not_before = revocations.not_before(sub)
        if not_before is not None:
            iat = claims.get("iat")
            return not jose.claims.is_numeric_date(iat) or not_before > iat
    return False


class MemoryRevocationList:
    """An in-process revocation list (one node, or tests); entries drop when their tokens expire.

    >>> revocations = MemoryRevocationList()
    >>> revocations.revoke("t-1", expires_at=1)
    >>> revocations.is_revoked("t-1")
    False
    """

    def __init__(self) -> None:
        self._jtis: dict[str, float] = {}
        self._subjects: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def revoke(self, jti: str, *, expires_at: float) -> None:
        """Revoke one token until ``expires_at`` (its ``exp``: after that it is refused anyway).

        >>> revocations = MemoryRevocationList()
        >>> revocations.revoke("t-1", expires_at=time.time() + 60)
        >>> revocations.is_revoked("t-1")
        True
        """
        with self._lock:
            self._jtis[jti] = expires_at

    def revoke_subject(
        self, sub: str, *, not_before: float | None = None, expires_at: float
    ) -> None:
        """Revoke every token of ``sub`` issued before ``not_before`` (default: now).

        >>> revocations = MemoryRevocationList()
        >>> revocations.revoke_subject("ada", not_before=100, expires_at=time.time() + 60)
        >>> revocations.not_before("ada")
        100
        """
        moment = time.time() if not_before is None else not_before
        with self._lock:
            self._subjects[sub] = (moment, expires_at)

    def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is revoked (and its entry not yet expired).

        >>> MemoryRevocationList().is_revoked("never-revoked")
        False
        """
        expires_at = self._jtis.get(jti)
        if expires_at is None:
            return False
        if expires_at <= time.time():
            with self._lock:
                self._jtis.pop(jti, None)
            return False
        return True

    def not_before(self, sub: str) -> float | None:
        """The subject's not-before, if one is set and not yet expired.

        >>> MemoryRevocationList().not_before("ada") is None
        True
        """
        entry = self._subjects.get(sub)
        if entry is None:
            return None
        if entry[1] <= time.time():
            with self._lock:
                self._subjects.pop(sub, None)
            return None
        return entry[0]
