"""Real PostgreSQL and Redis for the tests: found on 127.0.0.1, isolated per test, never stopped
or flushed (CI and other work share them). A missing service fails the test; it never skips."""

from __future__ import annotations

import atexit
import os
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sqlalchemy import Engine

POSTGRES_URL = os.environ.get(
    "TESSERA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TESSERA_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    """Fail (never skip) when PostgreSQL is not there; CI=true runs must have it."""
    if not _reachable("127.0.0.1", 5432):
        pytest.fail(
            "PostgreSQL is required at 127.0.0.1:5432 (database 'test', trust auth)"
            + (" — CI=true" if os.environ.get("CI") == "true" else "")
        )


def require_redis() -> None:
    """Fail (never skip) when Redis is not there; CI=true runs must have it."""
    if not _reachable("127.0.0.1", 6379):
        pytest.fail(
            "Redis is required at 127.0.0.1:6379"
            + (" — CI=true" if os.environ.get("CI") == "true" else "")
        )


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose tables live in a fresh schema, dropped afterwards."""
    require_postgres()
    schema = _new_schema()
    try:
        yield _schema_url(schema)
    finally:
        _drop_schema(schema)


@contextmanager
def migrated_database(kind: str, directory: Path) -> Iterator[str]:
    """A database at the newest migration holding no row: a SQLite file in ``directory``, or a
    PostgreSQL schema of its own for the test's duration (``kind``: "sqlite" or "postgresql").

    Migrating takes ~60 ms on SQLite and ~200 ms on PostgreSQL, a thousand times each in the
    suite; so each test process migrates once: a SQLite file it copies, and PostgreSQL schemas
    it empties after each test (a DELETE of every table and a sequence restart, a few ms) and
    hands to the next. A schema a test left in another shape is dropped, never handed on.
    """
    if kind == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "tessera.db"
        source, copy = sqlite3.connect(_sqlite_template()), sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        yield f"sqlite:///{target}"
        return
    require_postgres()
    schema = _SCHEMAS.pop() if _SCHEMAS else _new_migrated_schema()
    try:
        yield _schema_url(schema)
    finally:
        if _emptied(schema):
            _SCHEMAS.append(schema)
        else:
            _drop_schema(schema)


_SCHEMAS: list[str] = []  # this process's migrated, empty PostgreSQL schemas


@cache
def _admin() -> Engine:
    """This process's connection to the test database, for the schemas above."""
    from sqlalchemy import create_engine

    return create_engine(POSTGRES_URL, pool_size=1)


@cache
def _sqlite_template() -> Path:
    """This process's migrated SQLite file."""
    from tessera.idp.store.database import Database

    path = Path(tempfile.mkdtemp(prefix="tessera-template-")) / "migrated.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    return path


def _schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def _new_schema() -> str:
    schema = f"tessera_test_{uuid.uuid4().hex[:12]}"
    with _admin().begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    return schema


def _new_migrated_schema() -> str:
    from tessera.idp.store.database import Database

    schema = _new_schema()
    database = Database(_schema_url(schema))
    try:
        database.upgrade()
    finally:
        database.dispose()
    return schema


def _emptied(schema: str) -> bool:
    """Delete every row of the schema's tables (children first) and restart its sequences;
    False when it is not as migrations left it (another revision, a table the models do not
    know) or cannot be emptied now (a test's connection still holds a row lock)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from tessera.idp.store.models import Base

    try:
        with _admin().begin() as connection:
            connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
            connection.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
            tables = set(
                connection.scalars(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            )
            known = {table.name for table in Base.metadata.sorted_tables}
            if tables != known | {"alembic_version"}:
                return False
            revision = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
            if revision != _head():
                return False
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
            for sequence in connection.scalars(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            ):
                connection.exec_driver_sql(f'ALTER SEQUENCE "{sequence}" RESTART')
        return True
    except SQLAlchemyError:
        return False


def _head() -> frozenset[str]:
    """The newest revision of the migrations (held to Alembic's answer by test_migrations)."""
    from tessera.idp.store.database import SCHEMA_HEAD

    return frozenset({SCHEMA_HEAD})


def _drop_schema(schema: str) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with _admin().begin() as connection:
            connection.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except SQLAlchemyError:
        pass  # a test's leftover connection still locks it: left behind, like a crashed run's


@atexit.register
def _drop_spare_schemas() -> None:
    while _SCHEMAS:
        _drop_schema(_SCHEMAS.pop())
    if _admin.cache_info().currsize:
        _admin().dispose()
