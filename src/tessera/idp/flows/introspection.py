"""RFC 7662 introspection: what is known of a token; ``active`` false if anything is off."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from tessera import jose

from ..services.refresh import RefreshTokens
from ..services.revocation import Revocations
from ..services.tokens import TokenIssuer
from ..store.models import Client

INACTIVE: dict[str, Any] = {"active": False}


def introspect(
    session: Session,
    token: str,
    *,
    caller: Client,
    issuer: TokenIssuer,
    refresh: RefreshTokens,
    revocations: Revocations,
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
            _access(session, token, caller, issuer, revocations, moment)
            if kind == "access_token"
            else _refresh(session, token, caller, refresh, moment)
        )
        if answer is not None:
            return answer
    return dict(INACTIVE)


def _access(
    session: Session,
    token: str,
    caller: Client,
    issuer: TokenIssuer,
    revocations: Revocations,
    now: float,
) -> dict[str, Any] | None:
    if token.count(".") != 2:
        return None
    try:
        claims = issuer.verifier(now).verify(token, now=now)
    except jose.InvalidToken:
        return dict(INACTIVE)
    if claims["tenant"] != caller.tenant_id or revocations.is_revoked(session, claims):
        return dict(INACTIVE)
    return {"active": True, "token_type": "Bearer", **claims}


def _refresh(
    session: Session, token: str, caller: Client, refresh: RefreshTokens, now: float
) -> dict[str, Any] | None:
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
