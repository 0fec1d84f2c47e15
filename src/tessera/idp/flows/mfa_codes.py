"""A second-factor code checked under the lockout: the one gate every code passes, at login and
in self-service alike.

Every code goes through the provider's lockout first (``check``), and counts as a failure
(``failed``, in the caller's transaction) or a success. A refused code is returned as
:class:`~tessera.idp.services.refresh.Refused` by the flows — its audit row and the failure
count are written in the transaction the caller commits before it answers with the error.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from ..errors import Throttled
from ..provider import Provider
from ..services.audit import Context, record
from ..services.mfa import verify_second_factor
from ..store.models import User

WRONG_CODE = "invalid code"


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
        provider.lockout.check(session, user.tenant_id, user.username, context.ip, now=now)
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
        provider.lockout.succeeded(session, user.tenant_id, user.username, context.ip, now=now)
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


def code_check(
    provider: Provider,
    session: Session,
    user: User,
    otp: str | None,
    recovery_code: str | None,
    context: Context,
    now: int | None,
    *,
    client_id: str | None = None,
) -> Callable[[], bool]:
    """The check of a TOTP or recovery code for :func:`guarded` to run."""
    return lambda: verify_second_factor(
        session,
        provider.master,
        user,
        otp=otp,
        recovery_code=recovery_code,
        context=context,
        client_id=client_id,
        now=now,
    )
