"""The second factor in use: the challenge a login answers with, its completion, and a
logged-in user's own enrolment, recovery codes and removal.

Every code checked here goes through the provider's lockout first (``check``), and counts as
a failure (``failed``, in the caller's transaction) or a success. A refused code is returned
as :class:`Refused` — its audit row and the failure count are written in the transaction the
caller commits before it answers with the error.

>>> from tessera.idp.errors import OAuthError
>>> isinstance(MfaRequired("mfa_required", "enter your code", "t"), OAuthError)
True
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tessera import jose

from ..errors import OAuthError, Throttled, invalid_grant, invalid_request
from ..provider import Provider
from ..store.models import Client, Tenant, User
from .accounts import effective_status
from .audit import Context, record
from .challenges import Challenge, Challenges, MfaRequired, Purpose
from .mfa import (
    Enrolment,
    confirm_enrolment,
    has_factor,
    recovery_codes_left,
    regenerate_recovery_codes,
    reset_mfa,
    start_enrolment,
    verify_second_factor,
)
from .refresh import Refused

__all__ = [  # MfaRequired is re-exported: what password_login may answer
    "MfaRequired",
    "Passed",
    "begin_enrolment",
    "challenges_of",
    "enrolment_challenge",
    "factor_status",
    "finish_enrolment",
    "guarded",
    "open_challenge",
    "pass_challenge",
    "remove_factor",
    "renew_recovery_codes",
    "second_factor_due",
    "user_of_access_token",
]

WRONG_CODE = "invalid code"
_challenges: weakref.WeakKeyDictionary[Provider, Challenges] = weakref.WeakKeyDictionary()


def challenges_of(provider: Provider) -> Challenges:
    """The provider's ``mfa_token`` issuer (made once per provider)."""
    found = _challenges.get(provider)
    if found is None:
        found = _challenges[provider] = Challenges(provider.master, provider.settings.issuer)
    return found


# ------------------------------------------------------------------ login: password, then code


def second_factor_due(
    provider: Provider,
    session: Session,
    client: Client,
    user: User,
    requested_scope: str | None,
    resource: str | None,
    context: Context,
    *,
    via: str,
    now: int | None = None,
) -> MfaRequired | None:
    """After a right password: ``None`` when it is enough, else the 403 to answer with — a
    ``verify`` challenge when the user has a factor, an ``enrol`` one when the tenant requires
    a factor the user lacks (audited ``mfa.challenged`` in the caller's transaction)."""
    purpose: Purpose
    if has_factor(user):
        purpose = "verify"
    else:
        tenant = session.get(Tenant, user.tenant_id)
        if tenant is None or tenant.mfa_policy != "required":
            return None
        purpose = "enrol"
    moment = int(time.time()) if now is None else now
    token = challenges_of(provider).issue(
        tenant_id=user.tenant_id,
        user_id=user.id,
        client_id=client.id,
        purpose=purpose,
        scope=requested_scope,
        resource=resource,
        via=via,
        now=moment,
    )
    record(
        session,
        "mfa.challenged",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        client_id=client.id,
        details={"purpose": purpose, "grant": via},
        at=moment,
    )
    if purpose == "verify":
        return MfaRequired("mfa_required", "enter a code from your authenticator", token)
    return MfaRequired(
        "mfa_enrollment_required", "this account must enrol a second factor first", token
    )


@dataclass(frozen=True, slots=True)
class Passed:
    """A completed second step: who logged in, what they asked for at the password step, and
    — when the step confirmed an enrolment — the new recovery codes (shown once)."""

    user: User
    challenge: Challenge
    recovery_codes: list[str] | None = None


