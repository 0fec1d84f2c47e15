"""RFC 7662 introspection: what is known of a token; ``active`` false if anything is off.

An access token is answered from its signature and claims, then one prepared read — whether
its ``jti`` is revoked, and its subject's not-before; a refresh token by one prepared read of
it and its family. Both reads are outside any transaction and awaited on the event loop
(``Database.read``): introspection is a resource server's hot path.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import bindparam, select

from tessera import jose

from ..services.refresh import MAX_REFRESH_TOKEN_LENGTH, RefreshTokens
from ..services.revocation import revocation_columns, revoked_by
from ..services.tokens import TokenIssuer
from ..store.database import Database
from ..store.models import Client, RefreshFamily, RefreshToken

INACTIVE: dict[str, Any] = {"active": False}
_REVOCATION = select(*revocation_columns())
_REFRESH = (
    select(
        RefreshToken.spent_at,
        RefreshToken.expires_at,
        RefreshToken.created_at,
        RefreshFamily.tenant_id,
        RefreshFamily.client_id,
        RefreshFamily.subject,
        RefreshFamily.scope,
        RefreshFamily.audience,
        RefreshFamily.revoked_at,
        RefreshFamily.expires_at.label("family_expires_at"),
    )
    .join(RefreshFamily, RefreshFamily.id == RefreshToken.family_id)
    .where(RefreshToken.token_hash == bindparam("digest"))
)


async def introspect(
    database: Database,
    token: str,
    *,
    caller: Client,
    issuer: TokenIssuer,
    refresh: RefreshTokens,
    hint: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Describe ``token`` to ``caller``; tokens of another tenant are reported inactive."""
    moment = time.time() if now is None else now
    order = (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else ("access_token", "refresh_token")
    )
    for kind in order:
        answer = (
            await _access(database, token, caller, issuer, moment)
            if kind == "access_token"
            else await _refresh(database, token, caller, refresh, moment)
        )
        if answer is not None:
            return answer
    return dict(INACTIVE)


async def _access(
    database: Database, token: str, caller: Client, issuer: TokenIssuer, now: float
) -> dict[str, Any] | None:
    if token.count(".") != 2:
        return None
    try:
        claims = issuer.verifier(now).verify(token, now=now)
    except jose.InvalidToken:
        return dict(INACTIVE)
    if claims["tenant"] != caller.tenant_id:
        return dict(INACTIVE)
    jti, subject = claims["jti"], claims["sub"]
    row = await database.read(
        _REVOCATION,
        {
            "jti": jti if type(jti) is str else "",
            "tenant": claims["tenant"],
            "sub": subject if type(subject) is str else "",
        },
    )
    if row is None or revoked_by(claims, listed=row.listed, not_before=row.not_before):
        return dict(INACTIVE)
    return {"active": True, "token_type": "Bearer", **claims}


async def _refresh(
    database: Database, token: str, caller: Client, refresh: RefreshTokens, now: float
) -> dict[str, Any] | None:
    if len(token) > MAX_REFRESH_TOKEN_LENGTH:
        return None
    row = await database.read(_REFRESH, {"digest": refresh.digest(token)})
    if row is None:
        return None
    if (
        row.tenant_id != caller.tenant_id
        or row.revoked_at is not None
        or row.spent_at is not None
        or now >= row.expires_at
        or now >= row.family_expires_at
    ):
        return dict(INACTIVE)
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": row.client_id,
        "sub": row.subject,
        "scope": row.scope,
        "aud": row.audience,
        "exp": min(row.expires_at, row.family_expires_at),
        "iat": row.created_at,
        "tenant": row.tenant_id,
    }
