"""RFC 7662 introspection: what is known of a token; ``active`` false if anything is off.

An access token is answered from its signature and claims, then one prepared read — whether
its ``jti`` is revoked, and its subject's not-before — outside any transaction: introspection
is a resource server's hot path. A refresh token is looked up in its family.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from tessera import jose

from ..services.refresh import RefreshTokens
from ..services.revocation import revocation_columns, revoked_by
from ..services.tokens import TokenIssuer
from ..store.database import Database
from ..store.models import Client

INACTIVE: dict[str, Any] = {"active": False}
_REVOCATION = select(*revocation_columns())


def introspect(
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
            _access(database, token, caller, issuer, moment)
            if kind == "access_token"
            else _refresh(database, token, caller, refresh, moment)
        )
        if answer is not None:
            return answer
    return dict(INACTIVE)


def _access(
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
    row = database.first(
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


def _refresh(
    database: Database, token: str, caller: Client, refresh: RefreshTokens, now: float
) -> dict[str, Any] | None:
    with database.session(readonly=True) as session:
        found = refresh.find(session, token)
        if found is None:
            return None
        row, family = found
        if (
            family.tenant_id != caller.tenant_id
            or family.revoked_at is not None
            or row.spent_at is not None
            or now >= row.expires_at
            or now >= family.expires_at
        ):
            return dict(INACTIVE)
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": family.client_id,
            "sub": family.subject,
            "scope": family.scope,
            "aud": family.audience,
            "exp": min(row.expires_at, family.expires_at),
            "iat": row.created_at,
            "tenant": family.tenant_id,
        }
