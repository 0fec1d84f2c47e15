"""Statements awaited on the event loop (``Database.read``, ``Database.write``): PostgreSQL's on
the loop's own connections, reused, replaced when one breaks, bounded, closed with the loop's
app; SQLite's at once, or on a worker thread when another writer holds the lock."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Integer,
    LargeBinary,
    String,
    bindparam,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tessera.idp.store.database import Database
from tessera.idp.store.loop_connections import _Pool
from tessera.idp.store.models import Tenant

from ...services import migrated_database

PID = select(func.pg_backend_pid().label("pid"))
SLEEP = select(func.pg_sleep(bindparam("seconds", type_=Integer)).label("slept"))


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Database]:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=3)
        yield database
        database.dispose()


class NoThreads(ThreadPoolExecutor):
    """The loop's default executor, refusing: a read that needed a worker thread fails."""

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a read went to a worker thread")


def run(database: Database, work: Any) -> Any:
    async def main() -> Any:
        asyncio.get_running_loop().set_default_executor(NoThreads())
        try:
            return await work()
        finally:
            await database.close_loop_connections()

    return asyncio.run(main())


def test_reads_run_on_the_loop_and_reuse_their_connection(postgres: Database) -> None:
    async def work() -> list[int]:
        return [(await postgres.read(PID, {})).pid for _ in range(20)]

    pids = run(postgres, work)
    assert len(set(pids)) == 1


def test_concurrent_reads_use_at_most_the_pool_size(postgres: Database) -> None:
    async def work() -> list[int]:
        rows = await asyncio.gather(*(postgres.read(PID, {}) for _ in range(30)))
        return [row.pid for row in rows]

    pids = run(postgres, work)
    assert 1 <= len(set(pids)) <= 3 and len(pids) == 30


def test_a_broken_connection_fails_one_read_and_is_replaced(postgres: Database) -> None:
    async def work() -> tuple[int, int]:
        first = (await postgres.read(PID, {})).pid
        with postgres.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with pytest.raises(OperationalError):
            await postgres.read(PID, {})
        return first, (await postgres.read(PID, {})).pid

    first, second = run(postgres, work)
    assert first != second


def test_a_refused_statement_keeps_its_connection_and_a_cancelled_one_loses_it(
    postgres: Database,
) -> None:
    async def work() -> tuple[int, int, int]:
        first = (await postgres.read(PID, {})).pid
        await postgres.write(ADD, _tenant("acme"))
        with pytest.raises(IntegrityError):
            await postgres.write(ADD, _tenant("acme"))
        after_refusal = (await postgres.read(PID, {})).pid
        # Cancelled while the server works: what that connection holds next is unknown.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(postgres.read(SLEEP, {"seconds": 5}), 0.1)
        return first, after_refusal, (await postgres.read(PID, {})).pid

    first, after_refusal, after_cancel = run(postgres, work)
    assert after_refusal == first
    assert after_cancel != first


def test_values_come_back_as_sqlalchemys_own_read_gives_them(postgres: Database) -> None:
    values = select(
        bindparam("text", type_=String).label("text"),
        bindparam("number", type_=BigInteger).label("number"),
        bindparam("flag", type_=Boolean).label("flag"),
        bindparam("raw", type_=LargeBinary).label("raw"),
        bindparam("missing", type_=String).label("missing"),
        bindparam("document", type_=JSON).label("document"),
        (bindparam("text", type_=String) + literal_column("'%'")).label("percent"),
        func.now().label("now"),
    )
    params = {
        "text": "é 100% ' \\ $1",
        "number": 2**40,
        "flag": True,
        "raw": bytes(range(256)),
        "missing": None,
        "document": {"scope": ["openid", "email"], "n": 1},
    }

    async def work() -> Any:
        small = await postgres.read(values, {**params, "number": 7})  # prepared for an int2
        assert small.number == 7
        return [await postgres.read(values, params) for _ in range(7)]  # then for an int8

    rows = run(postgres, work)
    expected = postgres.first(values, params)
    assert all(row._replace(now=None) == expected._replace(now=None) for row in rows)
    assert rows[0].text == params["text"] and rows[0].percent == params["text"] + "%"
    assert rows[0].raw == params["raw"] and rows[0].document == params["document"]
    assert rows[0].missing is None and rows[0].flag is True and rows[0].number == 2**40


def test_a_connection_the_server_ends_while_idle_is_noticed_and_never_used(
    postgres: Database,
) -> None:
    async def work() -> tuple[int, int, int]:
        with postgres.engine.connect():  # the pooled connection that ends the other one
            descriptors = len(os.listdir("/proc/self/fd"))
        first = (await postgres.read(PID, {})).pid
        with postgres.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await asyncio.sleep(0.2)  # the loop hears the server's goodbye
        second = (await postgres.read(PID, {})).pid  # no error: a new connection
        await postgres.close_loop_connections()
        return first, second, len(os.listdir("/proc/self/fd")) - descriptors

    first, second, descriptors_left = run(postgres, work)
    assert second != first
    assert descriptors_left == 0  # every socket (and its watched duplicate) closed


def test_a_read_that_finds_every_connection_busy_waits_then_gives_up(tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=1)
        database._loop_connections._pool_timeout = 0.2  # type: ignore[union-attr]

        async def work() -> None:
            slow = asyncio.ensure_future(database.read(SLEEP, {"seconds": 1}))
            await asyncio.sleep(0.05)
            with pytest.raises(PoolTimeout):
                await database.read(PID, {})
            await slow

        try:
            run(database, work)
        finally:
            database.dispose()


