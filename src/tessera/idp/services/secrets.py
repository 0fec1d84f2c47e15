"""The master key: seals private keys at rest (AES-GCM) and keys the hashes of stored secrets.

>>> master = MasterKey(bytes(32))
>>> master.unseal(master.seal(b"private", aad=b"kid-1"), aad=b"kid-1")
b'private'
>>> len(master.keyed_hash("client-secret", "s3cret"))
64
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tessera.jose import b64
from tessera.jose.errors import MalformedToken

_NONCE = 12


class MasterKeyError(Exception):
    """The master key is missing, malformed, or does not open what was sealed with it."""


class MasterKey:
    """A 256-bit key from which every other at-rest key is derived (HKDF-SHA256)."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise MasterKeyError("the master key must be 32 bytes")
        self._sealing = AESGCM(self._derive(raw, b"tessera seal v1"))
        self._hashing = self._derive(raw, b"tessera keyed hash v1")
        self._peppers: dict[str, bytes] = {}

    @classmethod
    def load(cls, value: str | None, path: Path) -> MasterKey:
        """From base64url text (``TESSERA_MASTER_KEY``), else a file created with mode 0600.

        >>> MasterKey.load(b64.encode_str(bytes(32)), Path("unused")).keyed_hash("x", "y")[:8]
        '7961e1b2'
        """
        if value:
            try:
                return cls(b64.decode(value.strip()))
            except MalformedToken:
                raise MasterKeyError("TESSERA_MASTER_KEY is not base64url") from None
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(b64.encode_str(secrets.token_bytes(32)) + "\n")
        try:
            return cls(b64.decode(path.read_text().strip()))
        except MalformedToken:
            raise MasterKeyError(f"master key file {path} is not base64url") from None

    @staticmethod
    def _derive(raw: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt and authenticate; ``aad`` binds the blob to its owner (e.g. the kid)."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._sealing.encrypt(nonce, plaintext, aad)

    def unseal(self, blob: bytes, *, aad: bytes) -> bytes:
        """Open what :meth:`seal` produced for the same ``aad``."""
        try:
            return self._sealing.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise MasterKeyError("sealed data does not open with this master key") from None

    def keyed_hash(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value`` under a key derived for ``purpose``, hex."""
        pepper = self._peppers.get(purpose)
        if pepper is None:
            pepper = hmac.new(self._hashing, purpose.encode(), hashlib.sha256).digest()
            self._peppers[purpose] = pepper
        return hmac.new(pepper, value.encode(), hashlib.sha256).hexdigest()


def new_secret() -> str:
    """A fresh 256-bit secret, URL-safe text.

    >>> len(new_secret())
    43
    """
    return secrets.token_urlsafe(32)


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two strings."""
    return hmac.compare_digest(a.encode(), b.encode())
