"""Browser sessions at the provider, on SQLite and PostgreSQL: found only by their cookie,
ended by logout, by idleness and by age; a new session (and cookie) at every sign-in; logging
out everywhere ends them all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tessera.idp.flows.revoke import log_out_everywhere
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context
from tessera.idp.services.browser_sessions import Started, cookie_name
from tessera.idp.store.models import BrowserSession, User

from ..conftest import add_user

NOW = 1_800_000_000


@pytest.fixture
def ada(provider: Provider, tenant: str) -> User:
    return add_user(provider, tenant)


def start(provider: Provider, user: User, now: int = NOW, **options: object) -> Started:
    with provider.database.session() as session:
        started = provider.sessions.start(
            session,
            user,
            amr=("pwd",),
            now=now,
            **options,  # type: ignore[arg-type]
        )
        session.expunge(started.row)
        return started


def current(provider: Provider, cookie: str | None, now: int) -> BrowserSession | None:
    with provider.database.session() as session:
        return provider.sessions.current(session, cookie, now=now)  # a plain object


def test_a_session_is_found_by_its_cookie_only(provider: Provider, ada: User) -> None:
    started = start(provider, ada, acr="mfa")
    found = current(provider, started.cookie, NOW + 1)
    assert found is not None and found.id == started.row.id
    assert (found.user_id, found.tenant_id, found.auth_time, found.amr, found.acr) == (
        ada.id,
        ada.tenant_id,
        NOW,
        "pwd",
        "mfa",
    )
    with provider.database.session(readonly=True) as session:
        stored = session.scalar(select(BrowserSession.token_hash))
    assert stored is not None and started.cookie not in stored
    for cookie in (None, "", started.cookie[:-1], started.row.id, "x" * 10_000, stored):
        assert current(provider, cookie, NOW + 1) is None


def test_every_sign_in_makes_a_new_session_and_cookie(provider: Provider, ada: User) -> None:
    first, second = start(provider, ada), start(provider, ada)
    assert first.row.id != second.row.id and first.cookie != second.cookie
    assert len(first.cookie) == 43  # 256 random bits


def test_idleness_ends_a_session_and_use_keeps_it_alive(provider: Provider, ada: User) -> None:
    idle = provider.settings.session_idle_ttl
    started = start(provider, ada)
    assert current(provider, started.cookie, NOW + idle - 1) is not None  # used: touched
    assert current(provider, started.cookie, NOW + 2 * idle - 2) is not None
    assert current(provider, started.cookie, NOW + 3 * idle) is None  # idle since


def test_a_session_ends_at_its_age_whatever_the_use(provider: Provider, ada: User) -> None:
    ttl, idle = provider.settings.session_ttl, provider.settings.session_idle_ttl
    started = start(provider, ada)
    moment = NOW
    while moment + idle // 2 < NOW + ttl:
        moment += idle // 2
        assert current(provider, started.cookie, moment) is not None
    assert current(provider, started.cookie, NOW + ttl) is None


def test_logout_ends_one_session(provider: Provider, ada: User) -> None:
    first, second = start(provider, ada), start(provider, ada)
    with provider.database.session() as session:
        row = provider.sessions.current(session, first.cookie, now=NOW + 1)
        assert row is not None
        provider.sessions.end(session, row, now=NOW + 1)
    assert current(provider, first.cookie, NOW + 2) is None
    assert current(provider, second.cookie, NOW + 2) is not None


def test_logging_out_everywhere_ends_every_browser_session(provider: Provider, ada: User) -> None:
    started = [start(provider, ada) for _ in range(3)]
    other = start(provider, add_user(provider, ada.tenant_id, username="bob"))
    with provider.database.session() as session:
        log_out_everywhere(provider, session, ada.tenant_id, ada.id, Context(actor="test"))
    assert all(current(provider, item.cookie, NOW + 1) is None for item in started)
    assert current(provider, other.cookie, NOW + 1) is not None


def test_the_cookie_is_host_only_under_https() -> None:
    assert cookie_name("https://id.example") == "__Host-tessera_session"
    assert cookie_name("http://127.0.0.1:8000") == "tessera_session"
