"""The engine and sessions: SQLite (WAL) by default, PostgreSQL by URL; migrations at start.

>>> database = Database("sqlite://")
>>> database.upgrade()
>>> with database.session() as session:
...     session.scalar(text("select count(*) from tenants"))
0
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ClauseElement,
    Connection,
    Engine,
    Select,
    String,
    column,
    create_engine,
    event,
    inspect,
    select,
    table,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from .grouped import Grouped
from .prepared import Write, prepared

if TYPE_CHECKING:
    from .loop_connections import LoopConnections

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The revision of the newest migration in migrations/versions (tests/idp/store/test_migrations.py
# holds it to Alembic's own answer). A database that records it needs no migration: a node that
# starts on one reads one row and never imports Alembic, 9 MB of a started server's memory.
SCHEMA_HEAD = "0009"
_VERSION_TABLE = "alembic_version"  # where Alembic records the revisions a database is at
_RECORDED: Select[str] = select(column("version_num", String)).select_from(table(_VERSION_TABLE))
AFTER_COMMIT = "tessera.after_commit"
_SQLITE_CONNECT = {"check_same_thread": False, "timeout": 30}
CONNECT_TIMEOUT = 5  # seconds to connect to PostgreSQL
# TCP keepalives on every PostgreSQL connection (libpq's parameters; the URL may set its own):
# an idle pooled connection keeps its flow open through NAT and firewalls, and one whose peer
# went away without a word is known dead within a minute (30 s idle, then 3 probes 10 s apart)
# — its socket then reads as closed, which the pool's check (checkout.py) and the event loop's
# watch of its own connections (loop_connections.py) see before a request gets it.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
POOL_TIMEOUT = 10.0  # seconds to wait for a pooled connection
_MIGRATION_LOCK = 0x7E55E4A  # the advisory lock key migrations take on PostgreSQL

__all__ = ["AFTER_COMMIT", "Database", "after_commit", "text"]


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction has committed (never if it rolls back).

    The database is the truth: fan-out to Redis happens only for what was really written.
    """
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


# What begins a write transaction: Database.session, or Database.session_at_once.
Transaction = Callable[[], AbstractContextManager[Session]]


class WouldWait(Exception):
    """A write transaction that could not begin at once: another writer holds the lock."""


