"""Fixtures for ``tessera admin``: the real command in-process, against a real SQLite file and
a real PostgreSQL schema, configured as an operator would — by ``TESSERA_*`` variables."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import redis
from sqlalchemy import select
from typer.testing import CliRunner, Result

from tessera.cli.main import app
from tessera.idp.config import Settings
from tessera.idp.provider import Provider
from tessera.idp.services import mfa
from tessera.idp.services.accounts import find_user_by_name
from tessera.idp.services.audit import Context
from tessera.idp.store.models import AuditEvent, Base
from tessera.jose import b64

from ...services import REDIS_URL, require_redis
from ..conftest import PLAIN_TERMINAL

OPERATOR = "ops-ada"
ACTOR = f"cli:{OPERATOR}"
MASTER_KEY = b64.encode_str(bytes(range(32)))
PASSWORD = "correct horse battery staple"

Admin = Callable[..., Result]


def configure(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, **extra: str
) -> None:
    """The settings of a deployment, as environment variables (cheap argon2 unless overridden:
    the tests that are about passwords pass the OWASP parameters)."""
    for name in list(os.environ):
        if name.startswith("TESSERA_"):
            monkeypatch.delenv(name)
    values = {
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_MASTER_KEY": MASTER_KEY,
        "TESSERA_MASTER_KEY_FILE": str(tmp_path / "unused-master.key"),
        "TESSERA_ISSUER": "https://id.example",
        "TESSERA_ARGON2_MEMORY_KIB": "8",
        "TESSERA_ARGON2_TIME_COST": "1",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    # getpass.getuser() reads LOGNAME first: the audit rows name this operator.
    monkeypatch.setenv("LOGNAME", OPERATOR)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    """The operator's environment for ``database_url``; returns the URL."""
    configure(monkeypatch, database_url, tmp_path)
    return database_url


def admin_command() -> Admin:
    """Run ``tessera admin ARGS`` in-process (stdin from ``input``), in the environment of
    the moment."""
    runner = CliRunner(env=PLAIN_TERMINAL)

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, ["admin", *args], input=input)

    return run


@pytest.fixture
def admin(environment: str) -> Admin:
    """``tessera admin`` on the test's database."""
    return admin_command()


@pytest.fixture
def provider(environment: str) -> Iterator[Provider]:
    """The provider the server would run on the same database, to look at what was written."""
    started = Provider(Settings())
    started.start()
    try:
        yield started
    finally:
        started.close()


def ok(result: Result) -> Result:
    """The result of a command that must succeed."""
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def document(result: Result) -> dict[str, Any]:
    """The one JSON document a successful ``--json`` command printed."""
    answer: dict[str, Any] = json.loads(ok(result).stdout)
    return answer


def refused(result: Result, exit_code: int, message: str) -> None:
    """A clean refusal: this exit code, nothing on stdout, one line on stderr holding
    ``message``, no traceback."""
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == f"error: {message}"


def events(provider: Provider, *names: str) -> list[AuditEvent]:
    """The audit rows of these events (every row if none is named), oldest first."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if names:
        query = query.where(AuditEvent.event.in_(names))
    with provider.database.session(readonly=True) as session:
        return list(session.scalars(query))


def admin_changes(provider: Provider) -> list[tuple[str, str, str | None]]:
    """(event, tenant, actor) of every audit row but the provider's own key management."""
    return [
        (row.event, row.tenant_id, row.actor)
        for row in events(provider)
        if not row.event.startswith("key.")
    ]


def database_text(provider: Provider) -> str:
    """Every value of every row, as one text: to show that a secret was not stored."""
    with provider.database.session(readonly=True) as session:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table))
        )


def add_tenant(admin: Admin, tenant_id: str = "acme", *roles: str) -> None:
    """A tenant (with its ``admin`` role) and, for each name in ``roles``, a role of that name
    allowed ``read`` and ``write``."""
    ok(admin("tenant", "create", tenant_id))
    for role in roles:
        ok(admin("role", "create", "-t", tenant_id, role, "-p", "read write"))


def add_user(
    admin: Admin, username: str = "ada", *options: str, tenant_id: str = "acme"
) -> dict[str, Any]:
    """A user made through the command line; its JSON document."""
    return document(
        admin(
            "user",
            "create",
            "-t",
            tenant_id,
            username,
            "--password-stdin",
            "--json",
            *options,
            input=PASSWORD + "\n",
        )
    )


@pytest.fixture
def redis_names() -> Iterator[dict[str, str]]:
    """Key prefixes of this test's own on the shared Redis (throttle counters, revocation
    fan-out) as ``TESSERA_*`` settings; their keys are deleted afterwards."""
    require_redis()
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    name = f"test:cli-admin:{uuid.uuid4().hex}:"
    try:
        yield {
            "TESSERA_REDIS_URL": REDIS_URL,
            "TESSERA_THROTTLE_PREFIX": name + "throttle:",
            "TESSERA_REDIS_PREFIX": name + "revocation:",
        }
    finally:
        own = list(client.scan_iter(match=name + "*"))
        if own:
            client.delete(*own)
        client.close()


def enrol_totp(provider: Provider, tenant_id: str, username: str) -> None:
    """Give a user a confirmed TOTP factor (codes computed at a fixed time)."""
    moment = 1_700_000_000
    with provider.database.session() as session:
        user = find_user_by_name(session, tenant_id, username)
        enrolment = mfa.start_enrolment(
            session, provider.master, user, issuer_name="Tessera", context=Context(), now=moment
        )
        code = pyotp.TOTP(enrolment.secret, digits=mfa.DIGITS, interval=mfa.STEP).at(moment)
        codes = mfa.confirm_enrolment(
            session, provider.master, user, code, context=Context(), now=moment
        )
        assert codes is not None
