"""Build tokens by hand, the way an attacker would, for the tests that must refuse them."""

from __future__ import annotations

import base64
import json
from typing import Any

from tessera.jose import Key


def segment(value: dict[str, Any] | bytes | str) -> str:
    """base64url of a JSON object (compact) or of raw bytes/text, without padding."""
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":")).encode()
    elif isinstance(value, str):
        value = value.encode()
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def forge(
    header: dict[str, Any] | bytes | str,
    payload: dict[str, Any] | bytes | str,
    key: Key | None = None,
    alg: str | None = None,
    signature: bytes = b"",
) -> str:
    """A compact token; signed with ``key`` under ``alg`` when given, else with ``signature``."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    if key is not None:
        signature = key.signer(alg or key.default_alg)(signing_input.encode())
    return f"{signing_input}.{segment(signature)}"


def forge_claims(claims: dict[str, Any] | bytes, key: Key, alg: str | None = None) -> str:
    """A correctly signed JWT whose payload is exactly ``claims`` (or raw bytes) — including
    what ``jwt.encode`` refuses to mint, such as ``"exp": null``."""
    alg = alg or key.default_alg
    header = {"alg": alg, "typ": "JWT", "kid": key.kid} if key.kid else {"alg": alg, "typ": "JWT"}
    return forge(header, claims, key, alg)
