"""A user's status, decided in one place for the admin API and ``tessera admin user`` alike.

``active`` enables a disabled user and unlocks a locked one (ending the lock and forgetting the
failed attempts, as ``unlock`` does); ``disabled`` ends every session at once; ``locked`` holds
until ``until`` or an unlock, and is refused for a disabled user (a timed lock ends in
``active``, which must never re-enable them).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..provider import Provider
from ..services.accounts import effective_status, set_status
from ..services.audit import Context
from ..store.models import User
from .revoke import disable_user


def change_status(
    provider: Provider,
    session: Session,
    user: User,
    status: str,
    *,
    context: Context,
    until: int | None = None,
) -> bool:
    """Move ``user`` to ``status``, audited; whether anything changed."""
    if status == "disabled":
        return disable_user(provider, session, user, context)
    if status == "active" and effective_status(user) == "locked":
        provider.lockout.unlock(session, user, context=context)
        return True
    return set_status(session, user, status, until=until, reason="admin", context=context)
