"""The store: migrations on SQLite and PostgreSQL, idempotent, and the tables they make;
transactions that commit whole or not at all."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import IntegrityError

from tessera.idp.errors import AdminError
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import create_user
from tessera.idp.store.database import AFTER_COMMIT, Database, after_commit, text
from tessera.idp.store.models import RefreshFamily, RefreshToken, Tenant, User

from ..conftest import CHEAP_PASSWORDS, add_client, add_tenant, row_counts

LONG = "a long enough password"

# One node: wait for the common start time, then start (migrate, make sure a key exists).
NODE = """
import sys, time
from tessera.idp.config import Settings
from tessera.idp.provider import Provider
node = Provider(Settings(database_url=sys.argv[1], master_key="A" * 43))
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
node.start()
print(node.keyring.signing_key().kid)
node.close()
"""


@pytest.mark.unmigrated
def test_migrations_create_every_table_and_run_twice(database_url: str) -> None:
    database = Database(database_url)
    database.upgrade()
    database.upgrade()
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "tenants", "users", "clients", "signing_keys", "refresh_families", "refresh_tokens",
        "revoked_tokens", "subject_not_before", "audit_events", "locks", "alembic_version",
        "authorization_codes",
    } <= tables  # fmt: skip
    database.dispose()


@pytest.mark.unmigrated
def test_nodes_starting_together_on_an_empty_database_all_come_up_with_one_key(
    database_url: str,
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TESSERA_")}
    start_at = str(time.time() + 2.0)  # after every interpreter has imported everything
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", NODE, database_url, start_at],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [node.communicate(timeout=60) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0, 0], "\n".join(err for _, err in outputs)
    assert len({out.strip() for out, _ in outputs}) == 1  # every node signs with the same key
    database = Database(database_url)
    with database.session(readonly=True) as session:
        assert session.scalar(text("select count(*) from signing_keys")) == 1
        assert session.scalar(text("select count(*) from alembic_version")) == 1
    database.dispose()


def test_sqlite_file_is_owner_only_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "var" / "tessera.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with database.session(readonly=True) as session:
        assert session.scalar(text("PRAGMA journal_mode")) == "wal"
        assert session.scalar(text("PRAGMA foreign_keys")) == 1
    database.dispose()


def test_a_session_commits_on_success(provider: Provider) -> None:
    with provider.database.session() as session:
        session.add(Tenant(id="t1", name="T1", created_at=0))
    with provider.database.session(readonly=True) as session:
        assert session.get(Tenant, "t1") is not None


def test_a_session_rolls_back_everything_on_error(provider: Provider) -> None:
    before = row_counts(provider)

    def failing() -> None:
        with provider.database.session() as session:
            session.add(Tenant(id="t1", name="T1", created_at=0))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing()
    assert row_counts(provider) == before


def test_after_commit_runs_after_commit_and_never_after_rollback(provider: Provider) -> None:
    seen: list[str] = []
    with provider.database.session() as session:
        session.add(Tenant(id="t1", name="T1", created_at=0))
        after_commit(session, lambda: seen.append("committed"))
        assert seen == []
    assert seen == ["committed"]

    def rolled_back() -> None:
        with provider.database.session() as session:
            after_commit(session, lambda: seen.append("rolled back"))
            raise RuntimeError("boom")

    def failed_commit() -> None:
        with provider.database.session() as session:
            session.add(Tenant(id="t1", name="duplicate", created_at=0))
            after_commit(session, lambda: seen.append("failed commit"))

    with pytest.raises(RuntimeError, match="boom"):
        rolled_back()
    with pytest.raises(IntegrityError):
        failed_commit()
    assert seen == ["committed"]


def test_usernames_are_unique_per_tenant_ignoring_case(provider: Provider) -> None:
    add_tenant(provider, "acme")
    add_tenant(provider, "other")
    with provider.database.session() as session:
        ada = create_user(
            session,
            CHEAP_PASSWORDS,
            tenant_id="acme",
            username="Ada",
            password=LONG,
            email="Ada@Example.com",
        )
        ada_id = ada.id
    for username, email in ((" ADA ", None), ("ada2", "ADA@example.COM")):
        with pytest.raises(AdminError) as refused, provider.database.session() as session:
            create_user(
                session,
                CHEAP_PASSWORDS,
                tenant_id="acme",
                username=username,
                password=LONG,
                email=email,
            )
        assert refused.value.code == "conflict"
    # The database holds the line too, should two nodes race past the service's check.
    for column, value in (("username_key", "ada"), ("email_key", "ada@example.com")):
        with provider.database.session(readonly=True) as session:
            clone = {c.key: getattr(session.get(User, ada_id), c.key) for c in User.__table__.c}
        clone.update({"id": "clone", "username_key": "other", "email_key": None, column: value})
        with pytest.raises(IntegrityError), provider.database.session() as session:
            session.add(User(**clone))
    with provider.database.session() as session:
        create_user(
            session,
            CHEAP_PASSWORDS,
            tenant_id="other",
            username="ada",
            password=LONG,
            email="ada@example.com",
        )
    assert row_counts(provider)["users"] == 2


def test_deleting_a_family_deletes_its_tokens(provider: Provider) -> None:
    add_tenant(provider, "acme")
    client = add_client(provider, "acme")
    now = int(time.time())
    with provider.database.session() as session:
        provider.refresh.start(
            session,
            tenant_id="acme",
            subject=client.id,
            client_id=client.id,
            scope="",
            audience="api",
            now=now,
        )
    with provider.database.session() as session:
        session.execute(delete(RefreshFamily))
    with provider.database.session(readonly=True) as session:
        assert list(session.scalars(select(RefreshToken))) == []


def test_rows_need_their_tenant(provider: Provider) -> None:
    with pytest.raises(IntegrityError):
        add_client(provider, "no-such-tenant")


def test_migrations_match_the_models(database_url: str) -> None:
    """What Alembic builds is exactly what the models declare: nothing left to autogenerate."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tessera.idp.store.models import Base

    database = Database(database_url)
    database.upgrade()
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    database.dispose()
    assert differences == []


