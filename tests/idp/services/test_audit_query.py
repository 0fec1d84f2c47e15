"""Reading the audit log: filters (alone and together) against an independent oracle, time range
edges, cursor pages that see every row once while rows keep coming, tenant isolation, bad input
as 422, export of thousands of rows as JSON Lines, and a follower that misses nothing."""

from __future__ import annotations

import functools
import io
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tessera.idp.errors import AdminError
from tessera.idp.provider import Provider
from tessera.idp.services.audit import (
    AuditPage,
    AuditQuery,
    Context,
    Follower,
    encode_cursor,
    event_as_dict,
    export_jsonl,
    iter_events,
    query_events,
    record,
)
from tessera.idp.store.database import Database
from tessera.idp.store.models import AuditEvent
from tessera.jose import b64

from ...services import postgres_schema
from ..conftest import audit_events

T0 = 1_800_000_000  # the seeded rows' times: far from now, so other rows never mix in
FIELDS = {
    "id", "at", "time", "tenant", "event", "outcome", "actor", "subject", "client_id", "ip",
    "user_agent", "details",
}  # fmt: skip
EVENTS = (
    "mfa.enrolled",
    "mfa.verify.failed",
    "MFA.enrolled",  # a prefix match is case-sensitive, on SQLite too
    "mfa",  # "mfa.*" wants the dot
    "mfax.enrolled",
    "user_x.created",  # "_" is a LIKE wildcard: the prefix must be escaped
    "userAx.created",
    "user.created",
)


