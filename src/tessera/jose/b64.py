"""Strict base64url (RFC 4648 §5) without padding, as JOSE uses it (RFC 7515 §2).

Decoding refuses padding, characters outside the url-safe alphabet, an impossible length and
non-zero unused bits, so every value has exactly one encoding. All work happens in C (binascii).

>>> from tessera.jose import b64
>>> b64.encode(b"\\xfb\\xff")
b'-_8'
>>> b64.decode(b"-_8")
b'\\xfb\\xff'
"""

from __future__ import annotations

import binascii

from .errors import MalformedToken

# url-safe → standard alphabet; the standard-only characters and '=' become '!', which strict
# binascii refuses, so one C-level translate both converts and validates the alphabet.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", None, b"==", b"=")
# The last character of a 2- or 3-character final group carries 4 or 2 unused bits: they must be 0.
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CANONICAL_LAST: tuple[frozenset[int], ...] = (
    frozenset(),
    frozenset(),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x0F == 0),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0x03 == 0),
)


def encode(data: bytes) -> bytes:
    """Encode bytes as unpadded base64url.

    >>> encode(b"hi")
    b'aGk'
    """
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def decode(data: bytes | str) -> bytes:
    """Decode unpadded base64url, refusing anything but the one canonical encoding.

    >>> decode("aGk")
    b'hi'
    >>> decode("aGk=")
    Traceback (most recent call last):
    ...
    tessera.jose.errors.MalformedToken: invalid base64url
    """
    if type(data) is str:
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("invalid base64url") from None
    assert isinstance(data, bytes)
    rest = len(data) & 3
    padding = _PADDING[rest]
    if padding is None or (rest and data[-1] not in _CANONICAL_LAST[rest]):
        raise MalformedToken("invalid base64url")
    try:
        return binascii.a2b_base64(data.translate(_TO_STANDARD) + padding, strict_mode=True)
    except binascii.Error:
        raise MalformedToken("invalid base64url") from None


def encode_str(data: bytes) -> str:
    """Encode bytes as an unpadded base64url ``str``.

    >>> encode_str(b"hi")
    'aGk'
    """
    return encode(data).decode("ascii")


def encode_uint(value: int, length: int | None = None) -> str:
    """Encode a non-negative integer big-endian, as JWK members do (RFC 7518 §2).

    >>> encode_uint(65537)
    'AQAB'
    """
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return encode_str(value.to_bytes(size, "big"))


def decode_uint(data: str) -> int:
    """Decode a base64url big-endian unsigned integer.

    >>> decode_uint("AQAB")
    65537
    """
    return int.from_bytes(decode(data), "big")
