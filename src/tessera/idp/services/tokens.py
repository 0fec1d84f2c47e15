"""Access tokens: RFC 9068 JWTs signed by the keyring's active key.

>>> from tessera.idp.config import Settings
>>> from tessera.idp.store.database import Database
>>> from tessera.idp.services.keyring import Keyring
>>> from tessera.idp.services.secrets import MasterKey
>>> database = Database("sqlite://"); database.upgrade()
>>> settings = Settings(database_url="sqlite://", issuer="https://id.example")
>>> issuer = TokenIssuer(Keyring(database, MasterKey(bytes(32)), settings), settings)
>>> issued = issuer.issue(tenant_id="t", subject="svc", client_id="svc", scope=("a",),
...                       audience="api", now=1_700_000_000)
>>> issued.claims["iss"], issued.claims["scope"], issued.expires_in
('https://id.example', 'a', 900)
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from tessera import jose

from ..config import Settings
from .keyring import Keyring

ACCESS_TOKEN_TYP = "at+jwt"
# Verified access tokens the provider keeps (the verifier's LRU): a resource server asks about
# the same token at each of its requests. Revocation is still read every time; ~1.5 KB each.
VERIFIED_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and what it says."""

    token: str
    claims: dict[str, Any]
    expires_in: int


class TokenIssuer:
    """Mints access tokens: ``iss sub aud exp iat jti client_id scope tenant`` (+ extras)."""

    def __init__(self, keyring: Keyring, settings: Settings) -> None:
        self._keyring = keyring
        self._settings = settings
        self._headers = {"typ": ACCESS_TOKEN_TYP}
        self._verifier: tuple[jose.KeySet, jose.Verifier] | None = None

    def issue(
        self,
        *,
        tenant_id: str,
        subject: str,
        client_id: str,
        scope: tuple[str, ...],
        audience: str,
        extra: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> IssuedToken:
        """Sign an access token for ``subject`` on behalf of ``client_id``."""
        issued_at = int(time.time() if now is None else now)
        lifetime = self._settings.access_token_ttl
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "sub": subject,
            "aud": audience,
            "exp": issued_at + lifetime,
            "iat": issued_at,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": " ".join(scope),
            "tenant": tenant_id,
        }
        if extra:
            claims.update(extra)
        key = self._keyring.signing_key(issued_at)
        token = jose.jwt.encode(claims, key, headers=self._headers)
        return IssuedToken(token, claims, lifetime)

    def verifier(self, now: float | None = None) -> jose.Verifier:
        """A Verifier for tokens this provider signed (its own published keys), for
        introspection and RFC 7009 revocation — routes that take a bearer token use a guard
        (``Provider.guard``). Kept, with the tokens it verified, until the published keys
        change. What it returns has the types :func:`check_own_claims` names, so callers read
        ``claims["tenant"]`` as is."""
        keys = self._keyring.key_set(now)
        cached = self._verifier
        if cached is not None and cached[0] is keys:
            return cached[1]
        verifier = jose.Verifier(
            keys,
            algorithms=[self._settings.signing_alg],
            issuer=self._settings.issuer,
            audience=jose.ANY_AUDIENCE,  # the provider answers for every audience it serves
            typ=ACCESS_TOKEN_TYP,
            require=("exp", "iat", "jti", "sub", "client_id", "tenant"),
            check=check_own_claims,
            cache=VERIFIED_TOKENS,
        )
        self._verifier = (keys, verifier)
        return verifier


def check_own_claims(claims: dict[str, Any]) -> None:
    """Refuse an access token of this provider whose private claims are not what it mints:
    ``client_id`` and ``tenant`` are non-empty strings, ``scope`` a string (registered claims
    are checked by ``tessera.jose``; ``sub``, ``jti``, ``iat`` are required).

    >>> check_own_claims({"client_id": "web", "tenant": "acme", "scope": ""})
    >>> check_own_claims({"client_id": "web", "tenant": None})
    Traceback (most recent call last):
    ...
    tessera.jose.errors.ClaimError: tenant must be a non-empty string
    """
    for name in ("client_id", "tenant"):
        value = claims.get(name)
        if type(value) is not str or not value:
            raise jose.ClaimError(f"{name} must be a non-empty string", name)
    if "scope" in claims and type(claims["scope"]) is not str:
        raise jose.ClaimError("scope must be a space-separated string", "scope")
