"""How the provider accepts its own access tokens on its own routes: through ``tessera.guard``,
like every API, with a key source over its keyring and a revocation source over its database.

No HTTP call to itself: the keys are the keyring's in-memory ``KeySet`` (a rotation is seen at
once), and revocation is one read of the blocklist and the subject's not-before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tessera import jose
from tessera.guard import RevocationUnavailable

from ..store.database import Database
from ..threads import in_thread
from .keyring import Keyring
from .revocation import Revocations

# An unknown kid makes the key source read the key table again at most this often.
RELOAD_COOLDOWN = 5.0


class KeyringKeys:
    """A guard key source over the provider's keyring: the keys ``/.well-known/jwks.json``
    serves, from memory, the same ``KeySet`` object until they change."""

    def __init__(self, keyring: Keyring, *, cooldown: float = RELOAD_COOLDOWN) -> None:
        self._keyring = keyring
        self._cooldown = cooldown
        self._lock = threading.Lock()
        self._reloaded_at = float("-inf")

    def get(self) -> jose.KeySet:
        """The keys the keyring publishes now."""
        return self._keyring.key_set()

    def refresh(self) -> jose.KeySet:
        """Read the key table again (another node may have rotated), at most once a cooldown."""
        with self._lock:
            if time.monotonic() - self._reloaded_at >= self._cooldown:
                self._reloaded_at = time.monotonic()
                self._keyring.reload()
        return self.get()

    def peek(self) -> jose.KeySet:
        """The keys: the keyring keeps them in memory."""
        return self.get()


class DatabaseRevocations:
    """The guard's revocation check against the provider's database (blocklist, not-before).

    Async, so the database is read on a worker thread; an unreachable database is
    ``RevocationUnavailable``, which the guard answers with 503 on sensitive routes.
    """

    def __init__(self, database: Database, revocations: Revocations) -> None:
        self._database = database
        self._revocations = revocations

    async def is_active(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Whether the token is neither on the blocklist nor before its subject's not-before."""
        return not await in_thread(self._revoked, dict(claims))

    def _revoked(self, claims: dict[str, Any]) -> bool:
        try:
            with self._database.session(readonly=True) as session:
                return self._revocations.is_revoked(session, claims)
        except SQLAlchemyError:
            raise RevocationUnavailable() from None
