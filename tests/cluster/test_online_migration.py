"""Upgrades without downtime: a node of the previous release (its code taken from this
repository's history, the commit before the newest migration) keeps serving while this
release's ``tessera db upgrade`` applies that migration — not one request fails. And every
migration since the rule was written only expands the schema (the README's expand/contract)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from tessera.idp.store.database import Database

from ..services import postgres_schema
from .cluster import TESSERA, Node, prepare
from .load import Load

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "src/tessera/idp/store/migrations/versions"
FIRST_EXPAND_ONLY = "0008"  # migrations from here on follow the rule
EXPANDING = {"create_table", "add_column", "create_index"}


def newest_migration() -> Path:
    return sorted(VERSIONS.glob("0*.py"))[-1]


def git(*arguments: str) -> bytes:
    done = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, (arguments, done.stderr.decode())
    return done.stdout


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as it was just before the newest migration was added (from git history)."""
    newest = newest_migration().relative_to(ROOT).as_posix()
    added = git("log", "--diff-filter=A", "--format=%H", "--", newest).split()
    assert added, f"{newest} is not committed: the previous release is the commit before it"
    directory = tmp_path_factory.mktemp("previous")
    archive = git("archive", "--format=tar", f"{added[-1].decode()}^", "src")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    assert not (
        directory / "src/tessera/idp/store/migrations/versions" / Path(newest).name
    ).exists()
    return directory / "src"


@pytest.fixture
def database_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def heads(url: str) -> str:
    """The revision the database is at."""
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            return str(
                connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            )
    finally:
        database.engine.dispose()


def test_a_node_of_the_previous_release_serves_through_the_upgrade(
    previous_release: Path, database_url: str, tmp_path: Path
) -> None:
    old = {"PYTHONPATH": str(previous_release)}
    prepared = prepare(database_url, "redis://127.0.0.1:1/0", "http://127.0.0.1:1", tmp_path)
    # prepare() made the schema with this release's code: take it back to the previous head,
    # as the previous release left it, with this release's own downgrade.
    newest = newest_migration().stem.split("_")[0]
    previous = f"{int(newest) - 1:04d}"
    settings = {k: v for k, v in prepared.settings.items() if k != "TESSERA_REDIS_URL"}
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    environment.update(settings)
    downgrade(database_url, previous)
    assert heads(database_url) == previous
    node = Node("previous", tmp_path, {**settings, **old})
    node.start().wait_ready()
    try:
        running = subprocess.run(
            [sys.executable, "-c", "import tessera, sys; print(tessera.__file__)"],
            env={**environment, **old},
            capture_output=True,
            text=True,
            check=True,
        )
        assert running.stdout.startswith(str(previous_release))  # the old code, really

        def upgrade() -> None:
            done = subprocess.run(
                [str(TESSERA), "db", "upgrade"], env=environment, capture_output=True, timeout=120
            )
            assert done.returncode == 0, done.stderr.decode()

        load = Load(prepared, node.url)
        load.run(3.0, during=upgrade, at=0.8)
        statuses = Counter(answer.status for answer in load.answers)
        assert set(statuses) == {200}, statuses  # zero failed requests
        assert heads(database_url) == newest
    finally:
        node.stop()


def downgrade(url: str, revision: str) -> None:
    database = Database(url)
    config = Config()
    config.set_main_option("script_location", str(VERSIONS.parent))
    try:
        with database.engine.execution_options(tessera_write=True).begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        database.engine.dispose()


def test_every_migration_since_the_rule_only_expands() -> None:
    """Contract steps (drop, rename, alter, raw SQL) wait for a later release; a new column is
    nullable or has a default, so the previous release's inserts still work."""
    checked = []
    for path in sorted(VERSIONS.glob("0*.py")):
        if path.name[:4] < FIRST_EXPAND_ONLY:
            continue
        tree = ast.parse(path.read_text())
        upgrade = next(
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
        )
        for call in ast.walk(upgrade):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                owner = call.func.value
                if isinstance(owner, ast.Name) and owner.id == "op":
                    assert call.func.attr in EXPANDING, f"{path.name}: op.{call.func.attr}"
                    if call.func.attr == "add_column":
                        column = ast.unparse(call.args[1])
                        assert "nullable=True" in column or "server_default" in column, column
        checked.append(path.name)
    assert newest_migration().name in checked
