"""The ``mfa_token``: a short-lived, signed promise that a password was right.

Between the password and the second factor a client holds only this: an HS256 JWT (``typ``
``mfa+jwt``) under a key derived from the master key for this one purpose, issued by and to
the provider itself, naming the user, tenant and client, what the login asked for, when the
password was checked, and what the token is for (``verify`` a code, or ``enrol`` a factor).
It opens no API: access tokens are ES256 ``at+jwt`` under the keyring's keys.

>>> from tessera.idp.services.secrets import MasterKey
>>> challenges = Challenges(MasterKey(bytes(32)), "https://id.example")
>>> token = challenges.issue(tenant_id="acme", user_id="u1", client_id="web", purpose="verify",
...                          scope="read", resource=None, via="browser", now=1_700_000_000)
>>> opened = challenges.open(token, now=1_700_000_060)
>>> opened.user_id, opened.purpose, opened.auth_time
('u1', 'verify', 1700000000)
>>> challenges.open(token, now=1_700_000_400)
Traceback (most recent call last):
...
tessera.idp.errors.OAuthError: invalid_grant: mfa_token invalid or expired
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from tessera import jose

from ..errors import OAuthError, invalid_grant
from .secrets import MasterKey

TYP = "mfa+jwt"
TTL = 300  # seconds between the password and the code
PURPOSES = ("verify", "enrol")
Purpose = Literal["verify", "enrol"]
_KEY_PURPOSE = "mfa-challenge-signing-key"


@dataclass(frozen=True, slots=True)
class Challenge:
    """What an opened ``mfa_token`` says."""

    tenant_id: str
    user_id: str
    client_id: str
    purpose: Purpose
    scope: str | None
    resource: str | None
    via: str  # "password" (the token endpoint) or "browser" (/auth/login)
    auth_time: int  # when the password was checked
    jti: str


class MfaRequired(OAuthError):
    """The password was right, the second factor comes next — with the ``mfa_token``
    (``mfa_required``), or an enrolment first (``mfa_enrollment_required``)."""

    def __init__(self, error: str, description: str, mfa_token: str) -> None:
        super().__init__(error, description)
        self.mfa_token = mfa_token

    def as_dict(self) -> dict[str, str]:
        """The RFC 6749 error body plus the ``mfa_token``."""
        return {**super().as_dict(), "mfa_token": self.mfa_token}


class Challenges:
    """Issues and opens ``mfa_token`` JWTs for one master key and issuer."""

    def __init__(self, master: MasterKey, issuer: str) -> None:
        secret = bytes.fromhex(master.keyed_hash(_KEY_PURPOSE, "HS256 v1"))
        self._key = jose.Key.from_secret(secret, alg="HS256")
        self._issuer = issuer
        self._headers = {"typ": TYP}
        self._verifier = jose.Verifier(
            self._key,
            algorithms=["HS256"],
            issuer=issuer,
            audience=issuer,
            typ=TYP,
            require=("exp", "iat", "jti", "sub", "tenant", "client_id", "purpose", "auth_time"),
        )

    def issue(
        self,
        *,
        tenant_id: str,
        user_id: str,
        client_id: str,
        purpose: Purpose,
        scope: str | None,
        resource: str | None,
        via: str,
        now: int | None = None,
    ) -> str:
        """A signed ``mfa_token``, valid for ``TTL`` seconds from ``now`` (the password's time)."""
        issued_at = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._issuer,
            "sub": user_id,
            "tenant": tenant_id,
            "client_id": client_id,
            "purpose": purpose,
            "via": via,
            "auth_time": issued_at,
            "iat": issued_at,
            "exp": issued_at + TTL,
            "jti": secrets.token_urlsafe(16),
        }
        if scope is not None:
            claims["scope"] = scope
        if resource is not None:
            claims["resource"] = resource
        return jose.jwt.encode(claims, self._key, headers=self._headers)

    def open(self, token: str, *, now: int | None = None) -> Challenge:
        """Verify an ``mfa_token`` (signature, issuer, audience, typ, expiry) and read it;
        anything wrong is ``invalid_grant`` — never the reason, never the token."""
        try:
            claims = self._verifier.verify(token, now=now)
        except jose.JoseError:
            raise invalid_grant("mfa_token invalid or expired") from None
        strings = ("sub", "tenant", "client_id", "purpose", "jti")
        optional_strings = ("scope", "resource", "via")  # absent, or a string: never null
        if (
            not all(type(claims[name]) is str for name in strings)
            or not all(type(claims.get(name, "")) is str for name in optional_strings)
            or claims["purpose"] not in PURPOSES
            or type(claims["auth_time"]) is not int
        ):
            raise invalid_grant("mfa_token invalid or expired")
        return Challenge(
            tenant_id=claims["tenant"],
            user_id=claims["sub"],
            client_id=claims["client_id"],
            purpose=claims["purpose"],
            scope=claims.get("scope"),
            resource=claims.get("resource"),
            via=claims.get("via") or "password",
            auth_time=claims["auth_time"],
            jti=claims["jti"],
        )
