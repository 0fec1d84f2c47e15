"""The second factor at login: the challenge a right password answers with (an ``mfa_token``),
and the step that completes it with a code — or, for a tenant that requires a factor, with the
enrolment it asks for.

>>> from tessera.idp.errors import OAuthError
>>> isinstance(MfaRequired("mfa_required", "enter your code", "t"), OAuthError)
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..errors import Throttled, invalid_grant, invalid_request
from ..provider import Provider
from ..services.accounts import effective_status
from ..services.audit import Context, record
from ..services.challenges import Challenge, MfaRequired, Purpose
from ..services.mfa import confirm_enrolment, has_factor
from ..services.refresh import Refused
from ..store.models import Client, Tenant, User
from .mfa_codes import WRONG_CODE, code_check, guarded

__all__ = [  # MfaRequired is re-exported: what password_login may answer
    "MfaRequired",
    "Passed",
    "open_challenge",
    "pass_challenge",
    "second_factor_due",
]


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
    required: bool = False,
) -> MfaRequired | None:
    """After a right password: ``None`` when it is enough, else the 403 to answer with — a
    ``verify`` challenge when the user has a factor, an ``enrol`` one when the tenant (or,
    ``required``, the client) requires a factor the user lacks (audited ``mfa.challenged``
    in the caller's transaction)."""
    purpose: Purpose
    if has_factor(user):
        purpose = "verify"
    else:
        tenant = session.get(Tenant, user.tenant_id)
        if not required and (tenant is None or tenant.mfa_policy != "required"):
            return None
        purpose = "enrol"
    moment = int(time.time()) if now is None else now
    token = provider.challenges.issue(
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
    challenge = provider.challenges.open(mfa_token, now=now)
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
        check = code_check(
            provider, session, user, otp, recovery_code, context, now, client_id=client.id
        )
        passed = guarded(provider, session, user, context, check, now)
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
