"""Passwords: argon2id with OWASP parameters, the same work for unknown users as for known ones.

>>> hasher = Passwords(memory_kib=8, time_cost=1)
>>> hashed = hasher.hash("correct horse battery staple")
>>> hasher.verify(hashed, "correct horse battery staple"), hasher.verify(hashed, "wrong")
(True, False)
"""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """argon2id hashing; defaults are OWASP's (19 MiB, 2 iterations, 1 lane)."""

    def __init__(
        self, *, memory_kib: int = 19_456, time_cost: int = 2, parallelism: int = 1
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Each argon2 computation holds memory_kib of RAM: running more at once than there are
        # cores only multiplies memory (and the allocator keeps it), never throughput.
        self._slots = threading.BoundedSemaphore(os.cpu_count() or 1)
        # Verifying against this costs what a real user's check costs: no timing tells
        # an unknown username from a wrong password.
        self._decoy = self._hasher.hash("tessera decoy password")

    def hash(self, password: str) -> str:
        """A new argon2id hash of ``password``."""
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, hashed: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``hashed=None`` (no such user) does the same work."""
        try:
            with self._slots:
                matched = self._hasher.verify(hashed or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and hashed is not None

    def needs_rehash(self, hashed: str) -> bool:
        """Whether ``hashed`` was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(hashed)
