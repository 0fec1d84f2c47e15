"""ID tokens (OpenID Connect Core §2, §3.1.3.6): who signed in, when and how, for one client.

Signed by the keyring with the algorithm the client registered (RS256 unless it chose another:
every OpenID Connect client can verify RS256). ``at_hash`` binds the ID token to the access token
issued with it: the left half of the access token's hash under the hash of the signing algorithm.

>>> at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256")  # OIDC Core A.3
'77QmUPtjPfzWtF2AnpK9RQ'
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tessera import jose

from ..config import Settings
from .keyring import Keyring

# The hash whose left half is at_hash (OIDC Core §3.1.3.6; EdDSA over Ed25519: SHA-512, per the
# OpenID Foundation's errata).
_HASH_OF_ALG = {
    "RS256": hashlib.sha256,
    "PS256": hashlib.sha256,
    "ES256": hashlib.sha256,
    "ES384": hashlib.sha384,
    "EdDSA": hashlib.sha512,
}
ID_TOKEN_ALGS = tuple(_HASH_OF_ALG)
# The scopes OpenID Connect defines (Core §5.4, §11): not API permissions, never held by roles.
OPENID_SCOPES = ("openid", "profile", "email", "offline_access")


def at_hash(access_token: str, alg: str) -> str:
    """The ``at_hash`` of ``access_token`` for an ID token signed with ``alg``."""
    digest = _HASH_OF_ALG[alg](access_token.encode("ascii")).digest()
    return jose.b64.encode_str(digest[: len(digest) // 2])


@dataclass(frozen=True, slots=True)
class SignIn:
    """What an ID token says of a sign-in: who, when, how, in which provider session."""

    subject: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str = ""
    session_id: str | None = None


class IdTokenIssuer:
    """Mints ID tokens: ``iss sub aud exp iat auth_time`` and, when known, ``nonce acr amr sid
    at_hash``, plus the user claims the granted scopes allow."""

    def __init__(self, keyring: Keyring, settings: Settings) -> None:
        self._keyring = keyring
        self._settings = settings

    def issue(
        self,
        sign_in: SignIn,
        *,
        client_id: str,
        alg: str = "RS256",
        nonce: str | None = None,
        access_token: str | None = None,
        claims: Mapping[str, Any] | None = None,
        now: float | None = None,
        session: Session | None = None,
    ) -> str:
        """Sign an ID token for ``client_id`` (its only audience, so no ``azp``).

        ``claims`` are the user's claims to include (``name``, ``email``…); the registered
        ones above always win over them. ``session``: the caller's transaction, where the
        first key of ``alg`` is made if there is none yet.
        """
        if alg not in _HASH_OF_ALG:
            raise ValueError(f"ID tokens are not signed with {alg}")
        issued_at = int(time.time() if now is None else now)
        payload: dict[str, Any] = dict(claims or {})
        payload.update(
            {
                "iss": self._settings.issuer,
                "sub": sign_in.subject,
                "aud": client_id,
                "exp": issued_at + self._settings.id_token_ttl,
                "iat": issued_at,
                "auth_time": sign_in.auth_time,
            }
        )
        if nonce is not None:
            payload["nonce"] = nonce
        if sign_in.acr:
            payload["acr"] = sign_in.acr
        if sign_in.amr:
            payload["amr"] = list(sign_in.amr)
        if sign_in.session_id is not None:
            payload["sid"] = sign_in.session_id
        if access_token is not None:
            payload["at_hash"] = at_hash(access_token, alg)
        key = self._keyring.signing_key(issued_at, alg=alg, session=session)
        return jose.jwt.encode(payload, key)
