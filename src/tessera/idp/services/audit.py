"""The audit log: one row per security event, in the same transaction as the event itself;
queried with filters and an opaque cursor, exported as JSON Lines, followed as it grows.

>>> Context(ip="127.0.0.1").ip
'127.0.0.1'
>>> query = AuditQuery(tenant_id="acme", event="mfa.*", cursor=encode_cursor(41))
>>> decode_cursor(query.cursor), query.limit
(41, 100)
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import IO, Any, Protocol, Required, TypedDict, Unpack, cast

import orjson
from sqlalchemy import BigInteger, ColumnElement, Select, Table, bindparam, func, literal, select
from sqlalchemy.orm import Session

from tessera.jose import b64
from tessera.jose.errors import MalformedToken

from ..errors import unprocessable
from ..store import prepared
from ..store.database import Database, after_commit
from ..store.models import AuditEvent

_TABLE = cast(Table, AuditEvent.__table__)
# Every column but the id, which the database numbers (prepared: store/prepared.py).
INSERT = (
    _TABLE.insert()
    .inline()
    .values({column.name: bindparam(column.name) for column in _TABLE.c if column.name != "id"})
)

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


# The key of Database.session_info under which a callable(event, outcome) hears of each audited
# event once its transaction commits.
OBSERVER = "tessera.audit_observer"


class Event(TypedDict, total=False):
    """What an audit row says of its event beside its name (:func:`row`, :func:`record`,
    :func:`record_alone` take it as keywords)."""

    tenant_id: Required[str]
    outcome: str  # "success" unless said
    context: Context | None
    subject: str | None
    client_id: str | None
    details: dict[str, Any] | None
    at: int | None  # now unless said


def record(session: Session, event: str, **fields: Unpack[Event]) -> None:
    """Append one audit row (flushed with the caller's transaction); an observer the
    database's sessions carry (:data:`OBSERVER`: the metrics) hears of it once it commits."""
    values = row(event, **fields)
    observer = session.info.get(OBSERVER)
    if observer is not None:
        after_commit(session, partial(observer, event, values["outcome"]))
    # A Core INSERT on the session's connection: audit rows are never read back by the
    # transaction that writes them, so the ORM's unit of work would only add cost.
    prepared.run(session, INSERT, values)


async def record_alone(database: Database, event: str, **fields: Unpack[Event]) -> None:
    """:func:`record` for an event whose only write is its audit row, from the event loop:
    the row is its own transaction (``Database.write``), committed when this returns; then
    the observer hears of it."""
    values = row(event, **fields)
    await database.write(INSERT, values)
    heard(database, event, values["outcome"])


def heard(database: Database, event: str, outcome: str) -> None:
    """Tell the observer ``database``'s sessions carry (:data:`OBSERVER`) of an event whose
    row was committed outside a session."""
    observer = database.session_info.get(OBSERVER)
    if observer is not None:
        observer(event, outcome)


def row(event: str, **fields: Unpack[Event]) -> dict[str, Any]:
    """The values of :data:`INSERT` for one event (what :func:`record` writes), for a caller
    that writes the row with its other statements (``Database.write_all``) and then tells
    :func:`heard`.

    >>> row("token.issued", tenant_id="acme", details={"scope": "read", "secret": "s"})["details"]
    '{"scope":"read"}'
    """
    context = fields.get("context") or Context()
    details = fields.get("details") or {}
    at = fields.get("at")
    clean = {key: value for key, value in details.items() if key not in _FORBIDDEN}
    return {
        "at": int(time.time()) if at is None else at,
        "tenant_id": fields["tenant_id"],
        "event": event,
        "outcome": fields.get("outcome", "success"),
        "actor": context.actor,
        "subject": fields.get("subject"),
        "client_id": fields.get("client_id"),
        "ip": context.ip,
        "user_agent": (context.user_agent or "")[:300] or None,
        "details": orjson.dumps(clean).decode(),
    }


# ---------------------------------------------------------------------- querying

MAX_LIMIT = 1000
_MAX_ID = 2**63 - 1
# Event names are dotted words ("user.locked"); a filter may end in ".*" to match a family.
_EVENT = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*(?:\.\*)?")
# Widths of the columns a filter compares with: a longer value can match nothing.
_WIDTHS = {"tenant_id": 64, "subject": 200, "actor": 200, "event": 64, "outcome": 16}


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to read from the log; every filter is optional and they combine with AND.

    ``since`` is inclusive and ``until`` exclusive (epoch seconds); ``event`` matches exactly,
    or every event under a prefix when it ends with ``.*``. Bad values raise AdminError 422.

    >>> AuditQuery(limit=0)
    Traceback (most recent call last):
    ...
    tessera.idp.errors.AdminError: invalid: limit must be between 1 and 1000
    """

    tenant_id: str | None = None
    subject: str | None = None
    actor: str | None = None
    event: str | None = None
    outcome: str | None = None
    since: int | None = None
    until: int | None = None
    cursor: str | None = field(default=None, repr=False)
    limit: int = 100

    def __post_init__(self) -> None:
        for name, width in _WIDTHS.items():
            value = getattr(self, name)
            if value is not None and (type(value) is not str or not 0 < len(value) <= width):
                raise unprocessable(f"{name} must be a text of 1 to {width} characters")
            if value is not None and "\x00" in value:  # PostgreSQL text cannot hold NUL
                raise unprocessable(f"{name} must not contain NUL")
        if self.event is not None and not _EVENT.fullmatch(self.event):
            raise unprocessable("event must be a dotted name, optionally ending in .*")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or not 0 <= value <= _MAX_ID):
                raise unprocessable(f"{name} must be a time in epoch seconds")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise unprocessable("since must not be after until")
        if type(self.limit) is not int or not 1 <= self.limit <= MAX_LIMIT:
            raise unprocessable(f"limit must be between 1 and {MAX_LIMIT}")
        if self.cursor is not None:
            decode_cursor(self.cursor)


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of matches, oldest first; ``next_cursor`` reads on (None: nothing after)."""

    events: list[dict[str, Any]]
    next_cursor: str | None


class AuditRow(Protocol):
    """An audit row: the ORM object or a Core row of ``audit_events``."""

    id: int
    at: int
    tenant_id: str
    event: str
    outcome: str
    actor: str | None
    subject: str | None
    client_id: str | None
    ip: str | None
    user_agent: str | None
    details: str


def encode_cursor(after_id: int) -> str:
    """The opaque cursor that reads on after the row ``after_id``.

    >>> encode_cursor(7)
    'eyJhZnRlciI6N30'
    """
    return b64.encode_str(orjson.dumps({"after": after_id}))


def decode_cursor(cursor: str) -> int:
    """The row id a cursor reads on after; AdminError 422 when it is not one of ours.

    >>> decode_cursor("eyJhZnRlciI6N30")
    7
    >>> decode_cursor("7")
    Traceback (most recent call last):
    ...
    tessera.idp.errors.AdminError: invalid: malformed cursor
    """
    try:
        if type(cursor) is not str or len(cursor) > 100:
            raise ValueError
        decoded = orjson.loads(b64.decode(cursor))
        after = decoded["after"] if type(decoded) is dict and len(decoded) == 1 else None
        if type(after) is not int or not 0 <= after <= _MAX_ID:
            raise ValueError
    except (MalformedToken, ValueError, KeyError):  # orjson.JSONDecodeError is a ValueError
        raise unprocessable("malformed cursor") from None
    return after


@lru_cache(maxsize=4096)  # an export meets the same second many times over
def rfc3339(at: int) -> str:
    """Epoch seconds as an RFC 3339 UTC time.

    >>> rfc3339(1_800_000_000)
    '2027-01-15T08:00:00Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def event_as_dict(row: AuditRow) -> dict[str, Any]:
    """An audit row as plain JSON-ready data; ``time`` is ``at`` in RFC 3339 UTC.

    >>> from tessera.idp.store.models import AuditEvent
    >>> row = AuditEvent(id=1, at=0, tenant_id="acme", event="user.created", outcome="success",
    ...     actor=None, subject="u1", client_id=None, ip=None, user_agent=None, details='{"a":1}')
    >>> event = event_as_dict(row)
    >>> event["time"], event["details"]
    ('1970-01-01T00:00:00Z', {'a': 1})
    """
    try:
        details = orjson.loads(row.details)
    except orjson.JSONDecodeError:  # never written by record(); shown, not hidden
        details = {"unparsed": row.details}
    return {
        "id": row.id,
        "at": row.at,
        "time": rfc3339(row.at),
        "tenant": row.tenant_id,
        "event": row.event,
        "outcome": row.outcome,
        "actor": row.actor,
        "subject": row.subject,
        "client_id": row.client_id,
        "ip": row.ip,
        "user_agent": row.user_agent,
        "details": details,
    }


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    columns = _TABLE.c
    conditions: list[ColumnElement[bool]] = []
    for name in ("tenant_id", "subject", "actor", "outcome"):
        value = getattr(query, name)
        if value is not None:
            conditions.append(columns[name] == value)
    if query.event is not None and query.event.endswith(".*"):
        prefix = query.event[:-1]
        # LIKE can use an index on PostgreSQL; SQLite's LIKE ignores case, substr does not.
        conditions.append(columns.event.startswith(prefix, autoescape=True))
        conditions.append(func.substr(columns.event, 1, len(prefix)) == prefix)
    elif query.event is not None:
        conditions.append(columns.event == query.event)
    if query.since is not None:
        conditions.append(columns.at >= query.since)
    if query.until is not None:
        conditions.append(columns.at < query.until)
    return conditions


def _after(row_id: int) -> ColumnElement[bool]:
    # A BIGINT parameter: the column is 32-bit on PostgreSQL, a cursor may name any id.
    return _TABLE.c.id > literal(row_id, BigInteger)


def _select(query: AuditQuery, after: int | None, count: int) -> Select[Any]:
    statement = select(_TABLE).where(*_conditions(query))
    if after is not None:
        statement = statement.where(_after(after))
    return statement.order_by(_TABLE.c.id).limit(count)


def query_events(session: Session, query: AuditQuery) -> AuditPage:
    """One page of the matches of ``query``, by id ascending, after its cursor.

    Rows are append-only, so a cursor is a position: paging on sees every row committed
    before each page is read, exactly once.
    """
    after = decode_cursor(query.cursor) if query.cursor is not None else None
    rows = session.execute(_select(query, after, query.limit + 1)).all()
    events = [event_as_dict(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return AuditPage(events, encode_cursor(events[-1]["id"]) if more else None)


def iter_events(
    database: Database, query: AuditQuery, *, batch: int = MAX_LIMIT
) -> Iterator[dict[str, Any]]:
    """Every match of ``query`` (after its cursor; ``limit`` does not apply), by id ascending.

    Reads ``batch`` rows at a time, each batch in a short read-only transaction of its own, so
    exporting millions of rows holds neither much memory nor a long transaction.
    """
    after = decode_cursor(query.cursor) if query.cursor is not None else None
    while True:
        with database.session(readonly=True) as session:
            rows = session.execute(_select(query, after, batch)).all()
        for row in rows:
            yield event_as_dict(row)
        if len(rows) < batch:
            return
        after = rows[-1].id


def export_jsonl(
    database: Database,
    query: AuditQuery,
    out: IO[bytes] | Callable[[bytes], object],
) -> int:
    """Write every match of ``query`` as JSON Lines (one event per line); return the count."""
    write = out if callable(out) else out.write
    count = 0
    lines: list[bytes] = []
    for event in iter_events(database, query):
        lines.append(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
        if len(lines) == MAX_LIMIT:
            write(b"".join(lines))
            count += len(lines)
            lines.clear()
    if lines:
        write(b"".join(lines))
        count += len(lines)
    return count


# ---------------------------------------------------------------------- following

# PostgreSQL hands out ids when rows are inserted, not when they commit: a row may appear
# after one with a higher id. Rows are looked for this long behind the newest id seen.
COMMIT_GRACE = 10.0


class Follower:
    """Follows the log as it grows: each :meth:`poll` returns the matches committed since the
    last one, each exactly once, even when rows commit out of id order (PostgreSQL)."""

    def __init__(self, database: Database, query: AuditQuery, *, grace: float | None = None):
        # SQLite has one writer at a time: its rows commit in id order.
        self._grace = (0.0 if database.is_sqlite else COMMIT_GRACE) if grace is None else grace
        self._database = database
        self._query = query
        self._floor = decode_cursor(query.cursor) if query.cursor is not None else 0
        self._marks: deque[tuple[float, int]] = deque()  # (when, newest id then)
        self._returned: set[int] = set()  # ids above the floor already returned

    def latest(self, count: int) -> list[dict[str, Any]]:
        """The last ``count`` matches now, oldest first; polls then return what comes after."""
        with self._database.session(readonly=True) as session:
            top = session.scalar(select(func.max(_TABLE.c.id))) or 0
            statement = select(_TABLE).where(
                *_conditions(self._query), _after(self._floor), _TABLE.c.id <= top
            )
            rows = session.execute(statement.order_by(_TABLE.c.id.desc()).limit(count)).all()
        self._floor = max(self._floor, top)
        return [event_as_dict(row) for row in reversed(rows)]

    def poll(self) -> list[dict[str, Any]]:
        """The matches committed since the last poll (or :meth:`latest`), by id ascending."""
        now = time.monotonic()
        with self._database.session(readonly=True) as session:
            top = session.scalar(select(func.max(_TABLE.c.id))) or 0
        fresh: list[dict[str, Any]] = []
        after = self._floor
        while after < top:
            with self._database.session(readonly=True) as session:
                statement = _select(self._query, after, MAX_LIMIT).where(_TABLE.c.id <= top)
                rows = session.execute(statement).all()
            for row in rows:
                if row.id not in self._returned:
                    self._returned.add(row.id)
                    fresh.append(event_as_dict(row))
            if len(rows) < MAX_LIMIT:
                break
            after = rows[-1].id
        self._marks.append((now, top))
        while self._marks and now - self._marks[0][0] >= self._grace:
            self._floor = max(self._floor, self._marks.popleft()[1])
        self._returned = {seen for seen in self._returned if seen > self._floor}
        return fresh
