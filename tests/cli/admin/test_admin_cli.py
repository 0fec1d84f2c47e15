"""``tessera admin`` as an operator runs it: the installed executable in a process of its own,
and what goes wrong before any change — wrong master key, bad settings, no database, bytes that
are not text — each one clean line and an exit code, never a traceback or a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tessera.idp.provider import Provider
from tessera.jose import b64

from ...services import postgres_schema
from .conftest import (
    ACTOR,
    MASTER_KEY,
    OPERATOR,
    PASSWORD,
    Admin,
    add_tenant,
    admin_changes,
    admin_command,
    configure,
    database_text,
    document,
    events,
    ok,
    refused,
)

TESSERA = Path(sys.executable).parent / "tessera"


def run(
    database_url: str, *args: str | bytes, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``tessera admin ARGS`` as a process, configured by its environment only."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TESSERA_")}
    env.update(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_MASTER_KEY=MASTER_KEY,
        TESSERA_ARGON2_MEMORY_KIB="8",
        TESSERA_ARGON2_TIME_COST="1",
        LOGNAME=OPERATOR,
        COLUMNS="120",
    )
    return subprocess.run(
        [str(TESSERA), "admin", *args], input=input, env=env, capture_output=True, timeout=60
    )


@pytest.mark.slow
def test_the_installed_executable(database_url: str, tmp_path: Path) -> None:
    created = run(database_url, "tenant", "create", "acme", "--name", "Acme", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["id"] == "acme"

    user = run(
        database_url,
        "user",
        "create",
        "-t",
        "acme",
        "ada",
        "--password-stdin",
        "--json",
        input=PASSWORD.encode() + b"\n",
    )
    assert user.returncode == 0, user.stderr
    assert json.loads(user.stdout)["username"] == "ada"
    assert PASSWORD.encode() not in user.stdout + user.stderr

    client = run(
        database_url,
        "client",
        "create",
        "-t",
        "acme",
        "--name",
        "Billing",
        "--grant",
        "client_credentials",
        "--audience",
        "billing-api",
    )
    assert client.returncode == 0, client.stderr
    assert client.stdout.count(b"client secret (shown once): ") == 1

    missing = run(database_url, "user", "show", "-t", "acme", "-u", "nobody")
    assert (missing.returncode, missing.stdout) == (3, b"")
    assert missing.stderr.decode().strip() == "error: no such user"

    not_text = run(database_url, "tenant", "create", "acme2", "--name", b"Acme \xff")
    assert (not_text.returncode, not_text.stdout) == (2, b"")
    assert not_text.stderr.decode().strip() == "error: an argument is not valid UTF-8 text"
    for result in (missing, not_text):
        assert b"Traceback" not in result.stderr


def test_a_master_key_other_than_the_servers_changes_nothing(
    admin: Admin, provider: Provider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_tenant(admin)
    before = database_text(provider)
    monkeypatch.setenv("TESSERA_MASTER_KEY", b64.encode_str(bytes(32)))
    message = "the master key does not open this database's signing keys; use the server's"
    refused(admin("tenant", "create", "beta"), 2, message)
    refused(admin("client", "rotate-secret", "-t", "acme", "x"), 2, message)
    monkeypatch.setenv("TESSERA_MASTER_KEY", "not base64url!")
    refused(admin("tenant", "list"), 2, "TESSERA_MASTER_KEY is not base64url")
    assert database_text(provider) == before  # not even a signing key sealed under it


def test_invalid_settings_are_one_line(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_ACCESS_TOKEN_TTL", "5")
    result = admin("tenant", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid settings: access_token_ttl: ")
    assert len(result.stderr.strip().splitlines()) == 1
    as_json = admin("tenant", "list", "--json")
    assert json.loads(as_json.stdout)["code"] == "invalid_settings"


def test_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql+psycopg://tessera:a-db-password@127.0.0.1:1/test?connect_timeout=2"
    configure(monkeypatch, url, tmp_path)
    result = admin_command()("tenant", "list")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: cannot use the database (OperationalError): ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "a-db-password" not in result.output


def test_a_value_too_long_for_its_column_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with postgres_schema() as url:
        configure(monkeypatch, url, tmp_path)
        admin = admin_command()
        add_tenant(admin)
        audiences = [item for n in range(3) for item in ("--audience", str(n) * 200)]
        result = admin(
            "client",
            "create",
            "-t",
            "acme",
            "--name",
            "x",
            "--grant",
            "client_credentials",
            *audiences,
        )
        refused(result, 2, "a client's audiences take at most 500 characters together")


def test_every_change_names_the_operator(admin: Admin, provider: Provider) -> None:
    add_tenant(admin, "acme", "member")
    answer = document(
        admin(
            "client",
            "create",
            "-t",
            "acme",
            "--name",
            "x",
            "--grant",
            "client_credentials",
            "--audience",
            "api",
            "--json",
        )
    )
    assert {actor for _, _, actor in admin_changes(provider)} == {ACTOR}
    assert all(row.ip is None for row in events(provider, "client.created"))
    assert answer["client_secret"] not in database_text(provider)


@pytest.mark.unmigrated
@pytest.mark.parametrize(
    "command",
    [
        ("tenant", "list"),
        ("tenant", "show", "acme"),
        ("user", "list", "-t", "acme"),
        ("role", "list", "-t", "acme"),
        ("client", "list", "-t", "acme"),
    ],
    ids=" ".join,
)
def test_a_read_only_command_never_migrates(
    admin: Admin, environment: str, command: tuple[str, ...]
) -> None:
    """``list`` and ``show`` change nothing, not even the schema: on a database that was never
    migrated they stop and say what to run, and the database stays empty."""
    refused(
        admin(*command),
        2,
        "the database is not at the current schema: run `tessera db upgrade`"
        " (or start the server) first",
    )
    assert inspect(create_engine(environment)).get_table_names() == []
    ok(admin("tenant", "create", "acme"))  # a change migrates, then reading works
    ok(admin(*command))
