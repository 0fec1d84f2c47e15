"""The token format: JWS, JWK/JWKS and JWT, pure and secure by default.

>>> from tessera import jose
>>> key = jose.Key.generate("ES256")
>>> token = jose.jwt.encode({"sub": "ada", "exp": 2**31}, key)
>>> jose.jwt.decode(token, key.public(), algorithms=["ES256"])["sub"]
'ada'
"""

from . import algorithms, b64, claims, json, jws, jwt
from .errors import (
    AlgorithmNotAllowed,
    ClaimError,
    ExpiredToken,
    InvalidAudience,
    InvalidIssuer,
    InvalidKey,
    InvalidSignature,
    InvalidToken,
    InvalidType,
    IssuedInTheFuture,
    JoseError,
    KeyNotFound,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    UnsupportedHeader,
    UsageError,
)
from .jwt import ANY_AUDIENCE, AnyAudience, Verifier
from .keys import Key, KeySet

__all__ = [
    "ANY_AUDIENCE",
    "AlgorithmNotAllowed",
    "AnyAudience",
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
    "Key",
    "KeyNotFound",
    "KeySet",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "UnsupportedHeader",
    "UsageError",
    "Verifier",
    "algorithms",
    "b64",
    "claims",
    "json",
    "jws",
    "jwt",
]
