"""Prepared reads (a hot path's single SELECT on a raw DBAPI connection): the same answers as
SQLAlchemy's ``execute``, types converted as it converts them, driver errors raised as its
errors, on SQLite and PostgreSQL; a SQLite file's connections are each reading thread's own."""

from __future__ import annotations

import datetime
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Boolean, DateTime, bindparam, exists, func, literal, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from tessera.idp.store.database import Database, WouldWait
from tessera.idp.store.models import Tenant
from tessera.idp.store.prepared import count, prepared, run

from ...services import postgres_schema

NEW = {"created_at": 1, "mfa_policy": "optional"}


@pytest.fixture
def database(database_url: str) -> Database:
    database = Database(database_url)
    database.upgrade()
    with database.session() as session:
        session.add(Tenant(id="acme", name="Acme", created_at=1_700_000_000))
    return database


def test_answers_as_execute_does_with_literals_and_repeated_parameters(database: Database) -> None:
    statement = select(
        Tenant.id,
        Tenant.name,
        literal(7).label("seven"),
        exists().where(Tenant.id == bindparam("other")).label("other_exists"),
    ).where(Tenant.id == bindparam("tenant"), Tenant.name != bindparam("other"))
    params = {"tenant": "acme", "other": "nobody"}
    with database.engine.connect() as connection:
        expected = connection.execute(statement, params).one()

    row = database.first(statement, params)

    assert tuple(row) == tuple(expected) == ("acme", "Acme", 7, False)
    assert row.name == "Acme" and row.seven == 7
    assert row.other_exists is False  # SQLite's 0 converted as SQLAlchemy converts it
    assert database.first(statement, {"tenant": "nobody", "other": "x"}) is None


def test_a_statement_is_compiled_once_per_dialect(database: Database) -> None:
    statement = select(Tenant.name).where(Tenant.id == bindparam("tenant"))
    dialect = database.engine.dialect
    assert prepared(statement, dialect) is prepared(statement, dialect)
    assert prepared(statement, Database("sqlite://").engine.dialect) is not prepared(
        statement, dialect
    )


def test_bind_and_result_processors_apply(database: Database) -> None:
    moment = datetime.datetime(2026, 12, 6, 12, 30)
    when = select(
        bindparam("moment", type_=DateTime()).label("moment"),
        bindparam("flag", type_=Boolean()).label("flag"),
    )
    row = database.first(when, {"moment": moment, "flag": True})
    assert row.moment == moment and row.flag is True


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(database: Database) -> None:
    broken = select(text("no_such_column")).select_from(Tenant.__table__)
    with pytest.raises(SQLAlchemyError) as raised:
        database.first(broken, {})  # type: ignore[arg-type]
    assert isinstance(raised.value, OperationalError | ProgrammingError)
    assert "no_such_column" in str(raised.value)
    # The connection is not left broken for the next read.
    assert database.first(select(Tenant.name), {}).name == "Acme"