def _write_pages(database: Database, transactions: int) -> None:
    """``transactions`` short writes of ~5 pages each (a 16 KiB row and its overflow)."""
    for number in range(transactions):
        with database.session_at_once() as session:
            session.add(Tenant(id=f"t{number}", name="x" * 16_384, created_at=0))


@pytest.mark.parametrize("background", [False, True])
def test_commits_leave_the_wal_to_the_background_checkpoint(
    tmp_path: Path, background: bool
) -> None:
    path = tmp_path / "tessera.db"
    database = Database(f"sqlite:///{path}")
    if background:
        database.checkpoint_in_background()
    database.upgrade()
    database.checkpoint()
    before = path.stat().st_size
    _write_pages(database, 400)  # ~2,000 pages: past SQLite's own 1,000-page checkpoint
    grown = path.stat().st_size - before
    wal = Path(f"{path}-wal").stat().st_size
    if background:  # nothing reached the file yet: it is all in the log
        assert grown == 0 and wal > 1000 * 4096
        database.checkpoint()
        assert path.stat().st_size - before > 1000 * 4096
    else:  # SQLite checkpointed in some commit, and restarted its log
        assert grown > 500 * 4096 and wal < 1100 * 4096
    with database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 400
    database.dispose()


def test_a_short_write_starts_clean_after_one_that_failed(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tessera.db'}")
    database.upgrade()
    seen: list[str] = []

    def failing() -> None:
        with database.session_at_once() as session:
            session.add(Tenant(id="t1", name="T1", created_at=0))
            session.add(Tenant(id="t1", name="again", created_at=0))
            after_commit(session, lambda: seen.append("failed"))

    with pytest.raises(IntegrityError):
        failing()
    with database.session_at_once() as session:  # the thread's session, used again
        assert list(session) == [] and AFTER_COMMIT not in session.info
        session.add(Tenant(id="t2", name="T2", created_at=0))
        after_commit(session, lambda: seen.append("committed"))
    assert seen == ["committed"]
    with database.session(readonly=True) as session:
        assert session.scalars(select(Tenant.id)).all() == ["t2"]
    database.dispose()


def test_a_thread_uses_its_closed_sessions_again_and_nests_them(provider: Provider) -> None:
    database = provider.database
    with database.session() as first:
        after_commit(first, lambda: None)
        with database.session() as inner:  # a transaction inside another: its own session
            assert inner is not first
            inner.add(Tenant(id="inner", name="Inner", created_at=0))
        first.add(Tenant(id="outer", name="Outer", created_at=0))
    with database.session() as again:  # the last one closed, emptied and used again
        assert again in (first, inner)
        assert list(again) == [] and AFTER_COMMIT not in again.info
        assert set(again.scalars(select(Tenant.id))) >= {"inner", "outer"}
