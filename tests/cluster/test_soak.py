"""Soak: mixed load (client_credentials grants, refresh chains, introspections, password logins)
on two nodes behind HAProxy for ``TESSERA_SOAK_SECONDS`` (12 in ``make test``; ``make soak``
runs 600) — and, after the warm-up, until housekeeping has purged what had expired before the
run. No request fails; each node's memory (RSS) ends within +10% of what it was after the
warm-up (the first quarter); and housekeeping keeps the tables from growing without bound: what
had expired before the run goes under load, and over a run of at least twice the tokens'
lifetime (``make soak``) every table but the audit log ends within 10% of its size at half-time.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from tessera.idp.store.database import Database
from tessera.idp.store.models import Base, RefreshFamily, RefreshToken, RevokedToken

from ..services import postgres_schema
from .cluster import TENANT, Cluster
from .conftest import running
from .invariants import check_families
from .load import Load

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("TESSERA_SOAK_SECONDS", "12"))
LIFETIME = 300  # seconds a refresh token and its family live here (the shortest allowed)
SOAK_SETTINGS = {
    "TESSERA_PURGE_INTERVAL": "10",
    "TESSERA_ACCESS_TOKEN_TTL": "60",
    "TESSERA_REFRESH_TOKEN_TTL": str(LIFETIME),
    "TESSERA_REFRESH_IDLE_TTL": str(LIFETIME),
}
GROWING = {"audit_events"}  # kept for their retention (days), by design


@pytest.fixture(scope="module")
def soaking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("soak")
    with postgres_schema() as url, running(directory, url, SOAK_SETTINGS) as cluster:
        yield cluster


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def row_counts(database: Database) -> dict[str, int]:
    with database.session(readonly=True) as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in Base.metadata.tables.items()
        }


def seed_expired(database: Database, user_id: str, client_id: str) -> None:
    """Rows already past their time, as a long-running provider accumulates them."""
    gone = int(time.time()) - 3600
    with database.session() as session:
        session.execute(
            insert(RevokedToken),
            [{"jti": f"expired-{n}", "tenant_id": TENANT, "expires_at": gone} for n in range(50)],
        )
        session.execute(
            insert(RefreshFamily),
            [
                {
                    "id": f"expired-family-{n}",
                    "tenant_id": TENANT,
                    "subject": user_id,
                    "user_id": user_id,
                    "client_id": client_id,
                    "scope": "orders:read",
                    "audience": "orders",
                    "amr": "pwd",
                    "auth_time": gone,
                    "created_at": gone,
                    "expires_at": gone,
                }
                for n in range(50)
            ],
        )
        session.execute(
            insert(RefreshToken),
            [
                {
                    "token_hash": f"{n:064x}",
                    "family_id": f"expired-family-{n}",
                    "created_at": gone,
                    "expires_at": gone,
                }
                for n in range(50)
            ],
        )


def expired_left(database: Database) -> int:
    """How many of the rows :func:`seed_expired` made are still there."""
    with database.session(readonly=True) as session:
        tokens = session.scalar(
            select(func.count()).select_from(RevokedToken).where(RevokedToken.jti.like("expired-%"))
        )
        families = session.scalar(
            select(func.count())
            .select_from(RefreshFamily)
            .where(RefreshFamily.id.like("expired-family-%"))
        )
    return int(tokens or 0) + int(families or 0)


def test_mixed_load_on_two_nodes_keeps_memory_and_tables_flat(soaking: Cluster) -> None:
    prepared = soaking.prepared
    database = Database(prepared.settings["TESSERA_DATABASE_URL"])
    try:
        seed_expired(database, prepared.user_id, prepared.app_id)
        memory: dict[str, dict[str, int]] = {}
        tables: dict[str, dict[str, int]] = {}

        def sample(label: str) -> None:
            memory[label] = {
                node.name: rss_kib(node.process.pid)
                for node in soaking.nodes
                if node.process is not None
            }
            tables[label] = row_counts(database)

        def warmed_up() -> None:
            sample("warm")
            threading.Timer(SECONDS / 4, sample, args=("half",)).start()
            # The load goes on while housekeeping (every 10 s) purges what had expired.
            deadline = time.monotonic() + 30
            while expired_left(database):
                assert time.monotonic() < deadline, "housekeeping never purged under load"
                time.sleep(0.2)

        load = Load(prepared, soaking.balancer.url, threads=8, mixed=True)
        load.run(SECONDS, during=warmed_up, at=SECONDS / 4)
        sample("end")

        kinds = Counter(answer.kind for answer in load.answers if answer.status == 200)
        print(  # shown by make soak (pytest -s): what the note of a long run reports
            f"\nsoak {SECONDS:.0f} s: {dict(kinds)} answered 200;"
            f" RSS KiB warm {memory['warm']} end {memory['end']};"
            f" rows half {tables['half']} end {tables['end']}"
        )
        assert set(kinds) == {"client_credentials", "refresh", "introspection", "password"}
        assert load.failures == [], Counter(answer.status for answer in load.failures)
        for name, warm in memory["warm"].items():
            assert memory["end"][name] <= warm * 1.10, (name, warm, memory["end"][name])
        if SECONDS >= 2 * LIFETIME:  # make soak: the second half is the steady state
            for name, count in tables["end"].items():
                if name not in GROWING:
                    assert count <= tables["half"][name] * 1.10 + 10, (name, tables)
        check_families(soaking)
    finally:
        database.engine.dispose()
