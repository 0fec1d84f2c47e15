"""Where a guard's verification keys come from: a static set, a JWKS file, a remote JWKS.

Every source answers ``get()`` (the current ``KeySet``), ``refresh()`` (called on an unknown
``kid``; may look again, within limits) and ``peek()`` (the keys if no I/O is needed). A guard
rebuilds its verifier only when ``get()`` returns a different ``KeySet`` object, so sources keep
the same object while the keys are unchanged. Remote sources come as sync and async twins:
:class:`RemoteJwks` and :class:`AsyncRemoteJwks` (see ``tessera.guard.remote``).

>>> from tessera import jose
>>> source = StaticKeys(jose.KeySet([jose.Key.generate("ES256", kid="k1")]))
>>> source.get().get("k1").kid
'k1'
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tessera import jose

logger = logging.getLogger("tessera.guard")


@runtime_checkable
class KeySource(Protocol):
    """A synchronous source of verification keys."""

    def get(self) -> jose.KeySet:
        """The current keys."""
        ...

    def refresh(self) -> jose.KeySet:
        """Look again because a token named an unknown ``kid`` (rate-limited by the source)."""
        ...

    def peek(self) -> jose.KeySet | None:
        """The current keys if answering needs no I/O, else ``None``."""
        ...


@runtime_checkable
class AsyncKeySource(Protocol):
    """The async twin of :class:`KeySource`."""

    async def get(self) -> jose.KeySet:
        """The current keys."""
        ...

    async def refresh(self) -> jose.KeySet:
        """Look again because a token named an unknown ``kid`` (rate-limited by the source)."""
        ...

    def peek(self) -> jose.KeySet | None:
        """The current keys if answering needs no I/O, else ``None``."""
        ...


class StaticKeys:
    """Keys fixed at construction: a ``Key``, a ``KeySet`` or a JWKS mapping.

    >>> key = jose.Key.generate("EdDSA")
    >>> len(StaticKeys(key.public()).get())
    1
    """

    def __init__(self, keys: jose.Key | jose.KeySet | Mapping[str, Any]) -> None:
        if isinstance(keys, jose.Key):
            keys = jose.KeySet([keys])
        elif not isinstance(keys, jose.KeySet):
            keys = jose.KeySet.from_jwks(keys)
        self._keys = keys

    def get(self) -> jose.KeySet:
        """The keys.

        >>> StaticKeys({"keys": []}).get()
        KeySet([])
        """
        return self._keys

    def refresh(self) -> jose.KeySet:
        """The same keys: a static set never changes.

        >>> source = StaticKeys({"keys": []})
        >>> source.refresh() is source.get()
        True
        """
        return self._keys

    def peek(self) -> jose.KeySet:
        """The keys (never any I/O).

        >>> StaticKeys({"keys": []}).peek()
        KeySet([])
        """
        return self._keys


class JwksFile:
    """A JWKS file, read again when it changes (checked at most once per ``poll`` seconds).

    A change that cannot be read or parsed is logged and the last good keys keep serving.

    >>> import json, tempfile
    >>> key = jose.Key.generate("ES256", kid="k1")
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
    ...     _ = file.write(json.dumps(jose.KeySet([key]).to_jwks()))
    >>> JwksFile(file.name).get().get("k1").kty
    'EC'
    """

    def __init__(self, path: str | os.PathLike[str], *, poll: float = 1.0) -> None:
        self.path = Path(path)
        self.poll = poll
        self._lock = threading.Lock()
        self._checked_at = time.monotonic()
        self._stamp = self._stat()
        self._keys = jose.KeySet.from_jwks(self.path.read_bytes())

    def get(self) -> jose.KeySet:
        """The keys, read again first if the file changed since the last look.

        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        ...     _ = file.write(json.dumps({"keys": []}))
        >>> JwksFile(file.name).get()
        KeySet([])
        """
        if time.monotonic() - self._checked_at >= self.poll:
            self._reload()
        return self._keys

    def refresh(self) -> jose.KeySet:
        """Look at the file now (an unknown ``kid`` may mean it was just rotated).

        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        ...     _ = file.write(json.dumps({"keys": []}))
        >>> source = JwksFile(file.name, poll=3600)
        >>> with open(file.name, "w") as again:
        ...     _ = again.write(json.dumps(jose.KeySet([jose.Key.generate("ES256", kid="new")])
        ...                                .to_jwks()))
        >>> source.refresh().get("new").kid
        'new'
        """
        self._reload()
        return self._keys

    def peek(self) -> jose.KeySet:
        """The keys as last read (a ``stat`` is cheap; ``get`` does it).

        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        ...     _ = file.write(json.dumps({"keys": []}))
        >>> len(JwksFile(file.name).peek())
        0
        """
        return self.get()

    def _stat(self) -> tuple[int, int, int]:
        stat = self.path.stat()
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _reload(self) -> None:
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                stamp = self._stat()
                if stamp == self._stamp:
                    return
                keys = jose.KeySet.from_jwks(self.path.read_bytes())
            except (OSError, jose.JoseError) as error:
                logger.warning(
                    "jwks file unreadable, keeping the last good keys: %s",
                    type(error).__name__,
                    extra={"outcome": "jwks_file_failed", "path": str(self.path)},
                )
                return
            self._stamp, self._keys = stamp, keys


def as_key_source(
    keys: KeySource | AsyncKeySource | jose.Key | jose.KeySet | Mapping[str, Any],
) -> KeySource | AsyncKeySource:
    """Coerce what ``Guard(keys=...)`` accepts into a key source.

    >>> isinstance(as_key_source({"keys": []}), StaticKeys)
    True
    """
    if isinstance(keys, jose.Key | jose.KeySet | Mapping):
        return StaticKeys(keys)
    if isinstance(keys, KeySource | AsyncKeySource):
        return keys
    raise jose.UsageError("keys must be a Key, a KeySet, a JWKS mapping or a key source")


__all__ = [
    "AsyncKeySource",
    "JwksFile",
    "KeySource",
    "StaticKeys",
    "as_key_source",
]
