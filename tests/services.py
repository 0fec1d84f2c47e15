"""Real PostgreSQL and Redis for the tests: found on 127.0.0.1, isolated per test, never stopped
or flushed (CI and other work share them). A missing service fails the test; it never skips."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

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
    from sqlalchemy import create_engine

    require_postgres()
    schema = f"tessera_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
