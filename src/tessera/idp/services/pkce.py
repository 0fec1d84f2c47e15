"""PKCE (RFC 7636) with ``S256`` only: ``plain`` would hand the verifier to whoever reads the
authorization request, which is what PKCE exists to defeat (RFC 9700 §2.1.1).

>>> verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
>>> challenge = challenge_of(verifier)
>>> challenge
'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
>>> verifies(verifier, challenge)
True
"""

from __future__ import annotations

import hashlib
import hmac
import re

from tessera.jose import b64

METHOD = "S256"
# RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# What S256 makes: base64url of 32 bytes, unpadded — exactly 43 characters.
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def challenge_problem(challenge: str | None, method: str | None) -> str | None:
    """Why an authorization request's PKCE parameters are refused, or ``None``.

    >>> challenge_problem(None, None)
    'code_challenge is required (PKCE, S256)'
    >>> challenge_problem("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain")
    'code_challenge_method must be S256'
    """
    if not challenge:
        return "code_challenge is required (PKCE, S256)"
    if method != METHOD:  # RFC 7636 defaults a missing method to plain: refused too
        return "code_challenge_method must be S256"
    if not _CHALLENGE.fullmatch(challenge):
        return "code_challenge is not an S256 challenge"
    return None


def challenge_of(verifier: str) -> str:
    """The ``S256`` challenge of ``verifier``: ``BASE64URL(SHA256(verifier))``."""
    return b64.encode_str(hashlib.sha256(verifier.encode("ascii")).digest())


def verifies(verifier: str | None, challenge: str) -> bool:
    """Whether ``verifier`` is well formed and its ``S256`` challenge is ``challenge``
    (compared in constant time).

    >>> verifies("too-short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    False
    """
    if verifier is None or not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(challenge_of(verifier).encode(), challenge.encode())
