"""RFC 7009 revocation and the browser session's logout: what a client may take back."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from tessera import jose

from ..errors import OAuthError
from ..provider import Provider
from ..services import consents
from ..services.accounts import effective_status, set_status
from ..services.audit import Context, record
from ..store.models import Client, User
from .logout import backchannel_deliveries, notify_after_commit


def revoke(
    provider: Provider,
    session: Session,
    client: Client,
    token: str,
    *,
    hint: str | None,
    context: Context,
) -> None:
    """Revoke an access token (blocklist until ``exp``) or a refresh token (its family).

    Unknown, expired or malformed tokens are accepted silently (RFC 7009 §2.2); a token issued
    to another client is refused.
    """
    now = int(time.time())
    kinds = ("refresh", "access") if hint == "refresh_token" else ("access", "refresh")
    for kind in kinds:
        if kind == "refresh":
            found = provider.refresh.find(session, token)
            if found is None:
                continue
            _, family = found
            if family.client_id != client.id:
                raise OAuthError("unauthorized_client", "the token belongs to another client")
            provider.refresh.revoke_family(session, family, "revoked", now)
            record(
                session,
                "token.revoked",
                tenant_id=family.tenant_id,
                context=context,
                subject=family.subject,
                client_id=client.id,
                details={"kind": "refresh", "family": family.id},
            )
            return
        if token.count(".") != 2:
            continue
        try:
            claims = provider.issuer.verifier(now).verify(token, now=now)
        except jose.InvalidToken:
            continue
        if claims["client_id"] != client.id:
            raise OAuthError("unauthorized_client", "the token belongs to another client")
        provider.revocations.revoke_access_token(session, claims)
        record(
            session,
            "token.revoked",
            tenant_id=claims["tenant"],
            context=context,
            subject=claims["sub"],
            client_id=client.id,
            details={"kind": "access", "jti": claims["jti"]},
        )
        return


def log_out_everywhere(
    provider: Provider, session: Session, tenant_id: str, subject: str, context: Context
) -> int:
    """Revoke every refresh family of ``subject``, refuse its access tokens issued until now,
    and end its browser sessions at the provider (single sign-on signs in no more)."""
    families = _end_sessions(provider, session, tenant_id, subject)
    record(
        session,
        "logout.all",
        tenant_id=tenant_id,
        context=context,
        subject=subject,
        details={"families": families},
    )
    return families


def _end_sessions(provider: Provider, session: Session, tenant_id: str, subject: str) -> int:
    """End everything ``subject`` is signed in with: refresh families, access tokens, and (a
    user's) browser sessions at the provider, whose clients are told by back-channel. Returns
    how many families were revoked."""
    now = int(time.time())
    families = provider.refresh.revoke_subject(session, tenant_id, subject, now)
    provider.revocations.log_out_everywhere(session, tenant_id, subject, now)
    ended = provider.sessions.end_all(session, subject, now=now)
    # The clients of those sessions hear of it by back-channel, once this commits.
    notify_after_commit(provider, session, backchannel_deliveries(provider, session, ended, now))
    return families


def disable_user(provider: Provider, session: Session, user: User, context: Context) -> bool:
    """Disable a user and end every session they have: their refresh families are revoked and
    their access tokens refused from now on — one ``user.disabled`` audit row, which counts the
    sessions ended. Returns whether the user was not disabled yet."""
    if effective_status(user) == "disabled":
        return False
    families = _end_sessions(provider, session, user.tenant_id, user.id)
    return set_status(session, user, "disabled", context=context, note={"sessions": families})


def withdraw_consent(
    provider: Provider, session: Session, user: User, client_id: str, context: Context
) -> bool:
    """Withdraw what ``user`` allowed ``client_id``: the consent (the next sign-in asks again)
    and the refresh tokens the client holds for the user. ``False`` if there was no consent."""
    if not consents.forget(session, user.id, client_id):
        return False
    now = int(time.time())
    families = provider.refresh.revoke_subject(
        session, user.tenant_id, user.id, now, client_id=client_id, reason="consent-withdrawn"
    )
    record(
        session,
        "consent.withdrawn",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        client_id=client_id,
        details={"families": families},
        at=now,
    )
    return True
