"""Housekeeping: purge what can no longer matter, so tables do not grow without bound.

Audit rows are kept ``audit_retention_days`` (0: forever); each purge that deletes some
records one ``audit.purged`` row (tenant ``*``) in the same transaction.

>>> audit_cutoff(86_400 * 400, retention_days=365)
3024000
"""

from __future__ import annotations

import time

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from ..provider import Provider
from ..services.audit import Context, record
from ..store.models import (
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    ClientAssertion,
    RefreshFamily,
    RefreshToken,
    RevokedToken,
    SubjectNotBefore,
    ThrottleCounter,
)

# A revoked family is kept this long so that reuse of its tokens is still recognised.
REVOKED_FAMILY_KEEP = 7 * 86_400
# An expired code is kept this long so that a replay of it still revokes what it gave; later
# it is only an unknown code. Short: a busy provider mints a row per sign-in.
EXPIRED_CODE_KEEP = 600
# A spent client assertion's jti is kept this long past its exp: a node whose clock is behind
# must still see it spent while it would accept the assertion.
EXPIRED_ASSERTION_KEEP = 60
# A logged-out browser session is kept a day: what was signed in with it can still be told.
ENDED_SESSION_KEEP = 86_400
DAY = 86_400
PURGED = "audit.purged"
ALL_TENANTS = "*"
HOUSEKEEPING = Context(actor="housekeeping")


def purge(provider: Provider, now: float | None = None) -> dict[str, int]:
    """Delete expired authorization codes, browser sessions, client assertion ids, refresh
    tokens and families, blocklist entries, not-befores, lockout counters and audit rows past
    their retention.

    Returns how many rows of each kind went; rotates signing keys when due.
    """
    moment = int(time.time() if now is None else now)
    counts: dict[str, int] = {}
    with provider.database.session() as session:
        families = session.execute(
            delete(RefreshFamily).where(
                or_(
                    RefreshFamily.expires_at <= moment,
                    RefreshFamily.revoked_at <= moment - REVOKED_FAMILY_KEEP,
                )
            )
        )
        counts["refresh_families"] = families.rowcount  # type: ignore[attr-defined]
        tokens = session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= moment))
        counts["refresh_tokens"] = tokens.rowcount  # type: ignore[attr-defined]
        revoked = session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= moment))
        counts["revoked_tokens"] = revoked.rowcount  # type: ignore[attr-defined]
        not_before = session.execute(
            delete(SubjectNotBefore).where(SubjectNotBefore.expires_at <= moment)
        )
        counts["subject_not_before"] = not_before.rowcount  # type: ignore[attr-defined]
        codes = session.execute(
            delete(AuthorizationCode).where(
                AuthorizationCode.expires_at <= moment - EXPIRED_CODE_KEEP
            )
        )
        counts["authorization_codes"] = codes.rowcount  # type: ignore[attr-defined]
        assertions = session.execute(
            delete(ClientAssertion).where(
                ClientAssertion.expires_at <= moment - EXPIRED_ASSERTION_KEEP
            )
        )
        counts["client_assertions"] = assertions.rowcount  # type: ignore[attr-defined]
        idle = provider.settings.session_idle_ttl
        sessions = session.execute(
            delete(BrowserSession).where(
                or_(
                    BrowserSession.expires_at <= moment,
                    BrowserSession.last_seen_at <= moment - idle,
                    BrowserSession.ended_at <= moment - ENDED_SESSION_KEEP,
                )
            )
        )
        counts["browser_sessions"] = sessions.rowcount  # type: ignore[attr-defined]
        counters = session.execute(
            delete(ThrottleCounter).where(ThrottleCounter.expires_at <= moment)
        )
        counts["throttle_counters"] = counters.rowcount  # type: ignore[attr-defined]
    counts["audit_events"] = purge_audit(provider, moment)
    provider.keyring.ensure(moment)
    return counts


def audit_cutoff(now: int, *, retention_days: int) -> int | None:
    """The time before which audit rows go (None: they are kept forever)."""
    return now - retention_days * DAY if retention_days > 0 else None


def purge_audit(provider: Provider, now: int) -> int:
    """Delete the audit rows past retention and audit that; return how many went."""
    cutoff = audit_cutoff(now, retention_days=provider.settings.audit_retention_days)
    if cutoff is None:
        return 0
    with provider.database.session() as session:
        return delete_audit_before(session, cutoff, now)


def delete_audit_before(session: Session, cutoff: int, now: int) -> int:
    """Delete audit rows older than ``cutoff``, then record one ``audit.purged`` row."""
    newest = session.scalar(select(func.max(AuditEvent.id)))
    if newest is None:
        return 0
    # The newest row stays even when old: SQLite gives a new row the highest id + 1, so ids
    # only ever grow (cursors and followers rely on it) while the highest one is kept.
    deleted = session.execute(
        delete(AuditEvent).where(AuditEvent.at < cutoff, AuditEvent.id < newest)
    )
    count: int = deleted.rowcount  # type: ignore[attr-defined]
    if count:
        record(
            session,
            PURGED,
            tenant_id=ALL_TENANTS,
            context=HOUSEKEEPING,
            details={"count": count, "cutoff": cutoff},
            at=now,
        )
    return count
