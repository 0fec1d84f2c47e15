"""UserInfo (OpenID Connect Core §5.3): what an access token with the ``openid`` scope may learn
of its user — ``sub`` always, and the claims of each granted scope (§5.4): ``profile`` gives
``preferred_username`` and ``updated_at``; ``email`` gives ``email`` and ``email_verified``.
A claim the provider does not hold (a user without an email) is left out, never null.

>>> claims_of_scopes(("openid", "email"))
('email', 'email_verified')
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select

from tessera.guard import InsufficientScope, Principal, TokenRefused, TokenRevoked

from ..services.accounts import status_at
from ..services.revocation import revocation_columns, revoked_by
from ..store.database import Database
from ..store.models import UUID_LENGTH, User

# The claims each scope releases (OpenID Connect Core §5.4), of those the provider holds.
SCOPE_CLAIMS = {
    "profile": ("preferred_username", "updated_at"),
    "email": ("email", "email_verified"),
}
# What discovery's claims_supported lists: the ID token's claims, then the UserInfo ones.
CLAIMS_SUPPORTED = (
    *("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"),
    *(claim for claims in SCOPE_CLAIMS.values() for claim in claims),
)


def claims_of_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The user claims ``scopes`` release, in a stable order."""
    granted = set(scopes)
    return tuple(
        claim for scope, claims in SCOPE_CLAIMS.items() if scope in granted for claim in claims
    )


_LISTED, _NOT_BEFORE = revocation_columns()
# The user's claims and the token's revocation, in one statement: UserInfo is read often.
_USER = select(
    User.tenant_id,
    User.username,
    User.updated_at,
    User.email,
    User.status,
    User.locked_until,
    _LISTED,
    _NOT_BEFORE,
).where(User.id == bindparam("sub"))


async def userinfo(
    database: Database, principal: Principal, *, now: int | None = None
) -> dict[str, Any]:
    """The UserInfo answer for the verified access token of ``principal``, whose revocation
    is checked here, in the one read that also reads the user (awaited on the event loop:
    ``Database.read``).

    Refused as the guard refuses, so the answer is RFC 6750's: 403 ``insufficient_scope``
    without ``openid``; 401 ``invalid_token`` for a revoked token (``revoked``), and for a
    client's own token or a user no longer active (``not_a_user``).
    """
    if "openid" not in principal.scopes:
        raise InsufficientScope(["openid"])
    claims = principal.claims
    jti = claims.get("jti")
    row = (
        await database.read(
            _USER,
            {
                "sub": principal.sub,
                "jti": jti if type(jti) is str else "",
                "tenant": principal.tenant or "",
            },
        )
        if len(principal.sub) <= UUID_LENGTH
        else None
    )
    if row is not None and revoked_by(claims, listed=row.listed, not_before=row.not_before):
        raise TokenRevoked()
    moment = int(time.time()) if now is None else now
    if (
        row is None
        or row.tenant_id != principal.tenant
        or status_at(row.status, row.locked_until, moment) != "active"
    ):
        raise TokenRefused("not_a_user")
    values: dict[str, Any] = {
        "preferred_username": row.username,
        "updated_at": row.updated_at,
        "email": row.email,
        # Tessera does not verify addresses: an RP must not take one as proof of ownership.
        "email_verified": False if row.email is not None else None,
    }
    answer: dict[str, Any] = {"sub": principal.sub}
    for claim in claims_of_scopes(principal.scopes):
        if values[claim] is not None:
            answer[claim] = values[claim]
    return answer