def add(
    provider: Provider,
    event: str = "user.created",
    *,
    tenant_id: str = "acme",
    at: int = T0,
    subject: str | None = "ada",
    actor: str | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    with provider.database.session() as session:
        record(
            session,
            event,
            tenant_id=tenant_id,
            at=at,
            subject=subject,
            outcome=outcome,
            context=Context(ip="203.0.113.9", user_agent="test/1", actor=actor),
            details=details,
        )


def seed_matrix(provider: Provider) -> None:
    """Every combination of tenant, subject, actor, outcome and event, at spread-out times."""
    combos = itertools.product(
        ("acme", "globex"), ("ada", "bob", None), ("root", None), ("success", "failure"), EVENTS
    )
    with provider.database.session() as session:
        for n, (tenant_id, subject, actor, outcome, event) in enumerate(combos):
            record(
                session,
                event,
                tenant_id=tenant_id,
                at=T0 + n % 37,
                subject=subject,
                outcome=outcome,
                context=Context(actor=actor),
                details={"n": n},
            )


def matches(row: AuditEvent, query: AuditQuery) -> bool:
    """The oracle: what a query means, written without SQL."""
    if query.event is not None and query.event.endswith(".*"):
        event_ok = row.event.startswith(query.event[:-1])
    else:
        event_ok = query.event is None or row.event == query.event
    return (
        event_ok
        and all(
            getattr(query, name) is None or getattr(row, name) == getattr(query, name)
            for name in ("tenant_id", "subject", "actor", "outcome")
        )
        and (query.since is None or row.at >= query.since)
        and (query.until is None or row.at < query.until)
    )


def expected_ids(provider: Provider, query: AuditQuery) -> list[int]:
    return [row.id for row in audit_events(provider) if matches(row, query)]


def pages(provider: Provider, query: AuditQuery) -> Iterator[AuditPage]:
    while True:
        with provider.database.session(readonly=True) as session:
            page = query_events(session, query)
        yield page
        if page.next_cursor is None:
            return
        query = AuditQuery(**{**_fields(query), "cursor": page.next_cursor})


def _fields(query: AuditQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in AuditQuery.__dataclass_fields__}


def read_all(provider: Provider, query: AuditQuery) -> list[dict[str, Any]]:
    return [event for page in pages(provider, query) for event in page.events]


def refused(make: Callable[[], object]) -> AdminError:
    with pytest.raises(AdminError) as caught:
        make()
    assert caught.value.code == "invalid"
    return caught.value


FILTERS: list[dict[str, Any]] = [
    {"tenant_id": "acme"},
    {"subject": "bob"},
    {"actor": "root"},
    {"outcome": "failure"},
    {"event": "user.created"},
    {"event": "mfa.*"},
    {"event": "user_x.*"},
    {"event": "mfa"},
    {"since": T0 + 10},
    {"until": T0 + 10},
    {"tenant_id": "globex", "subject": "ada", "outcome": "success", "event": "mfa.*"},
    {"tenant_id": "acme", "actor": "root", "since": T0 + 5, "until": T0 + 30, "limit": 3},
    {"subject": "nobody"},
    {"tenant_id": "acme", "event": "MFA.*"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda value: ",".join(value))
def test_each_filter_and_combination_returns_exactly_its_matches(
    provider: Provider, filters: dict[str, Any]
) -> None:
    seed_matrix(provider)
    query = AuditQuery(**filters)
    found = read_all(provider, query)
    ids = [event["id"] for event in found]
    assert ids == expected_ids(provider, query)
    if filters != {"subject": "nobody"}:
        assert ids, "a filter that matches nothing proves little"


def test_prefix_match_is_literal_and_case_sensitive(provider: Provider) -> None:
    for event in EVENTS:
        add(provider, event)
    names = {event["event"] for event in read_all(provider, AuditQuery(event="mfa.*"))}
    assert names == {"mfa.enrolled", "mfa.verify.failed"}
    names = {event["event"] for event in read_all(provider, AuditQuery(event="user_x.*"))}
    assert names == {"user_x.created"}
    exact = read_all(provider, AuditQuery(event="mfa", since=T0))
    assert [event["event"] for event in exact] == ["mfa"]


def test_time_range_includes_since_and_excludes_until(provider: Provider) -> None:
    for offset in (-1, 0, 1, 99, 100, 101):
        add(provider, at=T0 + offset, details={"offset": offset})

    def offsets(since: int | None = None, until: int | None = None) -> list[int]:
        query = AuditQuery(tenant_id="acme", since=since, until=until)
        return [event["details"]["offset"] for event in read_all(provider, query)]

    assert offsets(since=T0, until=T0 + 100) == [0, 1, 99]
    assert offsets(since=T0 + 100) == [100, 101]
    assert offsets(until=T0) == [-1]
    assert offsets(since=T0, until=T0) == []
    assert offsets(since=T0 + 1, until=T0 + 2) == [1]
    refused(lambda: AuditQuery(since=T0 + 1, until=T0))


def test_cursor_pages_visit_every_row_once_while_rows_are_appended(provider: Provider) -> None:
    for n in range(25):
        add(provider, details={"n": n})
    add(provider, tenant_id="globex")  # not a match: never seen, never counted
    query = AuditQuery(tenant_id="acme", limit=7)
    seen: list[int] = []
    cursors: list[str | None] = []
    appended = 0
    for page in pages(provider, query):
        seen += [event["id"] for event in page.events]
        cursors.append(page.next_cursor)
        assert len(page.events) <= 7
        if appended < 12:  # rows keep coming between pages
            for _ in range(3):
                add(provider, details={"n": 100 + appended})
                add(provider, tenant_id="globex")
                appended += 1
    assert appended == 12
    assert seen == sorted(set(seen)), "each row once, in id order"
    assert seen == expected_ids(provider, query)
    assert len(seen) == 25 + 12
    assert cursors[-1] is None and None not in cursors[:-1]


def test_a_full_last_page_ends_with_no_cursor_only_when_nothing_follows(
    provider: Provider,
) -> None:
    for _ in range(4):
        add(provider)
    with provider.database.session(readonly=True) as session:
        first = query_events(session, AuditQuery(tenant_id="acme", limit=2))
        second = query_events(
            session, AuditQuery(tenant_id="acme", limit=2, cursor=first.next_cursor)
        )
        everything = query_events(session, AuditQuery(tenant_id="acme", limit=4))
    assert len(first.events) == 2 and first.next_cursor is not None
    assert len(second.events) == 2 and second.next_cursor is None
    assert everything.next_cursor is None
    with provider.database.session(readonly=True) as session:
        beyond = query_events(session, AuditQuery(cursor=encode_cursor(2**62)))
    assert beyond == AuditPage([], None)
    assert [e["id"] for e in everything.events] == [e["id"] for e in first.events + second.events]


def test_limit_bounds(provider: Provider) -> None:
    for _ in range(3):
        add(provider)
    bad: Any
    for bad in (0, -1, 1001, True, 2.5, "10"):
        error = refused(functools.partial(AuditQuery, limit=bad))
        assert "limit" in error.detail
    with provider.database.session(readonly=True) as session:
        assert len(query_events(session, AuditQuery(tenant_id="acme", limit=1)).events) == 1
        assert len(query_events(session, AuditQuery(tenant_id="acme", limit=1000)).events) == 3
    assert AuditQuery().limit == 100


def b64json(value: Any) -> str:
    return b64.encode_str(orjson.dumps(value))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "7",
        "not a cursor",
        "eyJhZnRlciI6N30=",  # padded
        "eyJhZnRlciI6N30\n",
        "\u00e9",
        b64.encode_str(b"\xff\xfe"),
        b64json([7]),
        b64json({"after": -1}),
        b64json({"after": "7"}),
        b64json({"after": True}),
        b64json({"after": 7.0}),
        b64json({"after": 2**63}),
        b64json({"after": 7, "tenant": "acme"}),
        b64json({}),
        "A" * 5000,
    ],
)
def test_a_malformed_cursor_is_a_422(provider: Provider, cursor: str) -> None:
    error = refused(lambda: AuditQuery(cursor=cursor))
    assert error.detail == "malformed cursor"