def test_reads_waiting_for_a_connection_get_it_in_the_order_they_came(tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=1)
        numbered = select(bindparam("n", type_=Integer).label("n"))

        async def work() -> list[int]:
            finished: list[int] = []

            async def read(n: int) -> None:
                await database.read(numbered, {"n": n})
                finished.append(n)

            holder = asyncio.ensure_future(database.read(SLEEP, {"seconds": 1}))
            await asyncio.sleep(0.05)
            waiting = []
            for n in range(5):
                waiting.append(asyncio.ensure_future(read(n)))
                await asyncio.sleep(0)  # each in line before the next
            await holder
            await asyncio.gather(*waiting)
            return finished

        try:
            finished = run(database, work)
        finally:
            database.dispose()
    assert finished == [0, 1, 2, 3, 4]


def test_a_wait_cancelled_as_it_is_handed_a_connection_passes_it_on() -> None:
    class Kept:  # what the pool lends, as far as it looks at it
        closed = False

    async def work() -> tuple[object, object]:
        pool = _Pool({}, 0)  # nothing to make: only what is given back is lent
        first = asyncio.ensure_future(pool.take(5))
        second = asyncio.ensure_future(pool.take(5))
        await asyncio.sleep(0)  # both in line
        given = Kept()
        pool.give_back(given)  # type: ignore[arg-type]  # handed to the first in line ...
        first.cancel()  # ... cancelled before it resumes
        with pytest.raises(asyncio.CancelledError):
            await first
        return given, await second

    given, lent = asyncio.run(work())
    assert lent is given


def test_a_discarded_connections_place_goes_to_the_first_in_line(tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url:
        database = Database(url, pool_size=1)
        database._loop_connections._pool_timeout = 5  # type: ignore[union-attr]

        async def work() -> tuple[int, int]:
            pid = (await database.read(PID, {})).pid  # the one connection there will be
            doomed = asyncio.ensure_future(database.read(SLEEP, {"seconds": 5}))
            await asyncio.sleep(0.1)
            waiting = asyncio.ensure_future(database.read(PID, {}))
            await asyncio.sleep(0.05)
            with database.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(OperationalError):
                await doomed
            return pid, (await waiting).pid  # a new connection, made in the freed place

        try:
            killed, made = run(database, work)
        finally:
            database.dispose()
    assert made != killed


def test_the_apps_end_closes_the_loops_connections(postgres: Database) -> None:
    async def work() -> int:
        pid = int((await postgres.read(PID, {})).pid)
        await postgres.close_loop_connections()
        return pid

    pid = run(postgres, work)
    with postgres.engine.connect() as connection:
        alive = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    assert alive == 0


def test_an_unreachable_database_is_an_operational_error() -> None:
    database = Database("postgresql+psycopg://postgres@127.0.0.1:1/test")

    async def work() -> None:
        with pytest.raises(OperationalError):
            await database.read(PID, {})

    run(database, work)
    database.dispose()


def test_sqlite_reads_are_made_at_once(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tessera.db'}")

    async def work() -> Any:
        return await database.read(select(func.sqlite_version().label("version")), {})

    assert run(database, work).version
    database.dispose()


ADD = Tenant.__table__.insert()


def _tenant(name: str) -> dict[str, Any]:
    return {"id": name, "name": name.title(), "mfa_policy": "optional", "created_at": 0}


def _tenants(database: Database) -> set[str]:
    with database.session(readonly=True) as session:
        return set(session.scalars(select(Tenant.id)))


def test_a_write_is_committed_when_it_returns(postgres: Database) -> None:
    async def work() -> set[str]:
        await postgres.write(ADD, _tenant("acme"))
        return _tenants(postgres)  # another connection sees it at once

    assert run(postgres, work) == {"acme"}


def test_a_write_that_fails_writes_nothing_and_raises_as_sqlalchemy_does(
    postgres: Database,
) -> None:
    async def work() -> None:
        await postgres.write(ADD, _tenant("acme"))
        with pytest.raises(IntegrityError):
            await postgres.write(ADD, _tenant("acme"))
        await postgres.write(ADD, _tenant("globex"))  # the loop's connection still works

    run(postgres, work)
    assert _tenants(postgres) == {"acme", "globex"}


def test_a_sqlite_write_is_made_at_once_or_waits_its_turn_on_a_thread(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tessera.db'}")
    database.upgrade()
    holding, release = threading.Event(), threading.Event()

    def writer_holding_the_lock() -> None:
        with database.session() as session:
            session.execute(ADD, _tenant("first"))
            holding.set()
            release.wait(5)

    async def work() -> list[str]:
        await database.write(ADD, _tenant("at-once"))  # nobody writes: on the loop itself
        holder = threading.Thread(target=writer_holding_the_lock)
        holder.start()
        holding.wait(5)
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(1))
        waiting = asyncio.ensure_future(database.write(ADD, _tenant("after")))
        await asyncio.sleep(0.1)
        seen = ["waiting" if not waiting.done() else "done"]
        release.set()
        await waiting
        holder.join()
        return seen

    assert asyncio.run(work()) == ["waiting"]
    assert _tenants(database) == {"at-once", "first", "after"}
    database.dispose()
