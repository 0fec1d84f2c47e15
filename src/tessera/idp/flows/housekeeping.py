"""Housekeeping: purge what can no longer matter, so tables do not grow without bound.

Audit rows are kept ``audit_retention_days`` (0: forever); each purge that deletes some
records one ``audit.purged`` row (tenant ``*``) in the same transaction. With
``audit_export_dir``, what a purge deletes is written there first (JSON Lines, one file a purge).

>>> audit_cutoff(86_400 * 400, retention_days=365)
3024000
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from ..provider import Provider
from ..services.audit import Context, event_as_dict, record, rfc3339
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
    """Delete the audit rows past retention (written to ``audit_export_dir`` first, when set)
    and audit that; return how many went."""
    cutoff = audit_cutoff(now, retention_days=provider.settings.audit_retention_days)
    if cutoff is None:
        return 0
    with provider.database.session() as session:
        return delete_audit_before(
            session, cutoff, now, export_dir=provider.settings.audit_export_dir
        )


def delete_audit_before(
    session: Session, cutoff: int, now: int, *, export_dir: Path | None = None
) -> int:
    """Delete audit rows older than ``cutoff``, then record one ``audit.purged`` row.

    With ``export_dir``, exactly the rows deleted are first written to a JSON Lines file there
    (as ``tessera audit export`` writes them), flushed to disk before the delete: a file that
    cannot be written raises, and the caller's transaction deletes nothing."""
    newest = session.scalar(select(func.max(AuditEvent.id)))
    if newest is None:
        return 0
    # The newest row stays even when old: SQLite gives a new row the highest id + 1, so ids
    # only ever grow (cursors and followers rely on it) while the highest one is kept.
    # Rows older than the cutoff committed long ago: none can appear among them meanwhile.
    old: tuple[ColumnElement[bool], ...] = (AuditEvent.at < cutoff, AuditEvent.id < newest)
    details: dict[str, Any] = {"cutoff": cutoff}
    if export_dir is not None:
        exported = _export(session, old, export_dir, cutoff, now)
        if exported is None:
            return 0
        details["export"], last = exported
        old = (*old, AuditEvent.id <= last)
    deleted = session.execute(delete(AuditEvent).where(*old))
    count: int = deleted.rowcount  # type: ignore[attr-defined]
    if count:
        record(
            session,
            PURGED,
            tenant_id=ALL_TENANTS,
            context=HOUSEKEEPING,
            details={"count": count, **details},
            at=now,
        )
    return count


def _export(
    session: Session, old: tuple[ColumnElement[bool], ...], directory: Path, cutoff: int, now: int
) -> tuple[str, int] | None:
    """Write the rows matching ``old`` to a new file in ``directory``; its name and the last
    id written, or ``None`` when there is nothing to write."""
    # Streamed, a thousand rows at a time: a first purge may cover years of rows.
    rows = session.execute(
        select(AuditEvent.__table__)
        .where(*old)
        .order_by(AuditEvent.id)
        .execution_options(yield_per=1000)
    )
    directory.mkdir(parents=True, exist_ok=True)
    name = f"audit-before-{rfc3339(cutoff)}-purged-{rfc3339(now)}.jsonl".replace(":", "")
    partial = directory / f".{name}.partial"
    last = None
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            for row in rows:
                out.write(orjson.dumps(event_as_dict(row), option=orjson.OPT_APPEND_NEWLINE))
                last = row.id
            out.flush()
            os.fsync(out.fileno())
        if last is None:
            partial.unlink()
            return None
        partial.rename(directory / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return name, last