def test_sqlite_file_reads_use_each_threads_own_connection(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'own.db'}", pool_size=1)
    database.upgrade()
    seen: list[int] = []

    def read() -> None:
        with database.raw_connection() as first, database.raw_connection() as again:
            assert first is again
            seen.append(id(first))

    # The pool's only connection is held elsewhere; the threads' reads do not wait for it.
    with database.engine.connect():
        threads = [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(seen) == 3 and len(set(seen)) == 3


def test_a_postgresql_connection_the_server_ended_is_replaced_before_use() -> None:
    # The server ends a pooled connection while it is idle (a restart does so to all): the
    # next read is made on a new connection, and does not fail (store/checkout.py).
    with postgres_schema() as url:
        database = Database(url, pool_size=1)
        database.upgrade()
        backend = select(func.pg_backend_pid().label("pid"))
        pid = database.first(backend, {}).pid
        killer = Database(url, pool_size=1)
        with killer.engine.connect() as connection:
            connection.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        time.sleep(0.2)  # the server's goodbye reaches the pooled connection's socket
        assert database.first(backend, {}).pid != pid
        database.dispose()


def test_a_write_runs_in_the_sessions_transaction_and_rolls_back_with_it(
    database: Database,
) -> None:
    add = Tenant.__table__.insert().returning(Tenant.id, Tenant.name)
    rename = update(Tenant).where(Tenant.id == bindparam("tenant")).values(name=bindparam("name"))
    with database.session() as session:
        added = run(session, add, {"id": "beta", "name": "Beta", **NEW})
        assert added == ("beta", "Beta")
        assert count(session, rename, {"tenant": "beta", "name": "Beta Inc"}) == 1
        assert count(session, rename, {"tenant": "nobody", "name": "x"}) == 0
        # The ORM sees it: one transaction, one connection.
        assert session.get(Tenant, "beta") is not None
    assert database.first(select(Tenant.name).where(Tenant.id == "beta"), {}).name == "Beta Inc"

    def failing() -> None:
        with database.session() as session:
            run(session, add, {"id": "gamma", "name": "Gamma", **NEW})
            raise RuntimeError("the request failed after the write")

    with pytest.raises(RuntimeError):
        failing()
    assert database.first(select(Tenant.id).where(Tenant.id == "gamma"), {}) is None


def test_a_constraint_violation_is_sqlalchemys_integrity_error(database: Database) -> None:
    add = Tenant.__table__.insert()
    with pytest.raises(IntegrityError), database.session() as session:
        run(session, add, {"id": "acme", "name": "Acme again", **NEW})
    assert database.first(select(Tenant.name).where(Tenant.id == "acme"), {}).name == "Acme"


def test_a_missing_parameter_is_refused_before_anything_is_sent(database: Database) -> None:
    add = Tenant.__table__.insert()
    with pytest.raises(KeyError), database.session() as session:
        run(session, add, {"id": "delta", "name": "Delta", "mfa_policy": "optional"})  # no default


def test_a_read_leaves_its_pooled_connection_transactional(database_url: str) -> None:
    """A PostgreSQL read runs in autocommit (one round trip); the connection it borrowed must
    go back to the pool as it was, or the next transaction on it could not roll back."""
    database = Database(database_url, pool_size=1)
    database.upgrade()
    assert database.first(select(literal(1).label("one")), {}).one == 1

    def failing() -> None:
        with database.session() as session:
            session.add(Tenant(id="ghost", name="Ghost", created_at=1))
            session.flush()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        failing()
    assert database.first(select(Tenant.id).where(Tenant.id == "ghost"), {}) is None
    database.dispose()


def test_a_write_at_once_never_waits_for_another_writer(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'at-once.db'}")
    database.upgrade()
    assert database.writes_at_once
    add = Tenant.__table__.insert()
    with database.session_at_once() as session:
        run(session, add, {"id": "first", "name": "First", **NEW})
    assert database.first(select(Tenant.id).where(Tenant.id == "first"), {}) is not None

    def failing() -> None:
        with database.session_at_once() as session:
            run(session, add, {"id": "undone", "name": "Undone", **NEW})
            raise RuntimeError("the request failed after the write")

    with pytest.raises(RuntimeError):
        failing()
    assert database.first(select(Tenant.id).where(Tenant.id == "undone"), {}) is None

    # A writer on another thread of this process: refused before anything is done.
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with database.session() as session:
            run(session, add, {"id": "other", "name": "Other", **NEW})
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(10)
    with pytest.raises(WouldWait):
        database.session_at_once().__enter__()
    release.set()
    thread.join(10)

    # A writer in another process (another connection holding SQLite's lock): the same.
    other = sqlite3.connect(tmp_path / "at-once.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(WouldWait):
        database.session_at_once().__enter__()
    other.execute("ROLLBACK")
    other.close()
    with database.session_at_once() as session:  # free again: it begins
        run(session, add, {"id": "last", "name": "Last", **NEW})
    assert database.first(select(func.count()).select_from(Tenant), {})[0] == 3


def test_only_a_sqlite_file_writes_at_once(database_url: str) -> None:
    database = Database(database_url)
    assert database.writes_at_once is database_url.startswith("sqlite")
    assert not Database("sqlite://").writes_at_once  # one shared in-memory connection
    if not database.writes_at_once:
        with pytest.raises(WouldWait):
            database.session_at_once().__enter__()
