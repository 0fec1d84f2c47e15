"""A person's own second factor, from their first-party app: enrol a TOTP factor (with their
access token, or the ``mfa_token`` of a login that requires one), renew recovery codes, remove
the factor, see its status. The access token is accepted by the provider's guard (as on every
route of its own that takes one); :func:`user_of` decides whose factor it may manage. Every code
goes through :func:`~.mfa_codes.guarded`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tessera.guard import Principal, TokenRefused

from ..errors import invalid_grant, invalid_request
from ..provider import Provider
from ..services.accounts import effective_status
from ..services.audit import Context
from ..services.challenges import Challenge
from ..services.mfa import (
    Enrolment,
    confirm_enrolment,
    has_factor,
    pending_enrolment,
    recovery_codes_left,
    regenerate_recovery_codes,
    reset_mfa,
    start_enrolment,
)
from ..services.refresh import Refused
from ..store.models import UUID_LENGTH, Client, Tenant, User
from .mfa_codes import WRONG_CODE, code_check, guarded


def user_of(session: Session, principal: Principal) -> User:
    """The active user a verified access token of this provider speaks for, when it was issued
    to one of the provider's own apps. Otherwise the token is refused as the guard refuses one
    (``TokenRefused``, 401 ``invalid_token``): a client's own token (``not_a_user``), an inactive
    user, or a third-party app — which must not enrol an authenticator of its choosing
    (``not_first_party``)."""
    user = session.get(User, principal.sub) if len(principal.sub) <= UUID_LENGTH else None
    if user is None or user.tenant_id != principal.tenant or effective_status(user) != "active":
        raise TokenRefused("not_a_user")
    client = session.get(Client, principal.client_id) if principal.client_id else None
    if client is None or not client.first_party or client.tenant_id != user.tenant_id:
        raise TokenRefused("not_first_party")
    return user


def enrolment_challenge(provider: Provider, mfa_token: str) -> Challenge:
    """An ``mfa_token`` that sends its user to enrol (``invalid_grant`` for any other)."""
    challenge = provider.challenges.open(mfa_token)
    if challenge.purpose != "enrol":
        raise invalid_grant("this mfa_token is not for enrolment")
    return challenge


def begin_enrolment(
    provider: Provider, session: Session, user: User, context: Context, now: int | None = None
) -> Enrolment:
    """A new pending TOTP factor for ``user``, labelled with their tenant's name."""
    return start_enrolment(
        session, provider.master, user, issuer_name=_label(session, user), context=context, now=now
    )


def enrolment_in_progress(provider: Provider, session: Session, user: User) -> Enrolment | None:
    """The pending factor :func:`begin_enrolment` made, to show again; ``None`` if none."""
    return pending_enrolment(provider.master, user, issuer_name=_label(session, user))


def _label(session: Session, user: User) -> str:
    tenant = session.get(Tenant, user.tenant_id)
    return tenant.name if tenant is not None and tenant.name else user.tenant_id


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
        code_check(provider, session, user, otp, None, context, now),
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
    check = code_check(provider, session, user, otp, recovery_code, context, now)
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
