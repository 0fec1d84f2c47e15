"""Fixtures for the identity provider: every storage test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from tessera.idp.config import Settings
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import create_user
from tessera.idp.services.clients import create_client
from tessera.idp.services.passwords import Passwords
from tessera.idp.services.rbac import create_role
from tessera.idp.services.tenants import create_tenant
from tessera.idp.store.models import AuditEvent, Base, Client, Role, User
from tessera.jose import b64

from ..services import REDIS_URL, require_redis

ISSUER = "https://id.example"
TENANT = "acme"
AUDIENCE = "https://api.example"


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test provider: its own master key, no bootstrap, Secure cookies off."""
    values: dict[str, object] = {
        "database_url": database_url,
        "issuer": ISSUER,
        "master_key": b64.encode_str(bytes(range(32))),
        "master_key_file": tmp_path / "master.key",
        "cookie_secure": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def provider(settings: Settings) -> Iterator[Provider]:
    """A started provider (migrated, with a signing key) on the test database."""
    started = Provider(settings)
    started.start()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def make_provider() -> Iterator[Callable[[Settings], Provider]]:
    """Start more providers ("nodes") on a database; each is closed after the test."""
    started: list[Provider] = []

    def make(settings: Settings) -> Provider:
        node = Provider(settings)
        node.start()
        started.append(node)
        return node

    yield make
    for node in started:
        node.close()


# ---------------------------------------------------------------------- accounts and clients


CHEAP_PASSWORDS = Passwords(memory_kib=8, time_cost=1)


@pytest.fixture
def cheap_passwords(provider: Provider) -> Provider:
    """The provider with low-cost argon2id, for tests that log users in but are not about
    passwords (the password tests keep the OWASP parameters)."""
    provider.use_passwords(CHEAP_PASSWORDS)
    return provider


@pytest.fixture
def tenant(provider: Provider) -> str:
    """The tenant the tests' clients and users live in."""
    add_tenant(provider, TENANT)
    return TENANT


MEMBER_PERMISSIONS = ("read", "write", "profile")


def add_tenant(provider: Provider, tenant_id: str) -> None:
    """A tenant with its ``admin`` role and a ``member`` role allowed the tests' scopes."""
    with provider.database.session() as session:
        create_tenant(session, tenant_id=tenant_id, name=tenant_id.title())
        create_role(session, tenant_id=tenant_id, name="member", permissions=MEMBER_PERMISSIONS)


@dataclass(frozen=True)
class Registered:
    """A client as a test sees it: id, secret in clear (None if public), tenant."""

    id: str
    secret: str | None
    tenant_id: str

    @property
    def basic(self) -> tuple[str, str]:
        assert self.secret is not None
        return (self.id, self.secret)


def add_client(
    provider: Provider,
    tenant_id: str = TENANT,
    *,
    grant_types: tuple[str, ...] = ("client_credentials",),
    allowed_scopes: tuple[str, ...] = ("read", "write"),
    default_scopes: tuple[str, ...] = ("read",),
    audience: tuple[str, ...] = (AUDIENCE,),
    first_party: bool = False,
    confidential: bool = True,
    client_id: str | None = None,
    redirect_uris: tuple[str, ...] = (),
) -> Registered:
    with provider.database.session() as session:
        made = create_client(
            session,
            provider.master,
            tenant_id=tenant_id,
            name="test client",
            grant_types=grant_types,
            audience=audience,
            allowed_scopes=allowed_scopes,
            default_scopes=default_scopes,
            first_party=first_party,
            confidential=confidential,
            client_id=client_id,
            redirect_uris=redirect_uris,
        )
        return Registered(made.client.id, made.secret, tenant_id)


def add_user(
    provider: Provider,
    tenant_id: str = TENANT,
    *,
    username: str = "ada",
    password: str = "correct horse battery staple",
    roles: tuple[str, ...] = ("member",),
    passwords: Passwords | None = None,
) -> User:
    """A user holding ``roles`` (made, without permissions, when the tenant lacks them); the
    password hashed by ``passwords`` (default: the provider's hasher)."""
    with provider.database.session() as session:
        for name in roles:
            if not session.scalar(
                select(Role.id).where(Role.tenant_id == tenant_id, Role.name == name)
            ):
                create_role(session, tenant_id=tenant_id, name=name)
        return create_user(
            session,
            passwords or provider.passwords,
            tenant_id=tenant_id,
            username=username,
            password=password,
            roles=roles,
            policy=provider.password_policy,
        )


def set_user_status(provider: Provider, user_id: str, status: str) -> None:
    with provider.database.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.status = status


def first_party_client(provider: Provider, tenant_id: str = TENANT) -> Registered:
    """A confidential first-party client allowed the password and refresh_token grants."""
    return add_client(
        provider,
        tenant_id,
        grant_types=("password", "refresh_token"),
        first_party=True,
    )


# ---------------------------------------------------------------------- looking at the database


def row_counts(provider: Provider) -> dict[str, int]:
    """How many rows every table holds."""
    with provider.database.session(readonly=True) as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in Base.metadata.tables.items()
        }


def all_rows(provider: Provider) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as plain tuples."""
    with provider.database.session(readonly=True) as session:
        return {
            name: [tuple(row) for row in session.execute(select(table))]
            for name, table in Base.metadata.tables.items()
        }


def audit_events(provider: Provider) -> list[AuditEvent]:
    """Every audit row, oldest first."""
    with provider.database.session(readonly=True) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def client_row(provider: Provider, client_id: str) -> Client:
    with provider.database.session(readonly=True) as session:
        client = session.get(Client, client_id)
        assert client is not None
        return client


# ---------------------------------------------------------------------- concurrency


def run_together(actions: Sequence[Callable[[], object]]) -> list[object]:
    """Run every action in its own thread, all released at the same instant; each result is
    the action's return value or the exception it raised."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except BaseException as error:  # the caller asserts on it
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


# ---------------------------------------------------------------------- Redis


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    require_redis()
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    name = f"test:idp:{uuid.uuid4().hex}:"
    try:
        yield name
    finally:
        own = list(client.scan_iter(match=name + "*"))
        if own:
            client.delete(*own)
        client.close()
