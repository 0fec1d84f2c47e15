"""Reading the command's inputs and writing secret files that only their owner can read.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "secret.jwk"
>>> write_private(path, b"{}", force=False)
>>> oct(path.stat().st_mode & 0o777), read_bytes(path, "key file")
('0o600', b'{}')
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from tessera.jose.jws import MAX_TOKEN_BYTES

from .errors import InputError

MAX_FILE_BYTES = 1024 * 1024
_PRIVATE_MODE = 0o600


def read_bytes(path: Path, what: str) -> bytes:
    """The contents of a (bounded) input file; any failure is an :class:`InputError`.

    >>> read_bytes(Path("/nonexistent"), "key file")
    Traceback (most recent call last):
    ...
    tessera.cli.errors.InputError: cannot read key file '/nonexistent': No such file or directory
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InputError(f"cannot read {what} '{path}': {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{what} '{path}' is larger than {MAX_FILE_BYTES} bytes")
    return data


def read_token(argument: str) -> str:
    """The token given on the command line, or read from stdin when the argument is ``-``.

    >>> read_token("  eyJ.e30.c2ln\\n")
    'eyJ.e30.c2ln'
    """
    token = argument
    if argument == "-":
        try:
            token = sys.stdin.read(MAX_TOKEN_BYTES + 1)
        except UnicodeDecodeError:
            raise InputError("stdin does not hold a token (not text)") from None
    token = token.strip()
    if not token:
        raise InputError("no token given" + (" on stdin" if argument == "-" else ""))
    return token


def write_private(path: Path, data: bytes, *, force: bool) -> None:
    """Write secret material to a file created with mode 0600; refuse to replace one unless forced.

    The file is created with its final mode, never widened afterwards, so it is not readable by
    others even for a moment.

    >>> write_private(Path("/nonexistent/key.jwk"), b"{}", force=False)
    Traceback (most recent call last):
    ...
    tessera.cli.errors.InputError: cannot write '/nonexistent/key.jwk': No such file or directory
    """
    if force:
        _replace_private(path, data)
        return
    try:
        # O_EXCL also refuses a symlink planted at the path.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE)
    except FileExistsError:
        raise InputError(f"'{path}' already exists; use --force to replace it") from None
    except OSError as error:
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None
    _write_or_remove(descriptor, path, data)


def _replace_private(path: Path, data: bytes) -> None:
    # Truncating an existing file would keep its old (maybe wider) mode: write a new 0600 file
    # beside it and rename it over the old one instead.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE)
    except OSError as error:
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None
    _write_or_remove(descriptor, temporary, data)
    try:
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None


def _write_or_remove(descriptor: int, path: Path, data: bytes) -> None:
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        path.unlink(missing_ok=True)
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None
