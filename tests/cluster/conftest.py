"""Two ``tessera serve`` nodes behind HAProxy, on a Redis of their own (the tests stop and
restart it) and a PostgreSQL schema of their own — or a PostgreSQL server of their own, for the
tests that restart it. One cluster per test module. Without PostgreSQL, Redis or HAProxy these
tests fail — they are never skipped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ..guard.servers import RedisProcess
from ..services import postgres_schema
from .cluster import Balancer, Cluster, Node, PostgresProcess, prepare


@contextmanager
def running(
    directory: Path, database_url: str, extra: dict[str, str] | None = None
) -> Iterator[Cluster]:
    if shutil.which("haproxy") is None and shutil.which("/usr/sbin/haproxy") is None:
        pytest.fail("HAProxy is required (Debian's haproxy: bash tools/ensure-peers.sh)")
    redis_server = RedisProcess().start()
    balancer = Balancer(directory)
    nodes: list[Node] = []
    try:
        prepared = prepare(database_url, redis_server.url, balancer.url, directory, extra)
        nodes = [Node(name, directory, prepared.settings) for name in ("a", "b")]
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        balancer.start(nodes)
        cluster = Cluster(prepared, nodes, balancer, redis_server)
        cluster.wait_balanced()
        yield cluster
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()
        redis_server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("cluster")
    with postgres_schema() as database_url, running(directory, database_url) as started:
        yield started


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresProcess]:
    server = PostgresProcess().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def cluster_on_own_postgres(
    tmp_path_factory: pytest.TempPathFactory, own_postgres: PostgresProcess
) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("cluster"), own_postgres.url) as started:
        yield started
