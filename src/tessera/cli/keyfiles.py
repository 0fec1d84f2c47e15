"""Key files turned into keys: one key (JWK, PEM, DER, OpenSSH or a raw secret) or a JWK Set.

>>> import pathlib, tempfile
>>> from tessera import jose
>>> path = pathlib.Path(tempfile.mkdtemp()) / "key.pem"
>>> _ = path.write_bytes(jose.Key.generate("ES256").to_pem(private=True))
>>> load_key(path).is_private
True
"""

from __future__ import annotations

from pathlib import Path

from tessera import jose

from .errors import InputError
from .files import read_bytes


def load_key(path: Path) -> jose.Key:
    """The key held by a file, whatever its form; anything unusable is an :class:`InputError`.

    >>> load_key(Path("/nonexistent"))
    Traceback (most recent call last):
    ...
    tessera.cli.errors.InputError: cannot read key file '/nonexistent': No such file or directory
    """
    data = read_bytes(path, "key file")
    try:
        return jose.Key.from_material(data)
    except jose.InvalidKey as error:
        raise InputError(f"key file '{path}': {error}") from None


def load_keyset(path: Path) -> jose.KeySet:
    """The usable keys of a JWK Set file; a set with none is an :class:`InputError`.

    >>> load_keyset(Path("/nonexistent"))
    Traceback (most recent call last):
    ...
    tessera.cli.errors.InputError: cannot read JWKS file '/nonexistent': No such file or directory
    """
    data = read_bytes(path, "JWKS file")
    try:
        keys = jose.KeySet.from_jwks(data)
    except jose.InvalidKey as error:
        raise InputError(f"JWKS file '{path}': {error}") from None
    if not keys.keys:
        raise InputError(f"JWKS file '{path}' holds no usable key")
    return keys
