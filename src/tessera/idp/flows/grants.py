"""The token endpoint's grants (RFC 6749): client_credentials, authorization_code (with PKCE),
refresh_token, and password (first-party clients only; RFC 9700 discourages it elsewhere). Each
returns the JSON answer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ..errors import OAuthError, invalid_grant, invalid_request
from ..provider import Provider
from ..services.audit import Context, record, record_alone
from ..services.clients import is_confidential, split_scopes
from ..services.id_tokens import SignIn
from ..services.rbac import access_of, permitted_scope
from ..services.refresh import Refused
from ..store import prepared
from ..store.database import Transaction
from ..store.models import Client, User
from .client_auth import client_from_request
from .code_grant import redeem_code, redeem_on_the_loop, user_scope
from .mfa_challenge import MfaRequired, pass_challenge, second_factor_due
from .sign_in import check_password
from .user_tokens import audience_for, bearer_answer, user_tokens

MFA_OTP = "urn:tessera:params:oauth:grant-type:mfa-otp"  # the code after an mfa_required
SUPPORTED = ("client_credentials", "authorization_code", "refresh_token", "password", MFA_OTP)


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """One token request, as every grant reads it: who asks, with what, and when."""

    provider: Provider
    session: Session
    client: Client
    form: Mapping[str, str]
    context: Context
    now: int


def grant_scope(requested: str | None, allowed: str, default: str) -> tuple[str, ...]:
    """requested ∩ allowed, in request order; nothing requested means the defaults.

    >>> grant_scope("a c x", "a b c", "a")
    ('a', 'c')
    >>> grant_scope(None, "a b", "b")
    ('b',)
    """
    allowed_set = set(split_scopes(allowed))
    if requested is None or not requested.strip():
        return split_scopes(default)
    granted = tuple(scope for scope in split_scopes(requested) if scope in allowed_set)
    if not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes is allowed")
    return granted


def token_response(
    provider: Provider,
    form: Mapping[str, str],
    basic: tuple[str, str] | None,
    context: Context,
    *,
    now: int | None = None,
    transaction: Transaction | None = None,
) -> dict[str, Any]:
    """Run the grant named in ``form`` and return the RFC 6749 §5.1 answer.

    ``now`` (default: the clock) is the one moment of the request: the tokens' ``iat``, the
    second factor's time step, a refresh token's expiry are all judged at it. ``transaction``
    (default: ``Database.session``) begins the grant's transaction.
    """
    moment = int(time.time()) if now is None else now
    grant_type = form.get("grant_type")
    if not grant_type:
        raise invalid_request("grant_type is required")
    if grant_type not in SUPPORTED:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    refused: Refused | MfaRequired | None = None
    # Authenticated before the grant's transaction: a spent assertion stays spent.
    client = client_from_request(provider, form, basic, now=moment)
    with (transaction or provider.database.session)() as session:
        _allowed(client, grant_type)
        asked = GrantRequest(provider, session, client, form, context, moment)
        if grant_type == "client_credentials":
            answer, audited = client_credentials(provider, client, form, moment)
            record(session, "token.issued", context=context, **audited)
        else:
            grant = {
                "authorization_code": _authorization_code,
                "password": _password,
                "refresh_token": _refresh,
                MFA_OTP: _mfa_otp,
            }
            result = grant[grant_type](asked)
            if isinstance(result, Refused | MfaRequired):
                refused = result
                answer = {}
            else:
                answer = result
    if isinstance(refused, MfaRequired):  # after commit: the password step is audited
        raise refused
    if refused is not None:  # raised after commit: a reuse revocation or failed login is kept
        raise invalid_grant(refused.reason)
    return answer


async def client_credentials_on_the_loop(
    provider: Provider,
    client: Client,
    form: Mapping[str, str],
    context: Context,
    *,
    now: int | None = None,
) -> dict[str, Any]:
    """:func:`token_response` for a client_credentials grant of an authenticated ``client``
    (``client_on_the_loop``), made on the event loop: the grant's only write, its audit row,
    is a transaction of its own (``record_alone``)."""
    _allowed(client, "client_credentials")
    answer, audited = client_credentials(
        provider, client, form, int(time.time()) if now is None else now
    )
    await record_alone(provider.database, "token.issued", context=context, **audited)
    return answer


async def code_grant_on_the_loop(
    provider: Provider,
    client: Client,
    form: Mapping[str, str],
    context: Context,
    *,
    now: int | None = None,
) -> dict[str, Any] | None:
    """:func:`token_response` for an authorization_code grant of an authenticated ``client``
    (``client_on_the_loop``), made on the event loop (``code_grant.redeem_on_the_loop``);
    ``None`` when the code is for :func:`token_response` to refuse."""
    _allowed(client, "authorization_code")
    moment = int(time.time()) if now is None else now
    return await redeem_on_the_loop(provider, client, form, context, moment)


def client_credentials(
    provider: Provider, client: Client, form: Mapping[str, str], now: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The client_credentials grant (RFC 6749 §4.4) of a confidential client: the answer, and
    the fields of its ``token.issued`` audit row (for the caller to write)."""
    if not is_confidential(client):
        raise OAuthError("unauthorized_client", "a public client has no credentials")
    scope = grant_scope(form.get("scope"), client.allowed_scopes, client.default_scopes)
    audience = audience_for(client, form.get("resource"))
    issued = provider.issuer.issue(
        tenant_id=client.tenant_id,
        subject=client.id,
        client_id=client.id,
        scope=scope,
        audience=audience,
        now=now,
    )
    audited = {
        "tenant_id": client.tenant_id,
        "subject": client.id,
        "client_id": client.id,
        "details": {
            "grant": "client_credentials",
            "jti": issued.claims["jti"],
            "scope": issued.claims["scope"],
        },
    }
    return bearer_answer(issued.token, issued.expires_in, scope), audited