def open_challenge(
    provider: Provider,
    session: Session,
    mfa_token: str,
    *,
    client: Client | None = None,
    purpose: Purpose | None = None,
    now: int | None = None,
) -> tuple[Challenge, User]:
    """Verify an ``mfa_token`` and load its user (still active); with ``client``, the token
    must have been issued to that client, with ``purpose``, for that purpose."""
    challenge = challenges_of(provider).open(mfa_token, now=now)
    if client is not None and (
        challenge.client_id != client.id or challenge.tenant_id != client.tenant_id
    ):
        raise invalid_grant("mfa_token was issued to another client")
    if purpose is not None and challenge.purpose != purpose:
        raise invalid_grant(
            f"this mfa_token is not for {'enrolment' if purpose == 'enrol' else 'verification'}"
        )
    user = session.get(User, challenge.user_id)
    if user is None or user.tenant_id != challenge.tenant_id:
        raise invalid_grant("mfa_token invalid or expired")
    status = effective_status(user, now)
    if status == "locked":  # the same answer as a locked account's password login
        ends = user.locked_until
        moment = int(time.time()) if now is None else now
        raise Throttled(provider.settings.lockout_duration if ends is None else ends - moment)
    if status != "active":
        raise invalid_grant("mfa_token invalid or expired")
    return challenge, user


def pass_challenge(
    provider: Provider,
    session: Session,
    client: Client,
    mfa_token: str,
    *,
    otp: str | None,
    recovery_code: str | None,
    context: Context,
    now: int | None = None,
) -> Passed | Refused:
    """The second step of a login: a code (or recovery code) against the ``mfa_token`` the
    password step gave this client. An ``enrol`` token confirms the pending enrolment."""
    challenge, user = open_challenge(provider, session, mfa_token, client=client, now=now)
    if challenge.purpose == "verify":
        if (otp is None) == (recovery_code is None):
            raise invalid_request("send either otp or recovery_code")
        if not has_factor(user):
            raise invalid_grant("mfa_token invalid or expired")
        passed = guarded(
            provider,
            session,
            user,
            context,
            lambda: verify_second_factor(
                session,
                provider.master,
                user,
                otp=otp,
                recovery_code=recovery_code,
                context=context,
                client_id=client.id,
                now=now,
            ),
            now,
        )
        return Passed(user, challenge) if passed else Refused(WRONG_CODE)
    if otp is None or recovery_code is not None:
        raise invalid_request("confirm the enrolment with otp (a code from the new factor)")
    codes: list[str] | None = None

    def confirm() -> bool:
        nonlocal codes
        codes = confirm_enrolment(session, provider.master, user, otp, context=context, now=now)
        return codes is not None

    if not guarded(provider, session, user, context, confirm, now):
        return Refused(WRONG_CODE)
    return Passed(user, challenge, codes)


def guarded(
    provider: Provider,
    session: Session,
    user: User,
    context: Context,
    check: Callable[[], bool],
    now: int | None = None,
) -> bool:
    """Run ``check`` (a code's verification) under the lockout: refused while the account or
    address must wait (audited ``mfa.throttled``, committed before the 429), counted as a
    failure or a success."""
    try:
        provider.lockout.check(user.tenant_id, user.username, context.ip, now=now)
    except Throttled as refusal:
        record(
            session,
            "mfa.throttled",
            tenant_id=user.tenant_id,
            outcome="failure",
            context=context,
            subject=user.id,
            details={"cause": refusal.cause},
        )
        session.commit()
        raise
    if check():
        provider.lockout.succeeded(user.tenant_id, user.username, context.ip, now=now)
        return True
    provider.lockout.failed(
        session,
        tenant_id=user.tenant_id,
        username=user.username,
        ip=context.ip,
        user=user,
        context=context,
        now=now,
    )
    return False


# ------------------------------------------------------------------ self-service


