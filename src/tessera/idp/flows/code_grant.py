"""The ``authorization_code`` grant (RFC 6749 §4.1.3 with PKCE, OpenID Connect Core §3.1.3):
a code redeemed once, by the client it was issued to, with the redirect URI and PKCE verifier of
its request, for an access token, an ID token (``openid`` scope) and a refresh token (the
``offline_access`` scope, or a client allowed the refresh grant).

A code presented again revokes what it gave (RFC 6749 §4.1.2): the refresh family and the
access token. The refusal is returned, not raised, so that revocation commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..provider import Provider
from ..services.accounts import status_at
from ..services.audit import Context, record
from ..services.authorization_codes import CodeRefused
from ..services.id_tokens import OPENID_SCOPES, SignIn
from ..services.rbac import Access, access_columns, access_from, permitted_scope
from ..services.refresh import Refused
from ..store.models import AuthorizationCode, Client, RefreshFamily, User
from .user_tokens import Someone, audience_for, user_tokens

# The user a code was issued for, and their roles now: one prepared read, outside the
# redemption's transaction (it is on every code redemption's path).
_ROLE_NAMES, _PERMISSIONS = access_columns(User.id)
_USER = select(
    User.id,
    User.tenant_id,
    User.status,
    User.locked_until,
    _ROLE_NAMES.label("role_names"),
    _PERMISSIONS.label("permissions"),
).where(User.id == bindparam("id"))


def user_scope(asked: tuple[str, ...], permissions: frozenset[str]) -> tuple[str, ...]:
    """What a user's token may carry of ``asked``: the OpenID scopes, and the API scopes the
    user's roles permit now (a permission lost since the grant is dropped).

    >>> user_scope(("openid", "read", "write"), frozenset({"read"}))
    ('openid', 'read')
    """
    openid = tuple(scope for scope in asked if scope in OPENID_SCOPES)
    api = tuple(scope for scope in asked if scope not in OPENID_SCOPES)
    return openid + permitted_scope(api, permissions)


def redeem_code(
    provider: Provider,
    session: Session,
    client: Client,
    code: str,
    redirect_uri: str | None,
    verifier: str | None,
    context: Context,
    now: int,
) -> dict[str, Any] | Refused:
    """The token answer for ``code``, or why not (a replay revoked what the code gave)."""
    redeemed = provider.codes.redeem(
        session, code, client_id=client.id, redirect_uri=redirect_uri, verifier=verifier, now=now
    )
    if isinstance(redeemed, CodeRefused):
        if redeemed.replayed is not None:
            _revoke_what_it_gave(provider, session, client, redeemed.replayed, context, now)
            return Refused(redeemed.reason, audited=True)
        record(
            session,
            "code.refused",
            tenant_id=client.tenant_id,
            outcome="failure",
            context=context,
            client_id=client.id,
            details={"reason": redeemed.reason},
        )
        return Refused(redeemed.reason)
    user = provider.database.first(_USER, {"id": redeemed.user_id})
    if user is None or status_at(user.status, user.locked_until, now) != "active":
        return Refused("the user is no longer active")
    access = access_from(user.role_names, user.permissions)
    return _tokens(provider, session, client, user, access, redeemed, context, now)


def _tokens(
    provider: Provider,
    session: Session,
    client: Client,
    user: Someone,
    access: Access,
    code: AuthorizationCode,
    context: Context,
    now: int,
) -> dict[str, Any]:
    scope = user_scope(tuple(code.scope.split()), access.permissions)
    amr = tuple(code.amr.split())
    minted = user_tokens(
        provider,
        session,
        client,
        user,
        access,
        scope=scope,
        audience=audience_for(client, code.resource),
        amr=amr,
        auth_time=code.auth_time,
        now=now,
        refresh="offline_access" in scope or "refresh_token" in client.grant_types.split(),
        session_id=code.session_id,
    )
    answer = minted.answer
    if "openid" in scope:
        sign_in = SignIn(user.id, code.auth_time, amr, code.acr, code.session_id)
        answer["id_token"] = provider.id_tokens.issue(
            sign_in,
            client_id=client.id,
            alg=client.id_token_signed_response_alg,
            nonce=code.nonce,
            access_token=minted.access_token,
            now=now,
            session=session,
        )
    provider.codes.issued(session, code, family_id=minted.family_id, jti=minted.jti)
    record(
        session,
        "token.issued",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        client_id=client.id,
        details={
            "grant": "authorization_code",
            "jti": minted.jti,
            "family": minted.family_id,
            "scope": " ".join(scope),
        },
    )
    return answer


def _revoke_what_it_gave(
    provider: Provider,
    session: Session,
    client: Client,
    code: AuthorizationCode,
    context: Context,
    now: int,
) -> None:
    revoked: dict[str, Any] = {"grant": "authorization_code"}
    if code.family_id is not None:
        family = session.get(RefreshFamily, code.family_id)
        if family is not None and family.revoked_at is None:
            provider.refresh.revoke_family(session, family, "code-replayed", now)
            revoked["family"] = family.id
    if code.access_jti is not None:
        provider.revocations.revoke_access_token(
            session,
            {
                "jti": code.access_jti,
                "exp": (code.redeemed_at or now) + provider.settings.access_token_ttl,
                "tenant": code.tenant_id,
            },
        )
        revoked["jti"] = code.access_jti
    record(
        session,
        "code.replayed",
        tenant_id=client.tenant_id,
        outcome="failure",
        context=context,
        subject=code.user_id,
        client_id=client.id,
        details=revoked,
    )
