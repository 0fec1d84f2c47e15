"""UserInfo (OpenID Connect Core §5.3): what an access token with the ``openid`` scope may learn
of its user — ``sub`` always, and the claims of each granted scope (§5.4): ``profile`` gives
``preferred_username`` and ``updated_at``; ``email`` gives ``email`` and ``email_verified``.
A claim the provider does not hold (a user without an email) is left out, never null.

>>> claims_of_scopes(("openid", "email"))
('email', 'email_verified')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from tessera.guard import InsufficientScope, Principal, TokenRefused

from ..services.accounts import effective_status
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


def userinfo(session: Session, principal: Principal) -> dict[str, Any]:
    """The UserInfo answer for the verified access token of ``principal``.

    Refused as the guard refuses, so the answer is RFC 6750's: 403 ``insufficient_scope``
    without ``openid``; 401 ``invalid_token`` (``not_a_user``) for a client's own token or a
    user no longer active.
    """
    if "openid" not in principal.scopes:
        raise InsufficientScope(["openid"])
    user = session.get(User, principal.sub) if len(principal.sub) <= UUID_LENGTH else None
    if user is None or user.tenant_id != principal.tenant or effective_status(user) != "active":
        raise TokenRefused("not_a_user")
    values: dict[str, Any] = {
        "preferred_username": user.username,
        "updated_at": user.updated_at,
        "email": user.email,
        # Tessera does not verify addresses: an RP must not take one as proof of ownership.
        "email_verified": False if user.email is not None else None,
    }
    answer: dict[str, Any] = {"sub": user.id}
    for claim in claims_of_scopes(principal.scopes):
        if values[claim] is not None:
            answer[claim] = values[claim]
    return answer