@pytest.mark.parametrize(
    "filters",
    [
        {"tenant_id": ""},
        {"tenant_id": "a" * 65},
        {"subject": 7},
        {"actor": "x" * 201},
        {"outcome": "o" * 17},
        {"subject": "ada\x00"},
        {"tenant_id": "\x00"},
        {"event": "*"},
        {"event": ".*"},
        {"event": "mfa*"},
        {"event": "mfa.*.x"},
        {"event": "mfa. enrolled"},
        {"event": "mfa..x"},
        {"since": -1},
        {"since": "yesterday"},
        {"until": 2**63},
        {"until": 1.5},
    ],
    ids=repr,
)
def test_bad_filter_values_are_a_422(filters: dict[str, Any]) -> None:
    refused(lambda: AuditQuery(**filters))


def test_a_tenant_query_never_returns_another_tenants_rows(provider: Provider) -> None:
    seed_matrix(provider)
    add(provider, "key.rotated", tenant_id="*")
    with provider.database.session(readonly=True) as session:
        globex = query_events(session, AuditQuery(tenant_id="globex", limit=5))
    assert globex.next_cursor is not None
    everything_acme = read_all(provider, AuditQuery(tenant_id="acme", limit=1000))
    assert everything_acme and {event["tenant"] for event in everything_acme} == {"acme"}
    # acme's query, even with globex's cursor and every other filter, stays in acme
    for filters in FILTERS:
        query = AuditQuery(**{**filters, "tenant_id": "acme", "cursor": globex.next_cursor})
        assert {event["tenant"] for event in read_all(provider, query)} <= {"acme"}
    # an unfiltered query sees them all, the system rows included
    assert {event["tenant"] for event in read_all(provider, AuditQuery(limit=1000))} >= {
        "acme",
        "globex",
        "*",
    }


def test_an_event_as_a_dict(provider: Provider) -> None:
    add(provider, "user.updated", actor="root", details={"before": {"email": None}})
    with provider.database.session(readonly=True) as session:
        (row,) = session.scalars(select(AuditEvent).where(AuditEvent.event == "user.updated"))
        (event,) = query_events(session, AuditQuery(event="user.updated")).events
    assert event == event_as_dict(row)
    assert set(event) == FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert (event["at"], event["time"]) == (T0, "2027-01-15T08:00:00Z")
    assert event["details"] == {"before": {"email": None}}
    assert (event["tenant"], event["actor"], event["subject"], event["ip"]) == (
        "acme",
        "root",
        "ada",
        "203.0.113.9",
    )