class Database:
    """One engine and its session factory for a database URL."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite has one writer at a time; waiting on this lock is cheaper and fairer than
        # SQLite's busy handler, which sleeps between retries.
        self._write_lock = threading.RLock()
        # An error's message never shows the statement's parameters (hashes, tokens' ids).
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # Sealed keys and secret hashes live here: readable by the owner only.
                os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            else:
                options["poolclass"] = StaticPool
            if "poolclass" not in options:
                options.update(pool_size=pool_size, max_overflow=0)
            options["connect_args"] = _SQLITE_CONNECT
        else:
            # A database that is away fails a request within seconds (503 and Retry-After,
            # http/app.py), never holds it: a connection is made in at most CONNECT_TIMEOUT,
            # one of the pool waited for at most POOL_TIMEOUT.
            parsed = make_url(url)
            keepalives = {
                name: value
                for name, value in KEEPALIVES.items()
                if parsed.get_backend_name() == "postgresql" and name not in parsed.query
            }
            options.update(
                pool_size=pool_size,
                max_overflow=0,
                pool_recycle=1800,
                pool_timeout=POOL_TIMEOUT,
                connect_args={"connect_timeout": CONNECT_TIMEOUT, **keepalives},
            )
        self.engine: Engine = create_engine(url, **options)
        # checkpoint_in_background(): commits leave the WAL to checkpoint().
        self._background_checkpoints = False
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "connect", self._commits_checkpoint)
            # pysqlite's own transaction handling defers BEGIN; take it over so that
            # BEGIN IMMEDIATE can serialize writers (rotation, refresh) when asked.
            event.listen(self.engine, "begin", _sqlite_begin)
        # read() and write(): PostgreSQL's awaited on the loop, on psycopg's async connections.
        self._loop_connections: LoopConnections | None = None
        if self.engine.dialect.driver == "psycopg":
            from .checkout import refuse_if_closed
            from .loop_connections import LoopConnections  # psycopg: the postgres extra, installed

            event.listen(self.engine, "checkout", refuse_if_closed)
            _, connect_args = self.engine.dialect.create_connect_args(self.engine.url)
            self._loop_connections = LoopConnections(
                {**connect_args, "connect_timeout": CONNECT_TIMEOUT, **keepalives},
                pool_size,
                POOL_TIMEOUT,
            )
        # The database away or a connection lost is every statement's of the group (and a
        # commit's outcome is then unknown): no second try, one by one, of each.
        away = (OperationalError, InterfaceError, PoolTimeout)
        self._grouped_writes: Grouped[Sequence[Write], list[int]] = Grouped(
            self._commit_writes, fails_all=away
        )
        self._grouped_reads: Grouped[Write, Any | None] = Grouped(self._read_all, fails_all=away)
        # What every session's ``info`` starts with (services/audit.py's observer, if any).
        self.session_info: dict[str, Any] = {}
        self._writer = sessionmaker(
            self.engine.execution_options(tessera_write=True),
            expire_on_commit=False,
            info=self.session_info,
        )
        self._reader = sessionmaker(self.engine, expire_on_commit=False, info=self.session_info)
        # A file's connections are the reading threads' own (raw_connection); an in-memory
        # database has only the one connection of its StaticPool.
        file = self.is_sqlite and "poolclass" not in options
        self._own_connections = threading.local() if file else None
        # session_at_once(): each thread's own connection, which never waits for the lock,
        # kept checked out by that thread (a session bound to it begins in 2/3 of the time).
        self._at_once: Engine | None = None
        self._kept = threading.local()
        self._kept_all: list[Connection] = []
        self._kept_lock = threading.Lock()
        if file:
            # Every transaction on it ends by the session's own COMMIT or ROLLBACK: no reset
            # is needed when the pool takes a connection back.
            at_once = create_engine(
                url,
                poolclass=SingletonThreadPool,
                pool_reset_on_return=None,
                connect_args=_SQLITE_CONNECT,
                echo=echo,
                hide_parameters=True,
            )
            event.listen(at_once, "connect", _sqlite_pragmas)
            event.listen(at_once, "connect", self._commits_checkpoint)
            event.listen(at_once, "connect", _sqlite_no_waiting)
            event.listen(at_once, "begin", _sqlite_begin)
            self._at_once = at_once.execution_options(tessera_write=True)

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error. The caller may
        commit part of its work on the way (``session.commit()``): what follows is a new
        transaction, committed or rolled back here.

        On SQLite a writing transaction takes the write lock when it begins (``BEGIN
        IMMEDIATE``), so two writers never deadlock upgrading their locks half-way.
        """
        serialize = self.is_sqlite and not readonly
        if serialize:
            self._write_lock.acquire()
        spares = self._spare_sessions(readonly)
        session = self._fresh(
            spares.pop() if spares else (self._reader if readonly else self._writer)()
        )
        try:
            with session:
                session.begin()
                try:
                    yield session
                except BaseException:
                    session.rollback()
                    raise
                session.commit()
        finally:
            spares.append(session)  # closed: empty, and used again by this thread
            if serialize:
                self._write_lock.release()
        _committed(session)

    def _fresh(self, session: Session) -> Session:
        """``session`` (new, or closed and used again) with what every session's ``info``
        starts with."""
        session.info.clear()
        session.info.update(self.session_info)
        return session

    def _spare_sessions(self, readonly: bool) -> list[Session]:
        """This thread's closed sessions of one kind, to use again: making a session costs
        more than a short transaction's statements (measured). A list, for a thread that
        opens a transaction inside another."""
        spares: dict[bool, list[Session]] | None = getattr(self._kept, "spares", None)
        if spares is None:
            spares = self._kept.spares = {True: [], False: []}
        return spares[readonly]

    @property
    def writes_at_once(self) -> bool:
        """Whether :meth:`session_at_once` can be tried: a SQLite file, whose short write
        (no network, no fsync in WAL mode) the event loop may make itself when nothing waits."""
        return self._at_once is not None

    @contextmanager
    def session_at_once(self) -> Iterator[Session]:
        """A write transaction as :meth:`session` makes, begun now on the calling thread's own
        connection — or :class:`WouldWait`, raised before anything is done, when another
        writer (a thread here, another process) holds the lock. It never waits.

        >>> import tempfile, pathlib
        >>> database = Database(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'now.db'}")
        >>> database.upgrade()
        >>> with database.session_at_once() as session:
        ...     session.scalar(text("select count(*) from tenants"))
        0
        """
        if self._at_once is None or not self._write_lock.acquire(blocking=False):
            raise WouldWait()
        try:
            with self._kept_session() as session:
                transaction = session.begin()
                try:
                    session.connection()  # BEGIN IMMEDIATE, now
                except OperationalError:  # SQLITE_BUSY: another process is writing
                    transaction.rollback()
                    raise WouldWait() from None
                with transaction:
                    yield session
        finally:
            self._write_lock.release()
        _committed(session)

    def first(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any | None:
        """The first row of the read ``statement`` for ``params`` (a named tuple), or ``None``:
        a hot path's single read, prepared (:mod:`.prepared`), on a connection of its own and
        outside any transaction — what it sees is what was committed.

        >>> from sqlalchemy import select, literal
        >>> Database("sqlite://").first(select(literal(42).label("answer")), {})
        Row(answer=42)
        """
        return prepared(statement, self.engine.dialect).first(self, params)

    async def read(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any | None:
        """:meth:`first`, for code on the event loop: a SQLite file's read is made at once
        (a local file read of microseconds; in WAL mode a reader never waits for a writer),
        PostgreSQL's awaited on a connection of the loop's own (:mod:`.loop_connections`):
        the loop never waits for the network, and no worker thread is needed. The reads that
        requests reach in the same turn of the loop go to PostgreSQL together, in one round
        trip (:mod:`.grouped`; each its own statement, with its own snapshot as ever).

        >>> import asyncio
        >>> from sqlalchemy import select, literal
        >>> asyncio.run(Database("sqlite://").read(select(literal(42).label("answer")), {}))
        Row(answer=42)
        """
        if self._loop_connections is not None:
            return await self._grouped_reads.run((prepared(statement, self.engine.dialect), params))
        if self.is_sqlite:
            return self.first(statement, params)
        # Another driver: on a worker thread.
        return await asyncio.get_running_loop().run_in_executor(None, self.first, statement, params)

    async def write(self, statement: ClauseElement, params: Mapping[str, Any]) -> None:
        """One statement, committed when this returns, for code on the event loop (a grant
        whose only write is its audit row): :meth:`write_all` of one.

        >>> import asyncio, pathlib, tempfile
        >>> from sqlalchemy import select
        >>> from tessera.idp.store.models import Tenant
        >>> database = Database(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'w.db'}")
        >>> database.upgrade()
        >>> add = Tenant.__table__.insert()
        >>> acme = {"id": "acme", "name": "Acme", "mfa_policy": "optional", "created_at": 0}
        >>> asyncio.run(database.write(add, acme))
        >>> database.first(select(Tenant.name), {})
        Row(name='Acme')
        """
        await self.write_all([(statement, params)])

    async def write_all(
        self, statements: Sequence[tuple[ClauseElement, Mapping[str, Any]]]
    ) -> list[int]:
        """``statements`` (each with its parameters) in one transaction, committed when this
        returns, for code on the event loop (an SSO hop's code and its session's note). The
        writes of requests that reach here at the same moment are committed together
        (:mod:`.grouped`): PostgreSQL's in one round trip on a connection of the loop's
        own (no ORM session, no worker thread); a SQLite file's in one transaction on the
        loop's kept connection, unless another writer holds the lock — then, like anything
        else, on a worker thread. If one request's writes fail, the others' are committed.
        Returns how many rows each statement changed."""
        dialect = self.engine.dialect
        return await self._grouped_writes.run(
            [(prepared(statement, dialect), params) for statement, params in statements]
        )

    async def _commit_writes(self, groups: Sequence[Sequence[Write]]) -> list[list[int]]:
        """Every write of ``groups`` in one transaction, all or none (:class:`.Grouped`'s
        commit); how many rows each changed, group by group."""
        writes = [write for group in groups for write in group]
        if self._loop_connections is not None:
            changed = await self._loop_connections.run_all(writes)
        else:
            try:
                if self._at_once is None:
                    raise WouldWait()
                changed = self._write_all(self.session_at_once, writes)
            except WouldWait:  # raised before anything was written
                changed = await asyncio.get_running_loop().run_in_executor(
                    None, self._write_all, self.session, writes
                )
        by_group, start = [], 0
        for group in groups:
            by_group.append(changed[start : start + len(group)])
            start += len(group)
        return by_group

    async def _read_all(self, reads: Sequence[Write]) -> list[Any | None]:
        """The first row (or ``None``) of each of ``reads`` (:class:`.Grouped`'s run)."""
        assert self._loop_connections is not None
        return await self._loop_connections.first_all(reads)

    @staticmethod
    def _write_all(transaction: Transaction, writes: Sequence[Write]) -> list[int]:
        with transaction() as session:
            return [compiled.in_transaction(session, params)[1] for compiled, params in writes]

    async def close_loop_connections(self) -> None:
        """Close the running loop's connections for :meth:`read` (its app is stopping)."""
        if self._loop_connections is not None:
            await self._loop_connections.close()

    @contextmanager
    def raw_connection(self) -> Iterator[Any]:
        """A DBAPI connection for one statement outside any transaction of SQLAlchemy's.

        A SQLite file is read on the calling thread's own connection, kept for it, so the
        event loop never waits for the pool (its connections may all be on worker threads);
        anything else borrows a pooled connection, returned (rolled back) afterwards.
        """
        if self._own_connections is None:
            pooled = self.engine.raw_connection()
            # PostgreSQL: one statement is its own transaction — no BEGIN before it, and no
            # ROLLBACK when the pool takes the connection back (two round trips fewer).
            autocommit = not self.is_sqlite
            driver: Any = pooled.driver_connection
            if autocommit:
                driver.autocommit = True
            try:
                yield pooled
            except BaseException:
                pooled.invalidate()  # the pool opens a fresh one rather than trust this one
                raise
            else:
                if autocommit:
                    driver.autocommit = False
            finally:
                pooled.close()
            return
        connection = getattr(self._own_connections, "connection", None)
        if connection is None:
            # Not the pool's: this thread's for as long as the thread lives.
            arguments, options = self.engine.dialect.create_connect_args(self.engine.url)
            connection = self.engine.dialect.connect(*arguments, **{**options, **_SQLITE_CONNECT})
            _sqlite_pragmas(connection, None)
            self._own_connections.connection = connection
        try:
            yield connection
        except BaseException:
            self._own_connections.connection = None
            connection.close()
            raise

    def checkpoint_in_background(self) -> None:
        """From now on, a commit never checkpoints a SQLite file's write-ahead log: a thread
        calls :meth:`checkpoint` instead (the app's, every ``CHECKPOINT_EVERY``). By default
        SQLite checkpoints in the commit that fills the log past 1,000 pages, which then waits
        for the copy and for the file's ``fsync`` — on the event loop, for its short writes
        (measured: a stall of ~14 ms every few hundred commits, a tenth of a loaded server's
        time). Call it before the first connection is made; nothing for PostgreSQL.
        """
        self._background_checkpoints = self._own_connections is not None  # a SQLite file

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the SQLite file, without waiting for or
        blocking any reader or writer (``PASSIVE``: frames still in use wait for the next
        call). A no-op for other databases.

        >>> import pathlib, tempfile
        >>> database = Database(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'c.db'}")
        >>> database.checkpoint_in_background(); database.upgrade(); database.checkpoint()
        """
        if self._own_connections is None:  # not a SQLite file
            return
        with self.raw_connection() as connection:
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error):  # another process's checkpoint is running
                    raise

    def _commits_checkpoint(self, connection: Any, _record: Any) -> None:
        if self._background_checkpoints:
            connection.execute("PRAGMA wal_autocheckpoint=0")

    def upgrade(self) -> None:
        """Run Alembic migrations up to head (idempotent; a database at head is only read).

        Nodes starting together migrate one at a time (SQLite's write lock, a PostgreSQL
        advisory lock); the others then find the schema at head.
        """
        if self.at_head():
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.execution_options(tessera_write=True).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def at_head(self) -> bool:
        """Whether the schema is the one this code expects (every migration applied), read
        without changing anything.

        >>> database = Database("sqlite://")
        >>> database.at_head()
        False
        >>> database.upgrade(); database.at_head()
        True
        """
        with self.engine.connect() as connection:
            if not inspect(connection).has_table(_VERSION_TABLE):  # never migrated
                return False
            return set(connection.execute(_RECORDED).scalars()) == {SCHEMA_HEAD}

    def _kept_connection(self) -> Connection:
        """This thread's connection for :meth:`session_at_once` and :meth:`write`, with its
        session, both made on first use."""
        assert self._at_once is not None
        connection: Connection | None = getattr(self._kept, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            spent, connection = connection, self._at_once.connect()
            self._kept.connection = connection
            self._kept.session = Session(bind=connection, expire_on_commit=False)
            with self._kept_lock:
                if spent in self._kept_all:
                    self._kept_all.remove(spent)
                self._kept_all.append(connection)
        return connection

    def _kept_session(self) -> Session:
        """This thread's session bound to its kept connection. It is closed (emptied) after
        each transaction and used again: making one costs more than the short write it is for
        (measured)."""
        self._kept_connection()
        return self._fresh(self._kept.session)

    def dispose(self) -> None:
        """Close every pooled connection (and each thread's kept one)."""
        with self._kept_lock:
            kept, self._kept_all = self._kept_all, []
        for connection in kept:
            connection.close()
        self.engine.dispose()


def _committed(session: Session) -> None:
    """Run what :func:`after_commit` registered, now that ``session`` has committed."""
    for callback in session.info.pop(AFTER_COMMIT, ()):
        callback()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # Switching a new file to WAL takes its lock from shared to exclusive; two processes doing
    # that at once deadlock, and SQLite refuses one at once instead of waiting: try again.
    for attempt in range(200):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 199:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_no_waiting(connection: Any, _record: Any) -> None:
    connection.execute("PRAGMA busy_timeout=0")


def _sqlite_begin(connection: Any) -> None:
    # SQLite allows one writer at a time; upgrading a read transaction to a write one later
    # fails with SQLITE_BUSY, so writers take the lock up front and readers never block them.
    writes = connection.get_execution_options().get("tessera_write", False)
    # On the driver's connection: every write transaction begins here, and SQLAlchemy's
    # execution machinery would cost more than the statement.
    statement = "BEGIN IMMEDIATE" if writes else "BEGIN"
    try:
        connection.connection.driver_connection.execute(statement)
    except sqlite3.Error as error:  # raised as SQLAlchemy raises it ("database is locked")
        raise DBAPIError.instance(statement, None, error, sqlite3.Error) from None
