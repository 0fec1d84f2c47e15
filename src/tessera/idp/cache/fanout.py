"""Revocation fan-out to Redis, in the wire format ``tessera.guard``'s Redis list follows.

>>> fanout = RedisFanout("redis://127.0.0.1:1/0")
>>> fanout.prefix
'tessera:revocation:'
"""

from __future__ import annotations

import logging

from ...guard.revocation_redis import DEFAULT_PREFIX, RedisRevocationList

log = logging.getLogger("tessera.idp")


class RedisFanout:
    """Publishes committed revocations so every guard learns of them at once.

    The database stays the truth: if Redis is down the revocation still holds at the provider
    (introspection, refresh), and is logged; guards on sensitive routes fail closed meanwhile.
    """

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self._writer = RedisRevocationList(url, prefix=prefix)

    def revoke_jti(self, jti: str, expires_at: int) -> None:
        """Publish a revoked access token until its expiry."""
        try:
            self._writer.revoke(jti, expires_at=expires_at)
        except Exception:
            log.exception("could not publish a revocation to Redis")

    def close(self) -> None:
        """Close the connection to Redis."""
        self._writer.redis.close()

    def not_before(self, tenant_id: str, subject: str, not_before: int, expires_at: int) -> None:
        """Publish a subject's not-before (logout everywhere)."""
        try:
            self._writer.revoke_subject(subject, not_before=not_before, expires_at=expires_at)
        except Exception:
            log.exception("could not publish a not-before to Redis")
