"""End to end: a real provider (uvicorn, ephemeral port) and real APIs guarded by tessera.guard.

Storage-dependent flows run on SQLite and on PostgreSQL (127.0.0.1:5432, database ``test``);
revocation fan-out on the shared Redis (127.0.0.1:6379) under a key prefix of the test's own,
whose keys the test deletes afterwards. A missing service fails the test; it never skips, and
nothing here stops or flushes the shared PostgreSQL or Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import redis

from tessera.guard.revocation import RevocationList
from tessera.guard.revocation_redis import RedisRevocationList

from ..idp.http.servers import IdpServer, serving
from ..services import REDIS_URL, require_redis
from .api import ProtectedApi


@pytest.fixture
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    """A fresh provider on its own SQLite file."""
    with serving("sqlite", tmp_path_factory.mktemp("e2e")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def any_idp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdpServer]:
    """A fresh provider on SQLite, then on a PostgreSQL schema of its own."""
    with serving(request.param, tmp_path_factory.mktemp("e2e")) as server:
        yield server


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    require_redis()
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    client.ping()
    prefix = f"test:e2e:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        own = list(client.scan_iter(match=prefix + "*"))
        if own:
            client.delete(*own)
        client.close()


@pytest.fixture
def redis_idp(tmp_path_factory: pytest.TempPathFactory, redis_prefix: str) -> Iterator[IdpServer]:
    """A provider that publishes its revocations to Redis under ``redis_prefix``."""
    with serving(
        "sqlite",
        tmp_path_factory.mktemp("e2e"),
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
    ) as server:
        yield server


@pytest.fixture
def redis_revocations(redis_prefix: str) -> Iterator[RedisRevocationList]:
    """A guard-side Redis revocation list, subscribed and in sync."""
    revocations = RedisRevocationList(REDIS_URL, prefix=redis_prefix).start(wait=5)
    try:
        assert revocations.in_sync, "the Redis revocation list did not sync"
        yield revocations
    finally:
        revocations.close()


ApiFactory = Callable[..., ProtectedApi]


@pytest.fixture
def protected_api() -> Iterator[ApiFactory]:
    """Start APIs guarded for an issuer; every one is stopped at the end of the test."""
    with ExitStack() as stack:

        def start(issuer: str, *, revocation: RevocationList | None = None) -> ProtectedApi:
            api = ProtectedApi(issuer, revocation=revocation).start()
            stack.callback(api.stop)
            return api

        yield start
