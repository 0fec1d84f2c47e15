"""Passwords: argon2id with OWASP parameters, the same work for unknown users as for known ones.

>>> hasher = Passwords(memory_kib=8, time_cost=1)
>>> hashed = hasher.hash("correct horse battery staple")
>>> hasher.verify(hashed, "correct horse battery staple"), hasher.verify(hashed, "wrong")
(True, False)
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor

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
        # Each argon2 computation holds memory_kib of RAM, and the allocator keeps it in the
        # arena of the thread that ran it. A few dedicated threads (one per core: more never
        # adds throughput) keep that memory bounded, however many request threads log people in.
        self._workers = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="argon2")
        # Verifying against a decoy costs what a real user's check costs: no timing tells an
        # unknown username from a wrong password. Hashed in the background from the start.
        self._decoy = self._workers.submit(self._hasher.hash, secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """A new argon2id hash of ``password``."""
        return self._workers.submit(self._hasher.hash, password).result()

    def verify(self, hashed: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``hashed=None`` (no such user) does the same work."""
        target = hashed or self._decoy.result()
        try:
            matched = self._workers.submit(self._hasher.verify, target, password).result()
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and hashed is not None

    def close(self) -> None:
        """Stop the argon2 threads."""
        self._workers.shutdown(wait=True, cancel_futures=True)

    def needs_rehash(self, hashed: str) -> bool:
        """Whether ``hashed`` was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(hashed)