def user_of_access_token(provider: Provider, session: Session, token: str) -> User:
    """The active user an access token of this provider speaks for (401 ``invalid_token``
    otherwise: bad, expired or revoked token, a client's own token, an inactive user)."""
    try:
        claims = provider.issuer.verifier().verify(token)
    except jose.JoseError:
        raise OAuthError("invalid_token", "access token invalid or expired", 401) from None
    if provider.revocations.is_revoked(session, claims):
        raise OAuthError("invalid_token", "access token revoked", 401)
    # The provider's verifier guarantees sub, tenant and client_id are strings.
    subject, tenant_id = claims["sub"], claims["tenant"]
    user = session.get(User, subject) if len(subject) <= 36 else None
    if user is None or user.tenant_id != tenant_id or effective_status(user) != "active":
        raise OAuthError("invalid_token", "the token does not belong to an active user", 401)
    # Only the provider's own apps manage a factor: a third-party app holding a user's token
    # must not enrol an authenticator of its choosing.
    client = session.get(Client, claims["client_id"])
    if client is None or not client.first_party or client.tenant_id != user.tenant_id:
        raise OAuthError("invalid_token", "the token was not issued to a first-party app", 401)
    return user


def enrolment_challenge(provider: Provider, mfa_token: str) -> Challenge:
    """An ``mfa_token`` that sends its user to enrol (``invalid_grant`` for any other)."""
    challenge = challenges_of(provider).open(mfa_token)
    if challenge.purpose != "enrol":
        raise invalid_grant("this mfa_token is not for enrolment")
    return challenge


def begin_enrolment(
    provider: Provider, session: Session, user: User, context: Context, now: int | None = None
) -> Enrolment:
    """A new pending TOTP factor for ``user``, labelled with their tenant's name."""
    tenant = session.get(Tenant, user.tenant_id)
    issuer_name = tenant.name if tenant is not None and tenant.name else user.tenant_id
    return start_enrolment(
        session, provider.master, user, issuer_name=issuer_name, context=context, now=now
    )


def finish_enrolment(
    provider: Provider,
    session: Session,
    user: User,
    code: str,
    context: Context,
    now: int | None = None,
) -> list[str] | Refused:
    """Confirm a logged-in user's pending enrolment; the recovery codes, or :class:`Refused`."""
    codes: list[str] | None = None

    def confirm() -> bool:
        nonlocal codes
        codes = confirm_enrolment(session, provider.master, user, code, context=context, now=now)
        return codes is not None

    if not guarded(provider, session, user, context, confirm, now) or codes is None:
        return Refused(WRONG_CODE)
    return codes


def renew_recovery_codes(
    provider: Provider,
    session: Session,
    user: User,
    otp: str,
    context: Context,
    now: int | None = None,
) -> list[str] | Refused:
    """Ten new recovery codes, after a current TOTP code; the old ones stop working."""
    if not has_factor(user):
        raise invalid_request("no second factor is enrolled")
    if not guarded(
        provider,
        session,
        user,
        context,
        _verifier(provider, session, user, otp, None, context, now),
        now,
    ):
        return Refused(WRONG_CODE)
    return regenerate_recovery_codes(session, provider.master, user, context=context, now=now)


def remove_factor(
    provider: Provider,
    session: Session,
    user: User,
    *,
    otp: str | None,
    recovery_code: str | None,
    context: Context,
    now: int | None = None,
) -> Refused | None:
    """Remove the user's factor after a current code (or a recovery code, for a lost device)."""
    if not has_factor(user):
        raise invalid_request("no second factor is enrolled")
    if (otp is None) == (recovery_code is None):
        raise invalid_request("send either otp or recovery_code")
    check = _verifier(provider, session, user, otp, recovery_code, context, now)
    if not guarded(provider, session, user, context, check, now):
        return Refused(WRONG_CODE)
    reset_mfa(session, user, context=context)
    return None


def factor_status(session: Session, user: User) -> dict[str, Any]:
    """What a user may see of their own factor: enabled since when, recovery codes left."""
    return {
        "totp": has_factor(user),
        "enabled_at": user.mfa_enabled_at,
        "pending": user.mfa_pending is not None,
        "recovery_codes_left": recovery_codes_left(session, user) if has_factor(user) else 0,
    }


def _verifier(
    provider: Provider,
    session: Session,
    user: User,
    otp: str | None,
    recovery_code: str | None,
    context: Context,
    now: int | None,
) -> Callable[[], bool]:
    return lambda: verify_second_factor(
        session,
        provider.master,
        user,
        otp=otp,
        recovery_code=recovery_code,
        context=context,
        now=now,
    )
