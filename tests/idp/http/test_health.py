"""``/healthz`` and ``/readyz`` over real HTTP: ready on SQLite and PostgreSQL; not ready (503,
the failing checks, ``Retry-After``) when the schema is behind, no signing key is loaded, or the
configured Redis does not answer — and ready again once it is put right."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, text

from tessera.idp.store.models import SigningKey

from ...services import REDIS_URL, require_redis
from .servers import BOTH_DATABASES, IdpServer, serving

pytestmark = pytest.mark.idp(databases=BOTH_DATABASES)


def test_healthz_answers_while_the_process_lives(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_is_ready_with_every_check_passed(http: httpx.Client) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "keys": "ok"}}
    assert response.headers["cache-control"] == "no-store"
    assert "retry-after" not in response.headers


def test_readyz_is_not_ready_while_the_schema_is_behind(idp: IdpServer, http: httpx.Client) -> None:
    database = idp.provider.database
    with database.engine.begin() as connection:
        head = connection.execute(text("select version_num from alembic_version")).scalar_one()
        connection.execute(text("update alembic_version set version_num = 'older'"))
    try:
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json() == {
            "status": "not ready",
            "checks": {
                "database": "migrations not at head: run `tessera db upgrade`",
                "keys": "ok",
            },
        }
    finally:
        with database.engine.begin() as connection:
            connection.execute(text("update alembic_version set version_num = :v"), {"v": head})
    assert http.get("/readyz").status_code == 200


def test_readyz_is_not_ready_without_a_signing_key(tmp_path: Path) -> None:
    with serving("sqlite", tmp_path) as server, server.client() as http:
        with server.provider.database.session() as session:
            session.execute(delete(SigningKey))
        server.provider.keyring.reload()
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"database": "ok", "keys": "no signing key loaded"}


def test_readyz_checks_the_configured_redis(tmp_path: Path) -> None:
    require_redis()
    with serving("sqlite", tmp_path / "up", redis_url=REDIS_URL) as server, server.client() as http:
        response = http.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["redis"] == "ok"
    down = tmp_path / "down"
    down.mkdir()
    with (
        serving("sqlite", down, redis_url="redis://127.0.0.1:1/0") as server,
        server.client() as http,
    ):
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"database": "ok", "keys": "ok", "redis": "unreachable"}
        assert "127.0.0.1:1" not in response.text  # the reason names no address
