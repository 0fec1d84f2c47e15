"""The tokens a signed-in user's client gets, whichever grant signed them in: an RFC 9068
access token that says how and when (``amr``, ``auth_time``) and with which roles, and — when
the grant gives one — a new refresh family carrying the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ClauseElement

from ..errors import OAuthError
from ..provider import Provider
from ..services.rbac import Access
from ..store.models import Client


class Someone(Protocol):
    """The user tokens are minted for: a ``User``, or a row read of one."""

    @property
    def id(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class UserTokens:
    """The RFC 6749 §5.1 answer so far, what a revocation would need of it, and the statements
    that write the refresh family (none without one), for the caller to run in its
    transaction (``prepared.run_all``) or with its other writes (``Database.write_all``)."""

    answer: dict[str, Any]
    access_token: str
    jti: str
    family_id: str | None
    writes: list[tuple[ClauseElement, dict[str, Any]]]


def audience_for(client: Client, resource: str | None) -> str:
    """RFC 8707 ``resource`` if the client may target it, else the client's default audience."""
    audiences = client.audience.split()
    if resource is None:
        return audiences[0]
    if resource not in audiences:
        raise OAuthError("invalid_target", "resource not allowed for this client")
    return resource


def bearer_answer(token: str, expires_in: int, scope: tuple[str, ...]) -> dict[str, Any]:
    """An RFC 6749 §5.1 answer for a bearer access token.

    >>> bearer_answer("t", 900, ("read",))["token_type"]
    'Bearer'
    """
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": " ".join(scope),
    }


def user_tokens(
    provider: Provider,
    client: Client,
    user: Someone,
    access: Access,
    *,
    scope: tuple[str, ...],
    audience: str,
    amr: tuple[str, ...],
    auth_time: int,
    now: int,
    refresh: bool,
    session_id: str | None = None,
) -> UserTokens:
    """Mint the access token for ``user`` at ``client`` and, if ``refresh``, start a family
    (of the provider session ``session_id``, when the sign-in was at the provider's pages)."""
    issued = provider.issuer.issue(
        tenant_id=user.tenant_id,
        subject=user.id,
        client_id=client.id,
        scope=scope,
        audience=audience,
        extra={"amr": list(amr), "auth_time": auth_time, "roles": list(access.roles)},
        now=now,
    )
    answer = bearer_answer(issued.token, issued.expires_in, scope)
    family_id: str | None = None
    writes: list[tuple[ClauseElement, dict[str, Any]]] = []
    if refresh:
        family_id, answer["refresh_token"], writes = provider.refresh.starting(
            tenant_id=user.tenant_id,
            subject=user.id,
            user_id=user.id,
            client_id=client.id,
            scope=" ".join(scope),
            audience=audience,
            now=now,
            amr=" ".join(amr),
            auth_time=auth_time,
            session_id=session_id,
        )
    return UserTokens(answer, issued.token, issued.claims["jti"], family_id, writes)
