"""The second factor: TOTP (RFC 6238) with single-use recovery codes.

The TOTP secret (160 bits) is sealed with the master key, bound to its user. A code is good
for ±1 time step and only once: the step it matched is claimed with a conditional UPDATE, so
two nodes checking the same code at once cannot both accept it. Recovery codes are kept only
as keyed hashes and spent the same way.

>>> import pyotp
>>> secret = pyotp.random_base32(32)
>>> now = 1_700_000_000
>>> code = pyotp.TOTP(secret).at(now)
>>> matching_step(secret, code, now) == now // 30
True
>>> matching_step(secret, pyotp.TOTP(secret).at(now + 60), now) is None
True
>>> normalise_recovery_code(" ABCDE-FGHJK ")
'abcdefghjk'
"""

from __future__ import annotations

import hmac
import io
import secrets
import time
from dataclasses import dataclass
from typing import IO, Any, cast

import pyotp
import segno
from sqlalchemy import Table, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..errors import invalid_request
from ..store.models import RecoveryCode, User
from .audit import Context, record
from .secrets import MasterKey

STEP = 30  # seconds per TOTP code (RFC 6238's default, what authenticator apps use)
DIGITS = 6
WINDOW = 1  # steps accepted either side of now: clocks drift, people type slowly
SECRET_LENGTH = 32  # base32 characters: 160 bits (RFC 4226 §4)
RECOVERY_CODES = 10
RECOVERY_PURPOSE = "recovery-code"
# Crockford's base32 alphabet: no i, l, o or u to misread; 10 symbols carry 50 bits.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_SYMBOLS = 10
_LOOK_ALIKES = str.maketrans({"i": "1", "l": "1", "o": "0", "-": None, " ": None})

_USERS = cast(Table, User.__table__)
_CODES = cast(Table, RecoveryCode.__table__)
# Built once: every verification runs these, and building a statement costs more than running it.
_CLAIM_STEP = (
    update(_USERS)
    .where(
        _USERS.c.id == bindparam("user_id"),
        or_(_USERS.c.mfa_last_step.is_(None), _USERS.c.mfa_last_step < bindparam("step")),
    )
    .values(mfa_last_step=bindparam("claimed"))
)
_SPEND_CODE = (
    update(_CODES)
    .where(
        _CODES.c.user_id == bindparam("owner"),
        _CODES.c.code_hash == bindparam("digest"),
        _CODES.c.used_at.is_(None),
    )
    .values(used_at=bindparam("spent_at"))
)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What a person needs to add the factor to an authenticator app (shown once)."""

    otpauth_uri: str
    secret: str  # base32, for manual entry
    qr_svg: str  # the otpauth URI as a QR code, an SVG document


def _aad(user: User) -> bytes:
    return b"tessera totp v1:" + user.id.encode()


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def has_factor(user: User) -> bool:
    """Whether the user has a confirmed second factor."""
    return user.mfa_secret is not None


def matching_step(secret: str, code: str, now: int) -> int | None:
    """The time step within ±``WINDOW`` of ``now`` whose code is ``code``, or ``None``.

    Every candidate is compared, in constant time, whatever matched before it.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = now // STEP
    found: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            found = step
    return found


def start_enrolment(
    session: Session,
    master: MasterKey,
    user: User,
    *,
    issuer_name: str,
    context: Context,
    now: int | None = None,
) -> Enrolment:
    """A new TOTP secret, pending until :func:`confirm_enrolment` sees a first valid code
    (a second start replaces the pending one). Refused when a factor is already enrolled."""
    if has_factor(user):
        raise invalid_request("a second factor is already enrolled: remove it first")
    moment = _now(now)
    secret = pyotp.random_base32(SECRET_LENGTH)
    user.mfa_pending = master.seal(secret.encode(), aad=_aad(user))
    user.updated_at = moment
    record(
        session,
        "mfa.enrol_started",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        details={"method": "totp"},
        at=moment,
    )
    return _enrolment(secret, user, issuer_name)


