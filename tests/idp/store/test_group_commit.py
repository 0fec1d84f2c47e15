"""Group commit (``Database.write``): writes reached at the same moment share one transaction,
each writer hears of its own write only, and a failing write fails nobody else — on
PostgreSQL (one pipelined round trip) and on a SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from tessera.idp.store.database import Database
from tessera.idp.store.group_commit import GroupCommit
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


def test_a_group_is_one_commit_and_a_cancelled_writer_leaves_the_others_done() -> None:
    commits: list[list[int]] = []

    async def commit(writes: Sequence[int]) -> list[int]:
        await asyncio.sleep(0.01)
        commits.append(list(writes))
        return [-write for write in writes]

    async def work() -> list[Any]:
        group: GroupCommit[int, int] = GroupCommit(commit)
        writers = [asyncio.ensure_future(group.write(n)) for n in range(4)]
        await asyncio.sleep(0)  # every writer has joined; the commit is under way
        writers[1].cancel()
        outcomes = await asyncio.gather(*writers, return_exceptions=True)
        return [*outcomes, await group.write(9)]  # the next moment: a commit of its own

    outcomes = asyncio.run(work())
    assert commits == [[0, 1, 2, 3], [9]]
    assert outcomes[0] == 0 and outcomes[2:] == [-2, -3, -9]  # what each write did
    assert type(outcomes[1]).__name__ == "CancelledError"
