"""Readiness without HTTP: an unreachable database is a reason, never an exception."""

from __future__ import annotations

from tessera.idp.config import Settings
from tessera.idp.flows.readiness import readiness
from tessera.idp.provider import Provider


def test_an_unreachable_database_is_not_ready() -> None:
    provider = Provider(
        Settings(
            database_url="postgresql+psycopg://tessera@127.0.0.1:1/nowhere?connect_timeout=2",
            master_key="A" * 43,
        )
    )
    try:
        result = readiness(provider)
    finally:
        provider.close()
    assert not result.ready
    assert result.checks == {"database": "unreachable", "keys": "no signing key loaded"}