def pending_enrolment(master: MasterKey, user: User, *, issuer_name: str) -> Enrolment | None:
    """The enrolment ``user`` started and has not confirmed yet (to show it again), if any."""
    if user.mfa_pending is None or has_factor(user):
        return None
    secret = master.unseal(user.mfa_pending, aad=_aad(user)).decode()
    return _enrolment(secret, user, issuer_name)


def _enrolment(secret: str, user: User, issuer_name: str) -> Enrolment:
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=user.username, issuer_name=issuer_name
    )
    return Enrolment(uri, secret, qr_svg(uri))


def qr_svg(text: str) -> str:
    """``text`` as a QR code: a standalone SVG document (no XML declaration).

    >>> qr_svg("otpauth://totp/x?secret=AAAA").startswith("<svg")
    True
    """
    buffer = io.BytesIO()
    # segno writes bytes to a file object (its annotation says text).
    segno.make(text, error="m").save(cast(IO[str], buffer), kind="svg", scale=4, xmldecl=False)
    return buffer.getvalue().decode()


def confirm_enrolment(
    session: Session,
    master: MasterKey,
    user: User,
    code: str,
    *,
    context: Context,
    now: int | None = None,
) -> list[str] | None:
    """Turn the pending secret on with a first valid code: the factor is enabled, the code's
    step is spent, and 10 new recovery codes are returned (in clear, this once). ``None``
    (audited ``mfa.enrol_failed``) when the code is wrong."""
    if user.mfa_pending is None:
        raise invalid_request("no enrolment in progress: start one first")
    moment = _now(now)
    secret = master.unseal(user.mfa_pending, aad=_aad(user)).decode()
    step = matching_step(secret, code, moment)
    if step is None or not _claim_step(session, user, step):
        record(
            session,
            "mfa.enrol_failed",
            tenant_id=user.tenant_id,
            outcome="failure",
            context=context,
            subject=user.id,
            details={"method": "totp"},
            at=moment,
        )
        return None
    user.mfa_secret, user.mfa_pending = user.mfa_pending, None
    user.mfa_enabled_at = user.updated_at = moment
    record(
        session,
        "mfa.enrolled",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        details={"method": "totp"},
        at=moment,
    )
    return _replace_recovery_codes(session, master, user, moment)


def verify_totp(
    session: Session, master: MasterKey, user: User, code: str, *, now: int | None = None
) -> bool:
    """Whether ``code`` is the user's current TOTP code and was not used before — in which
    case its step is now spent. Not audited: see :func:`verify_second_factor`."""
    if user.mfa_secret is None:
        return False
    moment = _now(now)
    secret = master.unseal(user.mfa_secret, aad=_aad(user)).decode()
    step = matching_step(secret, code, moment)
    return step is not None and _claim_step(session, user, step)


def _claim_step(session: Session, user: User, step: int) -> bool:
    # The row decides, not what this node read: of two concurrent claims of one step (or a
    # later one already used), the database lets exactly one UPDATE match.
    claimed = session.connection().execute(
        _CLAIM_STEP, {"user_id": user.id, "step": step, "claimed": step}
    )
    if claimed.rowcount != 1:
        return False
    set_committed_value(user, "mfa_last_step", step)
    return True


def normalise_recovery_code(code: str) -> str:
    """Lower case, without separators or spaces, look-alikes read as digits (``o`` → ``0``)."""
    return code.strip().lower().translate(_LOOK_ALIKES)


def spend_recovery_code(
    session: Session, master: MasterKey, user: User, code: str, *, now: int | None = None
) -> bool:
    """Whether ``code`` is one of the user's unused recovery codes — which it no longer is."""
    if user.mfa_secret is None:
        return False
    normalised = normalise_recovery_code(code)
    if len(normalised) != _RECOVERY_SYMBOLS or not set(normalised) <= set(_ALPHABET):
        return False
    code_hash = master.keyed_hash(RECOVERY_PURPOSE, normalised)
    spent = session.connection().execute(
        _SPEND_CODE, {"owner": user.id, "digest": code_hash, "spent_at": _now(now)}
    )
    return spent.rowcount == 1