def test_export_of_many_rows_equals_the_query_and_is_json_lines(provider: Provider) -> None:
    rows = 5000
    with provider.database.session() as session:
        for n in range(rows):
            record(
                session,
                "token.issued" if n % 3 else "login.failed",
                tenant_id="acme" if n % 5 else "globex",
                at=T0 + n,
                subject=f"user-{n % 17}",
                details={"n": n, "note": "ünïcödé \u202e"},
            )
    query = AuditQuery(since=T0)
    paged = read_all(provider, AuditQuery(since=T0, limit=1000))
    assert len(paged) == rows

    buffer = io.BytesIO()
    assert export_jsonl(provider.database, query, buffer) == rows
    data = buffer.getvalue()
    assert data.endswith(b"\n") and data.count(b"\n") == rows
    assert [orjson.loads(line) for line in data.splitlines()] == paged

    chunks: list[bytes] = []
    assert export_jsonl(provider.database, AuditQuery(since=T0, event="login.*"), chunks.append)
    filtered = [orjson.loads(line) for line in b"".join(chunks).splitlines()]
    assert filtered == [event for event in paged if event["event"] == "login.failed"]
    # batches of an odd size join up exactly, and a cursor starts the export after it
    assert list(iter_events(provider.database, query, batch=333)) == paged
    after = AuditQuery(since=T0, cursor=encode_cursor(paged[4999 - 10]["id"]))
    assert list(iter_events(provider.database, after, batch=3)) == paged[-10:]


def test_iterating_holds_no_connection_between_batches(provider: Provider) -> None:
    for n in range(10):
        add(provider, details={"n": n})
    pool = provider.database.engine.pool
    events = iter_events(provider.database, AuditQuery(tenant_id="acme"), batch=4)
    first = next(events)
    assert first["details"] == {"n": 0}
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    # meanwhile a writer gets on with its work, and the export sees its row at the end
    add(provider, details={"n": 10})
    rest = list(events)
    assert [event["details"]["n"] for event in rest] == list(range(1, 11))


def test_a_follower_shows_the_latest_then_only_what_is_new(provider: Provider) -> None:
    for n in range(5):
        add(provider, details={"n": n})
        add(provider, tenant_id="globex", details={"n": n})
    follower = Follower(provider.database, AuditQuery(tenant_id="acme"))
    assert [event["details"]["n"] for event in follower.latest(3)] == [2, 3, 4]
    assert follower.poll() == []
    add(provider, details={"n": 5})
    add(provider, tenant_id="globex")
    add(provider, details={"n": 6})
    assert [event["details"]["n"] for event in follower.poll()] == [5, 6]
    assert follower.poll() == []
    add(provider, details={"n": 7})
    assert [event["details"]["n"] for event in follower.poll()] == [7]


def test_a_follower_sees_a_row_that_commits_after_a_newer_one() -> None:
    """On PostgreSQL a row's id is taken when it is inserted: a slow transaction can commit its
    row after a newer one has been shown. The follower looks back and shows it too, once."""
    with postgres_schema() as url:
        database = Database(url)
        database.upgrade()
        try:
            follower = Follower(database, AuditQuery(tenant_id="acme"), grace=600)
            assert follower.latest(10) == []
            with database.session() as slow:
                record(slow, "user.created", tenant_id="acme", subject="slow")
                with database.session() as session:
                    record(session, "user.created", tenant_id="acme", subject="fast")
                assert [event["subject"] for event in follower.poll()] == ["fast"]
            late = follower.poll()  # the slow transaction has committed now
            assert [event["subject"] for event in late] == ["slow"]
            (fast,) = [row for row in audit_rows(database) if row.subject == "fast"]
            assert late[0]["id"] < fast.id
            assert follower.poll() == []
            with database.session() as session:
                record(session, "user.created", tenant_id="acme", subject="next")
            assert [event["subject"] for event in follower.poll()] == ["next"]
        finally:
            database.dispose()


def audit_rows(database: Database) -> list[AuditEvent]:
    with database.session(readonly=True) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