def _allowed(client: Client, grant_type: str) -> None:
    """Refuse a grant the client was not registered for (the second factor finishes a
    password login: it needs the password grant)."""
    needed = "password" if grant_type == MFA_OTP else grant_type
    if needed not in client.grant_types.split():
        raise OAuthError("unauthorized_client", "grant type not allowed for this client")


def _authorization_code(asked: GrantRequest) -> dict[str, Any] | Refused:
    code = asked.form.get("code")
    if not code:
        raise invalid_request("code is required")
    form = asked.form
    return redeem_code(
        asked.provider,
        asked.session,
        asked.client,
        code,
        form.get("redirect_uri"),
        form.get("code_verifier"),
        asked.context,
        asked.now,
    )


def _password(asked: GrantRequest) -> dict[str, Any] | Refused | MfaRequired:
    if not asked.client.first_party:
        raise OAuthError("unauthorized_client", "the password grant is for first-party clients")
    form = asked.form
    username, password = form.get("username"), form.get("password")
    if not username or not password:
        raise invalid_request("username and password are required")
    return password_login(
        asked.provider,
        asked.session,
        asked.client,
        username,
        password,
        form.get("scope"),
        form.get("resource"),
        asked.context,
        via="password",
        now=asked.now,
    )


def password_login(
    provider: Provider,
    session: Session,
    client: Client,
    username: str,
    password: str,
    requested_scope: str | None,
    resource: str | None,
    context: Context,
    *,
    via: str,
    now: int | None = None,
) -> dict[str, Any] | Refused | MfaRequired:
    """Check a user's password (:func:`~tessera.idp.flows.sign_in.check_password`) and log
    them in, or refuse — the failure audited in the same transaction, which the caller commits
    before refusing. A user with a second factor (or who must enrol one) gets
    :class:`MfaRequired` instead of tokens."""
    user = check_password(provider, session, client, username, password, context, via=via)
    if isinstance(user, Refused):
        return user
    challenge = second_factor_due(
        provider, session, client, user, requested_scope, resource, context, via=via, now=now
    )
    if challenge is not None:
        provider.lockout.settle(session, client.tenant_id, username, context.ip)
        return challenge
    return login(
        provider, session, client, user, requested_scope, resource, context, amr=("pwd",), now=now
    )


def _mfa_otp(asked: GrantRequest) -> dict[str, Any] | Refused:
    if not asked.client.first_party:
        raise OAuthError("unauthorized_client", "the password grant is for first-party clients")
    mfa_token = asked.form.get("mfa_token")
    if not mfa_token:
        raise invalid_request("mfa_token is required")
    return mfa_login(
        asked.provider,
        asked.session,
        asked.client,
        mfa_token,
        asked.form.get("otp"),
        asked.form.get("recovery_code"),
        asked.context,
        now=asked.now,
    )