def recovery_codes_left(session: Session, user: User) -> int:
    """How many of the user's recovery codes are still unused."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(_CODES)
            .where(_CODES.c.user_id == user.id, _CODES.c.used_at.is_(None))
        )
        or 0
    )


def verify_second_factor(
    session: Session,
    master: MasterKey,
    user: User,
    *,
    otp: str | None = None,
    recovery_code: str | None = None,
    context: Context,
    client_id: str | None = None,
    now: int | None = None,
) -> bool:
    """Check a TOTP code or spend a recovery code (exactly one of them), audited as
    ``mfa.verified``, ``mfa.recovery_code_used`` or ``mfa.failed``."""
    if (otp is None) == (recovery_code is None):
        raise invalid_request("send either otp or recovery_code")
    moment = _now(now)
    method = "totp" if otp is not None else "recovery_code"
    if otp is not None:
        passed = verify_totp(session, master, user, otp, now=moment)
    else:
        assert recovery_code is not None
        passed = spend_recovery_code(session, master, user, recovery_code, now=moment)
    details: dict[str, Any] = {"method": method}
    if not passed:
        event, outcome = "mfa.failed", "failure"
    elif otp is not None:
        event, outcome = "mfa.verified", "success"
    else:
        event, outcome = "mfa.recovery_code_used", "success"
        details["remaining"] = recovery_codes_left(session, user)
    record(
        session,
        event,
        tenant_id=user.tenant_id,
        outcome=outcome,
        context=context,
        subject=user.id,
        client_id=client_id,
        details=details,
        at=moment,
    )
    return passed


def new_recovery_code() -> str:
    """A fresh recovery code, ``xxxxx-xxxxx`` (50 random bits).

    >>> code = new_recovery_code()
    >>> len(code), code[5]
    (11, '-')
    """
    symbols = "".join(secrets.choice(_ALPHABET) for _ in range(_RECOVERY_SYMBOLS))
    return f"{symbols[:5]}-{symbols[5:]}"


def _replace_recovery_codes(session: Session, master: MasterKey, user: User, now: int) -> list[str]:
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    connection = session.connection()
    connection.execute(delete(_CODES).where(_CODES.c.user_id == user.id))
    connection.execute(
        _CODES.insert(),
        [
            {
                "user_id": user.id,
                "code_hash": master.keyed_hash(RECOVERY_PURPOSE, normalise_recovery_code(code)),
                "created_at": now,
                "used_at": None,
            }
            for code in codes
        ],
    )
    return codes


def regenerate_recovery_codes(
    session: Session,
    master: MasterKey,
    user: User,
    *,
    context: Context,
    now: int | None = None,
) -> list[str]:
    """Ten new recovery codes; every earlier one (used or not) stops working."""
    if not has_factor(user):
        raise invalid_request("no second factor is enrolled")
    moment = _now(now)
    codes = _replace_recovery_codes(session, master, user, moment)
    record(
        session,
        "mfa.recovery_codes_regenerated",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        details={"count": len(codes)},
        at=moment,
    )
    return codes


def reset_mfa(session: Session, user: User, *, context: Context) -> None:
    """Remove the second factor: secret, pending enrolment, last step and recovery codes
    (audited ``mfa.reset``). What an admin's "reset MFA" and a user's removal both do."""
    had_factor = has_factor(user)
    user.mfa_secret = user.mfa_pending = None
    user.mfa_enabled_at = user.mfa_last_step = None
    user.updated_at = int(time.time())
    session.connection().execute(delete(_CODES).where(_CODES.c.user_id == user.id))
    record(
        session,
        "mfa.reset",
        tenant_id=user.tenant_id,
        context=context,
        subject=user.id,
        details={"had_factor": had_factor},
    )
