"""The SSO hop on the event loop (``authorization.sso_hop``), on SQLite and PostgreSQL: one read
and the writes of one transaction — the code, the client's note in the session (once), the
session's last use (at most every TOUCH_EVERY seconds) — and the same decisions as the pages'
``next_step``: a sign-in for an idle session or a locked user, a consent a third-party client
lacks, its scope cut to what the user's roles permit, nothing written for a refusal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from tessera.idp.flows.authorization import (
    AuthorizationError,
    ConsentNeeded,
    Granted,
    Next,
    SignInNeeded,
    read_request,
    sso_hop,
)
from tessera.idp.provider import Provider
from tessera.idp.services import consents
from tessera.idp.services.browser_sessions import TOUCH_EVERY, Started
from tessera.idp.services.pkce import challenge_of
from tessera.idp.store.models import AuthorizationCode, BrowserSession, SessionClient, User

from ..conftest import Registered, add_client, add_user, row_counts, set_user_status

REDIRECT = "https://app.example/callback"
NOW = int(time.time())


def _client(provider: Provider, tenant: str, *, first_party: bool) -> Registered:
    return add_client(
        provider,
        tenant,
        grant_types=("authorization_code",),
        allowed_scopes=("read", "write", "admin"),
        first_party=first_party,
        redirect_uris=(REDIRECT,),
    )


def _signed_in(provider: Provider, user: User) -> Started:
    with provider.database.session() as session:
        return provider.sessions.start(session, user, amr=("pwd",), now=NOW)


def _params(client: Registered, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.id,
        "redirect_uri": REDIRECT,
        "scope": "openid read admin",
        "code_challenge": challenge_of("v" * 43),
        "code_challenge_method": "S256",
        **extra,
    }


def _hop(
    provider: Provider, client: Registered, cookie: str, now: int, **extra: str
) -> Next | AuthorizationError:
    async def hop() -> Next:
        try:
            asked = read_request(provider, _params(client, **extra), frozenset(), now)
            return await sso_hop(provider, asked, cookie, now)
        finally:
            await provider.database.close_loop_connections()

    try:
        return asyncio.run(hop())
    except AuthorizationError as refused:
        return refused


def _rows(provider: Provider, model: Any) -> list[Any]:
    with provider.database.session(readonly=True) as session:
        return list(session.scalars(select(model)))


def test_a_hop_writes_its_code_notes_the_client_once_and_touches_the_session_when_due(
    provider: Provider, tenant: str
) -> None:
    client = _client(provider, tenant, first_party=True)
    started = _signed_in(provider, add_user(provider, tenant))

    first = _hop(provider, client, started.cookie, NOW + 1)
    second = _hop(provider, client, started.cookie, NOW + TOUCH_EVERY + 5)

    assert isinstance(first, Granted) and isinstance(second, Granted)
    codes = {row.code_hash: row for row in _rows(provider, AuthorizationCode)}
    assert {
        provider.codes.digest(first.answer["code"]),
        provider.codes.digest(second.answer["code"]),
    } == set(codes)
    code = codes[provider.codes.digest(first.answer["code"])]
    assert (code.session_id, code.scope, code.client_id) == (
        started.row.id,
        "openid read admin",
        client.id,
    )
    assert [
        (row.session_id, row.client_id, row.first_at) for row in _rows(provider, SessionClient)
    ] == [(started.row.id, client.id, NOW + 1)]
    # The first hop came within TOUCH_EVERY of the sign-in, the second after it.
    [session] = _rows(provider, BrowserSession)
    assert session.last_seen_at == NOW + TOUCH_EVERY + 5


def test_an_idle_session_or_a_locked_user_signs_in_again_and_prompt_none_writes_nothing(
    provider: Provider, tenant: str
) -> None:
    client = _client(provider, tenant, first_party=True)
    user = add_user(provider, tenant)
    started = _signed_in(provider, user)
    idle = provider.settings.session_idle_ttl
    before = row_counts(provider)

    assert _hop(provider, client, started.cookie, NOW + idle + 1) == SignInNeeded("")
    assert _hop(provider, client, "not-a-session", NOW) == SignInNeeded("")
    set_user_status(provider, user.id, "disabled")
    refused = _hop(provider, client, started.cookie, NOW + 1, prompt="none")
    assert isinstance(refused, AuthorizationError) and refused.error == "login_required"
    assert row_counts(provider) == before


def test_a_third_party_client_asks_consent_then_gets_what_the_roles_permit(
    provider: Provider, tenant: str
) -> None:
    client = _client(provider, tenant, first_party=False)
    user = add_user(provider, tenant)  # a member: read, write, profile — not admin
    started = _signed_in(provider, user)

    asked = _hop(provider, client, started.cookie, NOW + 1)
    assert isinstance(asked, ConsentNeeded) and asked.scope == ("openid", "read")
    refused = _hop(provider, client, started.cookie, NOW + 1, prompt="none")
    assert isinstance(refused, AuthorizationError) and refused.error == "consent_required"
    assert _rows(provider, AuthorizationCode) == []

    with provider.database.session() as session:
        consents.remember(
            session,
            tenant_id=tenant,
            user_id=user.id,
            client_id=client.id,
            scopes=asked.scope,
            now=NOW,
        )
    granted = _hop(provider, client, started.cookie, NOW + 2)
    assert isinstance(granted, Granted)
    [code] = _rows(provider, AuthorizationCode)
    assert code.scope == "openid read"


def test_hops_at_the_same_moment_each_get_their_own_code(provider: Provider, tenant: str) -> None:
    hops = 8
    client = _client(provider, tenant, first_party=True)
    started = _signed_in(provider, add_user(provider, tenant))
    params = _params(client, scope="openid read")

    async def together() -> list[Next]:
        asked = read_request(provider, params, frozenset(), NOW + 1)
        try:
            return await asyncio.gather(
                *(sso_hop(provider, asked, started.cookie, NOW + 1) for _ in range(hops))
            )
        finally:
            await provider.database.close_loop_connections()

    steps = asyncio.run(together())
    codes = {step.answer["code"] for step in steps if isinstance(step, Granted)}
    assert len(codes) == hops
    assert {row.code_hash for row in _rows(provider, AuthorizationCode)} == {
        provider.codes.digest(code) for code in codes
    }
    assert len(_rows(provider, SessionClient)) == 1