def mfa_login(
    provider: Provider,
    session: Session,
    client: Client,
    mfa_token: str,
    otp: str | None,
    recovery_code: str | None,
    context: Context,
    *,
    now: int | None = None,
) -> dict[str, Any] | Refused:
    """The second step of a password login: the code (or a recovery code, or the first code
    of an enrolment) against the ``mfa_token``; tokens with ``amr`` pwd+otp and the password's
    ``auth_time`` (plus the new recovery codes when an enrolment was confirmed)."""
    passed = pass_challenge(
        provider,
        session,
        client,
        mfa_token,
        otp=otp,
        recovery_code=recovery_code,
        context=context,
        now=now,
    )
    if isinstance(passed, Refused):
        return passed
    asked = passed.challenge
    answer = login(
        provider,
        session,
        client,
        passed.user,
        asked.scope,
        asked.resource,
        context,
        amr=("pwd", "otp"),
        auth_time=asked.auth_time,
        now=now,
    )
    if passed.recovery_codes is not None:
        answer["recovery_codes"] = passed.recovery_codes
    return answer


def login(
    provider: Provider,
    session: Session,
    client: Client,
    user: User,
    requested_scope: str | None,
    resource: str | None,
    context: Context,
    *,
    amr: tuple[str, ...],
    auth_time: int | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Tokens for a user who just authenticated (at ``auth_time``, by default now): an access
    token and a new refresh family.

    The scope is least privilege: what was asked (or the client's defaults) ∩ what the client
    allows ∩ what the user's roles permit.
    """
    provider.lockout.succeeded(session, user.tenant_id, user.username, context.ip)
    session.commit()  # every factor was right: that stands, whatever befalls the tokens
    now = int(time.time()) if now is None else now
    access = access_of(session, user.id)
    asked = grant_scope(requested_scope, client.allowed_scopes, client.default_scopes)
    scope = permitted_scope(asked, access.permissions)
    if requested_scope and requested_scope.strip() and not scope:
        raise OAuthError("invalid_scope", "none of the requested scopes is allowed")
    minted = user_tokens(
        provider,
        client,
        user,
        access,
        scope=scope,
        audience=audience_for(client, resource),
        amr=amr,
        auth_time=now if auth_time is None else auth_time,
        now=now,
        refresh=True,
    )
    prepared.run_all(session, minted.writes)
    record(
        session,
        "login.succeeded",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        client_id=client.id,
        details={"jti": minted.jti, "family": minted.family_id},
    )
    return minted.answer


def _refresh(asked: GrantRequest) -> dict[str, Any] | Refused:
    token = asked.form.get("refresh_token")
    if not token:
        raise invalid_request("refresh_token is required")
    scope = asked.form.get("scope")
    return refresh_with(
        asked.provider, asked.session, asked.client, token, scope, asked.context, now=asked.now
    )


def refresh_with(
    provider: Provider,
    session: Session,
    client: Client,
    token: str,
    requested_scope: str | None,
    context: Context,
    *,
    now: int | None = None,
) -> dict[str, Any] | Refused:
    """Rotate a refresh token and mint a new access token (scope may only narrow)."""
    now = int(time.time()) if now is None else now
    result = provider.refresh.rotate(session, token, client_id=client.id, now=now, context=context)
    if isinstance(result, Refused):
        if not result.audited:  # one row per event: a reuse wrote its own
            record(
                session,
                "token.refresh",
                tenant_id=client.tenant_id,
                outcome="failure",
                context=context,
                client_id=client.id,
                details={"reason": result.reason},
            )
        return result
    family = result.family
    scope = grant_scope(requested_scope, family.scope, family.scope)
    extra: dict[str, Any] = {"auth_time": family.auth_time}
    if family.amr:
        extra["amr"] = family.amr.split()
    if family.user_id is not None:
        if not result.user_active:
            provider.refresh.revoke_family(session, family, "user-inactive", now)
            return Refused("the user is no longer active", family)
        # Roles and permissions are read again (with the family): a change reaches the token at
        # its next refresh.
        scope = user_scope(scope, result.access.permissions)
        extra["roles"] = list(result.access.roles)
    issued = provider.issuer.issue(
        tenant_id=family.tenant_id,
        subject=family.subject,
        client_id=client.id,
        scope=scope,
        audience=family.audience,
        extra=extra,
        now=now,
    )
    record(
        session,
        "token.refreshed",
        tenant_id=family.tenant_id,
        context=context,
        subject=family.subject,
        client_id=client.id,
        details={"jti": issued.claims["jti"], "family": family.id},
    )
    answer = bearer_answer(issued.token, issued.expires_in, scope)
    answer["refresh_token"] = result.token
    if "openid" in scope and family.user_id is not None:
        # OpenID Connect Core §12.2: a new ID token, of the same sign-in (no nonce this time).
        sign_in = SignIn(family.user_id, family.auth_time, tuple(family.amr.split()))
        answer["id_token"] = provider.id_tokens.issue(
            sign_in,
            client_id=client.id,
            alg=client.id_token_signed_response_alg,
            access_token=issued.token,
            now=now,
            session=session,
        )
    return answer
