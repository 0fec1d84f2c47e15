"""Work of one moment done together (``store/grouped.py``): writes reached at the same moment
share one transaction (``Database.write``), each writer hears of its own write only, and a
failing write fails nobody else — on PostgreSQL (one pipelined round trip) and on a SQLite
file; PostgreSQL's reads of one moment travel in one round trip, each answered (or refused)
on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, func, literal_column, select, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from tessera.idp.store.database import Database
from tessera.idp.store.grouped import Grouped
from tessera.idp.store.models import Tenant

from ...services import migrated_database

ADD = Tenant.__table__.insert()


def _tenant(name: str) -> dict[str, Any]:
    return {"id": name, "name": name.title(), "mfa_policy": "optional", "created_at": 0}


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as url:
        database = Database(url, pool_size=3)
        yield database
        database.dispose()


def _run(database: Database, work: Any) -> Any:
    async def main() -> Any:
        try:
            return await work()
        finally:
            await database.close_loop_connections()

    return asyncio.run(main())


def _names(database: Database) -> set[str]:
    with database.session(readonly=True) as session:
        return set(session.scalars(select(Tenant.id)))


def test_writes_of_one_moment_are_committed_and_a_failing_one_fails_alone(
    database: Database,
) -> None:
    async def work() -> list[BaseException | None]:
        await database.write(ADD, _tenant("taken"))
        names = [f"t{n}" for n in range(12)]
        names[5] = "taken"  # refused by the primary key
        return await asyncio.gather(
            *(database.write(ADD, _tenant(name)) for name in names), return_exceptions=True
        )

    outcomes = _run(database, work)
    assert [type(outcome) for outcome in outcomes] == [type(None)] * 5 + [IntegrityError] + [
        type(None)
    ] * 6
    assert _names(database) == {"taken"} | {f"t{n}" for n in range(12) if n != 5}


def test_postgresql_commits_the_writes_of_one_moment_in_one_transaction(tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=3)

        async def work() -> None:
            await asyncio.gather(*(database.write(ADD, _tenant(f"t{n}")) for n in range(10)))
            await database.write(ADD, _tenant("later"))  # a moment of its own

        try:
            _run(database, work)
            with database.engine.connect() as connection:
                transactions = dict(
                    connection.execute(
                        text(
                            "SELECT id = 'later', count(DISTINCT xmin::text) FROM tenants"
                            " GROUP BY id = 'later'"
                        )
                    ).all()
                )
        finally:
            database.dispose()
    assert transactions == {False: 1, True: 1}


STARTED = select(func.transaction_timestamp().label("at"), func.pg_backend_pid().label("pid"))
INVERSE = select((literal_column("1") / bindparam("n", type_=Integer)).label("inverse"))


def test_postgresql_reads_of_one_moment_travel_together_and_a_refused_one_fails_alone(
    tmp_path: Path,
) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=3)

        async def work() -> tuple[list[Any], Any, list[Any]]:
            together = await asyncio.gather(*(database.read(STARTED, {}) for _ in range(10)))
            later = await database.read(STARTED, {})  # a moment of its own
            inverses = await asyncio.gather(
                *(database.read(INVERSE, {"n": n}) for n in (1, 2, 0, 4)),
                return_exceptions=True,
            )
            return together, later, inverses

        try:
            together, later, inverses = _run(database, work)
        finally:
            database.dispose()
    # One round trip on one connection, before one sync: one implicit transaction's start.
    assert len({(row.at, row.pid) for row in together}) == 1
    assert later.at > together[0].at
    assert [float(row.inverse) for row in inverses if not isinstance(row, BaseException)] == [
        1.0,
        0.5,
        0.25,
    ]
    assert isinstance(inverses[2], DataError)  # division by zero: that read alone


def test_a_reader_cancelled_leaves_the_others_of_its_moment_answered(tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=1)

        async def work() -> tuple[list[Any], Any]:
            readers = [asyncio.ensure_future(database.read(STARTED, {})) for _ in range(4)]
            await asyncio.sleep(0)  # every reader has joined; the group is under way
            readers[1].cancel()
            outcomes = await asyncio.gather(*readers, return_exceptions=True)
            return outcomes, await database.read(STARTED, {})

        try:
            outcomes, after = _run(database, work)
        finally:
            database.dispose()
    assert isinstance(outcomes[1], asyncio.CancelledError)
    answered = [outcomes[0], outcomes[2], outcomes[3]]
    assert len({row.pid for row in answered}) == 1
    assert after.pid == answered[0].pid  # the one connection stayed usable


def test_a_group_is_one_commit_and_a_cancelled_writer_leaves_the_others_done() -> None:
    commits: list[list[int]] = []

    async def commit(writes: Sequence[int]) -> list[int]:
        await asyncio.sleep(0.01)
        commits.append(list(writes))
        return [-write for write in writes]

    async def work() -> list[Any]:
        group: Grouped[int, int] = Grouped(commit)
        writers = [asyncio.ensure_future(group.run(n)) for n in range(4)]
        await asyncio.sleep(0)  # every writer has joined; the commit is under way
        writers[1].cancel()
        outcomes = await asyncio.gather(*writers, return_exceptions=True)
        return [*outcomes, await group.run(9)]  # the next moment: a commit of its own

    outcomes = asyncio.run(work())
    assert commits == [[0, 1, 2, 3], [9]]
    assert outcomes[0] == 0 and outcomes[2:] == [-2, -3, -9]  # what each write did
    assert type(outcomes[1]).__name__ == "CancelledError"


def test_an_error_of_the_whole_group_fails_every_item_without_a_second_try() -> None:
    class Away(Exception):
        pass

    runs: list[list[int]] = []

    async def run_group(items: Sequence[int]) -> list[int]:
        runs.append(list(items))
        if 2 in items:
            raise ValueError("item 2 is refused")  # an item's: the others are run alone
        if 7 in items:
            raise Away("the database went away")  # the group's: nobody runs again
        return list(items)

    async def work() -> tuple[list[Any], list[Any]]:
        group: Grouped[int, int] = Grouped(run_group, fails_all=(Away,))
        items = await asyncio.gather(*(group.run(n) for n in (1, 2, 3)), return_exceptions=True)
        away = await asyncio.gather(*(group.run(n) for n in (6, 7, 8)), return_exceptions=True)
        return items, away

    items, away = asyncio.run(work())
    assert items[0] == 1 and isinstance(items[1], ValueError) and items[2] == 3
    assert all(isinstance(outcome, Away) for outcome in away)
    assert runs == [[1, 2, 3], [1], [2], [3], [6, 7, 8]]


def test_reads_of_one_moment_on_a_connection_that_dies_all_fail_at_once(tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=1)
        slow = select(func.pg_sleep(bindparam("s", type_=Integer)).label("slept"))

        async def work() -> tuple[list[Any], int]:
            pid = (await database.read(STARTED, {})).pid  # the one connection there is
            reads = [asyncio.ensure_future(database.read(slow, {"s": 5})) for _ in range(5)]
            await asyncio.sleep(0.3)  # sent together; the server works on the first
            with database.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            outcomes = await asyncio.gather(*reads, return_exceptions=True)
            return outcomes, (await database.read(STARTED, {})).pid

        try:
            started = time.monotonic()
            outcomes, after = _run(database, work)
            took = time.monotonic() - started
        finally:
            database.dispose()
    assert all(isinstance(outcome, OperationalError) for outcome in outcomes)
    assert took < 4  # no second try of each on a new connection (five more 5 s sleeps)
    assert after != 0
