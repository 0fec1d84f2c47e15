"""One hierarchy of errors, each with a stable ``code`` that logs and HTTP answers can carry.

Messages are fixed phrases and claim names: no error ever echoes a token, a signature or a key.

>>> from tessera import jose
>>> try:
...     jose.jwt.decode("not-a-token", b"k" * 32, algorithms=["HS256"])
... except jose.InvalidToken as error:
...     print(error.code)
malformed
"""

from __future__ import annotations


class JoseError(Exception):
    """Base of every error raised by ``tessera.jose``."""

    code = "jose_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or self.code)


class InvalidKey(JoseError):
    """The key is unusable: malformed, too weak, or not allowed for this operation."""

    code = "invalid_key"


class UsageError(JoseError, ValueError):
    """The call itself is wrong: an empty algorithm allow-list, ``none``, a bad header to sign."""

    code = "usage_error"


class InvalidToken(JoseError):
    """The token was refused."""

    code = "invalid_token"


class MalformedToken(InvalidToken):
    """The token is not a well-formed JWS/JWT."""

    code = "malformed"


class AlgorithmNotAllowed(InvalidToken):
    """The token's algorithm is not allowed by the policy or the key."""

    code = "algorithm_not_allowed"


class UnsupportedHeader(InvalidToken):
    """The token's header asks for something this verifier does not do (``crit``, ``b64``)."""

    code = "unsupported_header"


class KeyNotFound(InvalidToken):
    """No key of the key set can verify this token."""

    code = "key_not_found"


class InvalidSignature(InvalidToken):
    """The signature does not verify."""

    code = "invalid_signature"


class InvalidType(InvalidToken):
    """The token's ``typ`` header is not the one required."""

    code = "invalid_typ"


class ClaimError(InvalidToken):
    """A claim failed validation; ``claim`` names it."""

    code = "invalid_claim"

    def __init__(self, message: str | None = None, claim: str | None = None) -> None:
        super().__init__(message)
        self.claim = claim


class MissingClaim(ClaimError):
    """A required claim is missing."""

    code = "missing_claim"


class ExpiredToken(ClaimError):
    """The token has expired (``exp``, or older than ``max_age``)."""

    code = "expired"


class NotYetValid(ClaimError):
    """The token is not valid yet (``nbf``)."""

    code = "not_yet_valid"


class IssuedInTheFuture(ClaimError):
    """The token's ``iat`` lies in the future."""

    code = "iat_in_future"


class InvalidIssuer(ClaimError):
    """The token's issuer is not the one expected."""

    code = "invalid_issuer"


class InvalidAudience(ClaimError):
    """The token's audience is not the one expected."""

    code = "invalid_audience"


__all__ = [
    "AlgorithmNotAllowed",
    "ClaimError",
    "ExpiredToken",
    "InvalidAudience",
    "InvalidIssuer",
    "InvalidKey",
    "InvalidSignature",
    "InvalidToken",
    "InvalidType",
    "IssuedInTheFuture",
    "JoseError",
    "KeyNotFound",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "UnsupportedHeader",
    "UsageError",
]
