"""Authorization codes (RFC 6749 §4.1): 256 random bits, stored only as a keyed hash, bound to
what the authorization request decided, redeemable once, for at most ``authorization_code_ttl``
seconds (60 at most, RFC 9700 §4.1.1 leaves it short).

Redemption claims the code with one conditional UPDATE, so of many simultaneous redemptions
exactly one wins, on SQLite and PostgreSQL alike. A code presented again after it was redeemed is
an attack or a broken client: the answer is refused and names what was issued from the code, so
the caller revokes it (RFC 6749 §4.1.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ClauseElement, Table, bindparam, select, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..store import prepared
from ..store.models import AuthorizationCode
from .pkce import verifies
from .secrets import MasterKey, new_secret

PURPOSE = "authorization-code"
# What we mint is 43 characters; anything longer is no code of ours, and is not hashed.
MAX_CODE_LENGTH = 128
_TABLE = cast(Table, AuthorizationCode.__table__)
_INSERT = _TABLE.insert()
# Core statements, built once: a code is issued and redeemed on every sign-in. A code is
# claimable by its client while it is unspent and unexpired.
_CLAIMABLE = (
    _TABLE.c.code_hash == bindparam("digest"),
    _TABLE.c.client_id == bindparam("client"),
    _TABLE.c.redeemed_at.is_(None),
    _TABLE.c.expires_at > bindparam("now"),
)
_CLAIM = update(_TABLE).where(*_CLAIMABLE).values(redeemed_at=bindparam("now")).returning(*_TABLE.c)
_CLAIM_AND_NOTE = (
    update(_TABLE)
    .where(*_CLAIMABLE)
    .values(
        redeemed_at=bindparam("now"),
        family_id=bindparam("family_id"),
        access_jti=bindparam("access_jti"),
    )
)
# True, in the transaction of a claim_noting(), once that very claim took the code.
CLAIMED = (
    select(_TABLE.c.code_hash)
    .where(
        _TABLE.c.code_hash == bindparam("claimed_code"),
        _TABLE.c.access_jti == bindparam("claimed_jti"),
    )
    .exists()
)
_ISSUED = (
    update(_TABLE)
    .where(_TABLE.c.code_hash == bindparam("digest"))
    .values(family_id=bindparam("family_id"), access_jti=bindparam("access_jti"))
)


@dataclass(frozen=True, slots=True)
class CodeGrant:
    """What an authorization request decided, carried by its code to the token endpoint."""

    tenant_id: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    auth_time: int
    amr: str
    acr: str = ""
    nonce: str | None = None
    resource: str | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class CodeRefused:
    """A refused redemption; ``reason`` is safe to show the client. A replayed code names the
    refresh family and access token issued from it, for the caller to revoke."""

    reason: str
    replayed: AuthorizationCode | None = None


class AuthorizationCodes:
    """Issues and redeems authorization codes."""

    def __init__(self, master: MasterKey, settings: Settings) -> None:
        self._master = master
        self._ttl = settings.authorization_code_ttl

    def digest(self, code: str) -> str:
        """The keyed hash a code is stored under."""
        return self._master.keyed_hash(PURPOSE, code)

    def issue(self, session: Session, grant: CodeGrant, *, now: int) -> str:
        """A new code for ``grant`` (in clear, for the redirect; only its hash is stored)."""
        code, (statement, values) = self.issuing(grant, now=now)
        prepared.run(session, statement, values)
        return code

    def issuing(
        self, grant: CodeGrant, *, now: int
    ) -> tuple[str, tuple[ClauseElement, dict[str, Any]]]:
        """A new code for ``grant``, and the statement that stores it (its hash), for a caller
        that writes it itself (``Database.write_all``)."""
        code = new_secret()
        return code, (
            _INSERT,
            {
                "code_hash": self.digest(code),
                "tenant_id": grant.tenant_id,
                "client_id": grant.client_id,
                "user_id": grant.user_id,
                "session_id": grant.session_id,
                "redirect_uri": grant.redirect_uri,
                "scope": grant.scope,
                "resource": grant.resource,
                "code_challenge": grant.code_challenge,
                "nonce": grant.nonce,
                "auth_time": grant.auth_time,
                "amr": grant.amr,
                "acr": grant.acr,
                "created_at": now,
                "expires_at": now + self._ttl,
                "redeemed_at": None,
                "family_id": None,
                "access_jti": None,
            },
        )

    def redeem(
        self,
        session: Session,
        code: str,
        *,
        client_id: str,
        redirect_uri: str | None,
        verifier: str | None,
        now: int,
    ) -> AuthorizationCode | CodeRefused:
        """The code's row, spent by this call; or why not.

        The code is spent before the redirect URI and the PKCE verifier are checked: a stolen
        code tried without its verifier is dead for the thief and for its owner alike.
        """
        if not code or len(code) > MAX_CODE_LENGTH:
            return CodeRefused("invalid authorization code")
        digest = self.digest(code)
        row = prepared.run(session, _CLAIM, {"digest": digest, "client": client_id, "now": now})
        if row is None:
            stored = session.get(AuthorizationCode, digest)
            if (
                stored is not None
                and stored.client_id == client_id
                and stored.redeemed_at is not None
            ):
                return CodeRefused("authorization code already used", replayed=stored)
            return CodeRefused("invalid authorization code")
        claimed = prepared.detached(AuthorizationCode, row)  # what was claimed (not in the session)
        if redirect_uri != claimed.redirect_uri:
            return CodeRefused("redirect_uri does not match the authorization request")
        if not verifies(verifier, claimed.code_challenge):
            return CodeRefused("code_verifier does not match the code_challenge")
        return claimed

    def claim_noting(
        self, digest: str, *, client_id: str, now: int, family_id: str | None, jti: str
    ) -> tuple[tuple[ClauseElement, dict[str, Any]], dict[str, Any]]:
        """The statement that claims the code stored under ``digest`` for ``client_id`` and
        notes what it gives (the refresh family, the access token's ``jti``: a replay finds
        them to revoke), and the parameters under which :data:`CLAIMED` then holds — for a
        caller that writes the rest of the grant only if that claim took the code."""
        claim = {
            "digest": digest,
            "client": client_id,
            "now": now,
            "family_id": family_id,
            "access_jti": jti,
        }
        return (_CLAIM_AND_NOTE, claim), {"claimed_code": digest, "claimed_jti": jti}

    def issued(
        self, session: Session, code: AuthorizationCode, *, family_id: str | None, jti: str
    ) -> None:
        """Remember what was issued from ``code``, to revoke it if the code comes back."""
        prepared.run(
            session, _ISSUED, {"digest": code.code_hash, "family_id": family_id, "access_jti": jti}
        )
