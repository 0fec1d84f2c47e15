"""Shared fixtures for the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .services import migrated_database, postgres_schema

# Public test vectors (Wycheproof, the JOSE cookbook) live beside the project, not inside it.
VECTORS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The public test-vector directory; a missing directory fails the test, never skips it."""
    if not VECTORS_DIR.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS_DIR}")
    return VECTORS_DIR


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the newest migration with no row: a SQLite file, or a PostgreSQL schema —
    one never migrated when the test is marked ``unmigrated``."""
    if request.node.get_closest_marker("unmigrated") is None:
        with migrated_database(request.param, tmp_path) as url:
            yield url
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tessera.db'}"
    else:
        with postgres_schema() as url:
            yield url
