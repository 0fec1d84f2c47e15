"""The audit log: one row per security event, in the same transaction as the event itself.

>>> Context(ip="127.0.0.1").ip
'127.0.0.1'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Table
from sqlalchemy.orm import Session

from ..store.models import AuditEvent

_INSERT = cast(Table, AuditEvent.__table__).insert()

# Names that must never reach the log, whatever a caller puts in `details`.
_FORBIDDEN = frozenset(
    {"password", "secret", "client_secret", "token", "refresh_token", "access_token", "code"}
)


@dataclass(frozen=True, slots=True)
class Context:
    """Who and where a request came from, for the audit row."""

    ip: str | None = None
    user_agent: str | None = None
    actor: str | None = None


def record(
    session: Session,
    event: str,
    *,
    tenant_id: str,
    outcome: str = "success",
    context: Context | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
    at: int | None = None,
) -> None:
    """Append one audit row (flushed with the caller's transaction)."""
    context = context or Context()
    clean = {key: value for key, value in (details or {}).items() if key not in _FORBIDDEN}
    # A Core INSERT on the session's connection: audit rows are never read back by the
    # transaction that writes them, so the ORM's unit of work would only add cost.
    session.connection().execute(
        _INSERT,
        {
            "at": int(time.time()) if at is None else at,
            "tenant_id": tenant_id,
            "event": event,
            "outcome": outcome,
            "actor": context.actor,
            "subject": subject,
            "client_id": client_id,
            "ip": context.ip,
            "user_agent": (context.user_agent or "")[:300] or None,
            "details": orjson.dumps(clean).decode(),
        },
    )
