"""Signing in at the provider's pages: the password, then the second factor when one is due,
then a new provider session — with the same lockout, no-enumeration, MFA and audit services as
the token endpoint's password grant (:func:`check_password` is shared by both).

Every sign-in starts a new session row and cookie: a session id planted in the browser before
the sign-in is never the one that is signed in (no fixation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from ..errors import OAuthError
from ..provider import Provider
from ..services.accounts import authenticate_user
from ..services.audit import Context, record
from ..services.browser_sessions import Started
from ..services.mfa import Enrolment
from ..services.refresh import Refused
from ..store.models import Client, User
from .authorization import MFA, Asked, AuthorizationError, Next, next_step
from .mfa_challenge import open_challenge, pass_challenge, second_factor_due
from .mfa_enrolment import begin_enrolment, enrolment_in_progress

VIA = "authorize"  # how audit rows of the pages name the way in


def check_password(
    provider: Provider,
    session: Session,
    client: Client,
    username: str,
    password: str,
    context: Context,
    *,
    via: str,
) -> User | Refused:
    """The user of ``client``'s tenant whose password this is, or :class:`Refused` — one
    answer for an unknown name and a wrong password, the failure audited and counted in the
    caller's transaction (which commits it before refusing). A throttled account or address is
    refused first (:class:`~tessera.idp.errors.Throttled`, 429), without any argon2 work."""
    known = provider.lockout.admit(
        session,
        tenant_id=client.tenant_id,
        username=username,
        context=context,
        client_id=client.id,
        via=via,
    )
    user = authenticate_user(
        session,
        provider.passwords,
        tenant_id=client.tenant_id,
        username=username,
        password=password,
    )
    if user is None:
        record(
            session,
            "login.failed",
            tenant_id=client.tenant_id,
            outcome="failure",
            context=context,
            client_id=client.id,
            details={"grant": via},
        )
        provider.lockout.failed(
            session,
            tenant_id=client.tenant_id,
            username=username,
            ip=context.ip,
            user=known,
            context=context,
        )
        return Refused("invalid username or password")
    return user


@dataclass(frozen=True, slots=True)
class CodeNeeded:
    """The password was right; a code comes next (``mfa_token`` carries the password step).
    With ``enrolment``, the account must first add an authenticator: this one."""

    mfa_token: str
    enrolment: Enrolment | None = None


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new provider session (its cookie for the browser), the request as it stands now (its
    sign-in done), what it needs next, and — when the sign-in enrolled a factor — the recovery
    codes, shown once."""

    started: Started
    asked: Asked
    # An error too: it goes back after the session commits. None: recovery codes come first.
    next: Next | AuthorizationError | None
    recovery_codes: list[str] | None = None


def sign_in_with_password(
    provider: Provider,
    session: Session,
    asked: Asked,
    username: str,
    password: str,
    context: Context,
    now: int,
) -> Refused | CodeNeeded | SignedIn:
    """The sign-in page's password, for the request ``asked``."""
    client = asked.client
    user = check_password(provider, session, client, username, password, context, via=VIA)
    if isinstance(user, Refused):
        return user
    challenge = second_factor_due(
        provider,
        session,
        client,
        user,
        None,
        None,
        context,
        via=VIA,
        now=now,
        required=asked.wants_mfa,
    )
    if challenge is None:
        return _signed_in(provider, session, asked, user, ("pwd",), context, now)
    provider.lockout.settle(session, client.tenant_id, username, context.ip)
    if challenge.error == "mfa_required":
        return CodeNeeded(challenge.mfa_token)
    return CodeNeeded(challenge.mfa_token, begin_enrolment(provider, session, user, context, now))


def sign_in_with_code(
    provider: Provider,
    session: Session,
    asked: Asked,
    mfa_token: str,
    otp: str | None,
    recovery_code: str | None,
    context: Context,
    now: int,
) -> Refused | CodeNeeded | SignedIn:
    """The second-factor page's code (or recovery code, or the first code of an enrolment)
    against the ``mfa_token`` of the password step. A wrong code shows the page again."""
    passed = pass_challenge(
        provider,
        session,
        asked.client,
        mfa_token,
        otp=otp,
        recovery_code=recovery_code,
        context=context,
        now=now,
    )
    if isinstance(passed, Refused):
        return passed
    amr = ("pwd", "otp")
    if passed.recovery_codes is None:
        return _signed_in(provider, session, asked, passed.user, amr, context, now)
    signed_in = _signed_in(provider, session, asked, passed.user, amr, context, now, proceed=False)
    return replace(signed_in, recovery_codes=passed.recovery_codes)


def code_page(provider: Provider, session: Session, mfa_token: str, now: int) -> CodeNeeded:
    """The second-factor page again for ``mfa_token`` (after a wrong code): with the pending
    enrolment when the token is for enrolling."""
    challenge, user = open_challenge(provider, session, mfa_token, now=now)
    if challenge.purpose == "verify":
        return CodeNeeded(mfa_token)
    enrolment = enrolment_in_progress(provider, session, user)
    if enrolment is None:
        raise OAuthError("invalid_grant", "start the sign-in again")
    return CodeNeeded(mfa_token, enrolment)


def _signed_in(
    provider: Provider,
    session: Session,
    asked: Asked,
    user: User,
    amr: tuple[str, ...],
    context: Context,
    now: int,
    *,
    proceed: bool = True,
) -> SignedIn:
    provider.lockout.succeeded(session, user.tenant_id, user.username, context.ip)
    started = provider.sessions.start(
        session, user, amr=amr, acr=MFA if "otp" in amr else "", now=now
    )
    record(
        session,
        "login.succeeded",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        client_id=asked.client.id,
        details={"grant": VIA, "session": started.row.id, "amr": list(amr)},
        at=now,
    )
    fresh = replace(asked, signed_in=started.row.id)
    if not proceed:
        return SignedIn(started, fresh, None)
    try:
        step: Next | AuthorizationError = next_step(provider, session, fresh, started.row, now=now)
    except AuthorizationError as error:
        step = error
    return SignedIn(started, fresh, step)
