"""Refresh tokens: rotation on every use, reuse revoking the family, grace, lifetimes, client
binding, and exactly one winner among simultaneous uses — on SQLite, PostgreSQL, many nodes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tessera.idp.config import Settings
from tessera.idp.errors import OAuthError
from tessera.idp.flows.grants import token_response
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context
from tessera.idp.services.refresh import Refused, Rotated
from tessera.idp.store.models import RefreshFamily, RefreshToken, User

from ..conftest import (
    AUDIENCE,
    CHEAP_PASSWORDS,
    Registered,
    add_tenant,
    add_user,
    all_rows,
    audit_events,
    first_party_client,
    make_settings,
    run_together,
    set_user_status,
)

CONTEXT = Context(ip="198.51.100.9", user_agent="pytest")
PASSWORD = "correct horse battery staple"
T0 = 1_700_000_000


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, refresh_token_ttl=1000, refresh_idle_ttl=400)


@pytest.fixture
def app(cheap_passwords: Provider, tenant: str) -> Registered:
    """A confidential first-party client, and the user ada who logs in through it."""
    add_user(cheap_passwords, tenant, password=PASSWORD)
    return first_party_client(cheap_passwords, tenant)


def login(provider: Provider, client: Registered) -> dict[str, Any]:
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    return token_response(provider, form, client.basic, CONTEXT)


def refresh(provider: Provider, client: Registered, token: str, **extra: str) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    return token_response(provider, form, client.basic, CONTEXT)


def refresh_refused(provider: Provider, client: Registered, token: str) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        refresh(provider, client, token)
    assert caught.value.error == "invalid_grant"
    return caught.value


def family_of(provider: Provider, token: str) -> RefreshFamily:
    with provider.database.session(readonly=True) as session:
        found = provider.refresh.find(session, token)
        assert found is not None
        return found[1]


def stored_token(provider: Provider, token: str) -> RefreshToken:
    with provider.database.session(readonly=True) as session:
        row = session.get(RefreshToken, provider.refresh.digest(token))
        assert row is not None
        return row


def start_family(provider: Provider, client: Registered, now: int) -> str:
    with provider.database.session() as session:
        _, token = provider.refresh.start(
            session,
            tenant_id=client.tenant_id,
            subject=client.id,
            client_id=client.id,
            scope="read",
            audience=AUDIENCE,
            now=now,
        )
    return token


def rotate_at(provider: Provider, client_id: str, token: str, now: int) -> Rotated | Refused:
    with provider.database.session() as session:
        return provider.refresh.rotate(session, token, client_id=client_id, now=now)


# ---------------------------------------------------------------------- rotation and reuse


def test_every_use_rotates_the_token(provider: Provider, app: Registered) -> None:
    first = login(provider, app)["refresh_token"]
    second = refresh(provider, app, first)
    assert second["refresh_token"] != first
    assert stored_token(provider, first).spent_at is not None
    assert stored_token(provider, second["refresh_token"]).spent_at is None
    third = refresh(provider, app, second["refresh_token"])
    assert len({first, second["refresh_token"], third["refresh_token"]}) == 3
    assert family_of(provider, first).id == family_of(provider, third["refresh_token"]).id
    claims = provider.issuer.verifier().verify(third["access_token"])
    assert claims["client_id"] == app.id
    assert claims["amr"] == ["pwd"]


def test_reuse_of_a_spent_token_revokes_the_whole_family(
    provider: Provider, app: Registered
) -> None:
    first = login(provider, app)["refresh_token"]
    second = refresh(provider, app, first)["refresh_token"]
    error = refresh_refused(provider, app, first)
    assert "reused" in error.description
    refresh_refused(provider, app, second)  # the successor dies with its family
    family = family_of(provider, second)
    assert family.revoked_at is not None
    assert family.revoked_reason == "reuse"
    (reuse,) = [event for event in audit_events(provider) if event.event == "refresh.reuse"]
    assert (reuse.outcome, reuse.tenant_id, reuse.client_id) == ("failure", app.tenant_id, app.id)
    assert reuse.subject == family.subject
    assert (reuse.ip, reuse.user_agent) == (CONTEXT.ip, CONTEXT.user_agent)
    assert family.id in reuse.details


def test_reuse_revokes_only_that_family(provider: Provider, app: Registered) -> None:
    other = login(provider, app)["refresh_token"]
    first = login(provider, app)["refresh_token"]
    refresh(provider, app, first)
    refresh_refused(provider, app, first)
    assert refresh(provider, app, other)["refresh_token"]


def test_reuse_within_the_grace_period_is_refused_without_revoking(
    database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> None:
    node = make_provider(make_settings(database_url, tmp_path, refresh_reuse_grace=10))
    node.use_passwords(CHEAP_PASSWORDS)
    add_tenant(node, "acme")
    client = first_party_client(node, "acme")
    first = start_family(node, client, T0)
    second = rotate_at(node, client.id, first, T0 + 1)
    assert isinstance(second, Rotated)
    for moment in (T0 + 1, T0 + 11):
        refused = rotate_at(node, client.id, first, moment)
        assert isinstance(refused, Refused) and refused.reason == "refresh token already used"
    assert family_of(node, first).revoked_at is None
    assert isinstance(rotate_at(node, client.id, second.token, T0 + 11), Rotated)
    assert [event.event for event in audit_events(node)].count("refresh.reuse") == 0
    # after the grace period, the same replay is reuse
    third = rotate_at(node, client.id, first, T0 + 12)
    assert isinstance(third, Refused) and "reused" in third.reason
    assert family_of(node, first).revoked_reason == "reuse"


def test_without_grace_an_immediate_replay_is_reuse(provider: Provider, app: Registered) -> None:
    assert provider.settings.refresh_reuse_grace == 0
    first = start_family(provider, app, T0)
    assert isinstance(rotate_at(provider, app.id, first, T0), Rotated)
    replay = rotate_at(provider, app.id, first, T0)  # the same second
    assert isinstance(replay, Refused) and "reused" in replay.reason
    assert family_of(provider, first).revoked_reason == "reuse"


# ---------------------------------------------------------------------- lifetimes


def test_idle_timeout_expires_an_unused_token(provider: Provider, app: Registered) -> None:
    first = start_family(provider, app, T0)
    assert isinstance(rotate_at(provider, app.id, first, T0 + 399), Rotated)
    second = start_family(provider, app, T0)
    expired = rotate_at(provider, app.id, second, T0 + 400)
    assert isinstance(expired, Refused) and expired.reason == "refresh token expired"
    assert family_of(provider, second).revoked_at is None  # expiry is not reuse


def test_each_rotation_restarts_the_idle_timeout(provider: Provider, app: Registered) -> None:
    token = start_family(provider, app, T0)
    for moment in (T0 + 300, T0 + 600, T0 + 900):
        rotated = rotate_at(provider, app.id, token, moment)
        assert isinstance(rotated, Rotated)
        token = rotated.token
    assert stored_token(provider, token).expires_at == T0 + 1000  # capped by the family


def test_absolute_lifetime_ends_the_family_however_active(
    provider: Provider, app: Registered
) -> None:
    token = start_family(provider, app, T0)
    for moment in (T0 + 300, T0 + 600, T0 + 900):
        rotated = rotate_at(provider, app.id, token, moment)
        assert isinstance(rotated, Rotated)
        token = rotated.token
    last = rotate_at(provider, app.id, token, T0 + 999)
    assert isinstance(last, Rotated)
    expired = rotate_at(provider, app.id, last.token, T0 + 1000)
    assert isinstance(expired, Refused) and expired.reason == "refresh token expired"


def test_refresh_lifetimes_come_from_settings(provider: Provider, app: Registered) -> None:
    token = start_family(provider, app, T0)
    family = family_of(provider, token)
    assert family.expires_at == T0 + 1000
    assert stored_token(provider, token).expires_at == T0 + 400


# ---------------------------------------------------------------------- who may refresh


def test_token_of_client_a_is_refused_for_client_b(provider: Provider, app: Registered) -> None:
    other = first_party_client(provider, app.tenant_id)
    token = login(provider, app)["refresh_token"]
    error = refresh_refused(provider, other, token)
    assert "another client" in error.description
    assert family_of(provider, token).revoked_at is None
    assert stored_token(provider, token).spent_at is None
    assert refresh(provider, app, token)["refresh_token"]  # still good for its own client


def test_unknown_refresh_token_is_invalid_grant(provider: Provider, app: Registered) -> None:
    refresh_refused(provider, app, "not-a-token")
    refresh_refused(provider, app, "x" * 5000)


def test_missing_refresh_token_is_an_invalid_request(provider: Provider, app: Registered) -> None:
    form = {"grant_type": "refresh_token"}
    with pytest.raises(OAuthError) as caught:
        token_response(provider, form, app.basic, CONTEXT)
    assert caught.value.error == "invalid_request"


def test_refresh_for_a_disabled_user_is_refused_and_revokes_the_family(
    provider: Provider, app: Registered
) -> None:
    token = login(provider, app)["refresh_token"]
    set_user_status(provider, family_of(provider, token).subject, "disabled")
    assert "no longer active" in refresh_refused(provider, app, token).description
    assert family_of(provider, token).revoked_reason == "user-inactive"


@pytest.mark.parametrize(("locked_for", "refused"), [(3600, True), (-1, False)])
def test_refresh_for_a_locked_user_follows_the_lock(
    provider: Provider, app: Registered, locked_for: int, refused: bool
) -> None:
    token = login(provider, app)["refresh_token"]
    with provider.database.session() as session:
        user = session.get(User, family_of(provider, token).subject)
        assert user is not None
        user.status, user.locked_until = "locked", int(time.time()) + locked_for
    if refused:  # locked now: as a disabled user
        assert "no longer active" in refresh_refused(provider, app, token).description
        assert family_of(provider, token).revoked_reason == "user-inactive"
    else:  # the lock has passed: the user is active again
        assert refresh(provider, app, token)["refresh_token"]
        assert family_of(provider, token).revoked_at is None


def test_refresh_may_narrow_the_scope_but_never_widen_it(
    provider: Provider, app: Registered
) -> None:
    token = login(provider, app)["refresh_token"]  # default scope: read
    narrowed = refresh(provider, app, token, scope="read")
    assert narrowed["scope"] == "read"
    before = all_rows(provider)
    with pytest.raises(OAuthError) as caught:
        refresh(provider, app, narrowed["refresh_token"], scope="write")
    assert caught.value.error == "invalid_scope"
    assert all_rows(provider) == before  # the token was not spent by the failed request
    assert refresh(provider, app, narrowed["refresh_token"])["refresh_token"]


def test_refresh_tokens_are_stored_only_as_keyed_hashes(
    provider: Provider, app: Registered
) -> None:
    first = login(provider, app)["refresh_token"]
    second = refresh(provider, app, first)["refresh_token"]
    dump = repr(all_rows(provider))
    assert first not in dump and second not in dump
    with provider.database.session(readonly=True) as session:
        hashes = set(session.scalars(select(RefreshToken.token_hash)))
    assert hashes == {provider.refresh.digest(first), provider.refresh.digest(second)}


# ---------------------------------------------------------------------- concurrency


def outcomes(results: list[object]) -> tuple[list[dict[str, Any]], list[BaseException]]:
    wins = [result for result in results if isinstance(result, dict)]
    errors = [result for result in results if isinstance(result, BaseException)]
    assert len(wins) + len(errors) == len(results)
    return wins, errors


def assert_one_winner(results: list[object]) -> dict[str, Any]:
    wins, errors = outcomes(results)
    assert len(wins) == 1, errors
    assert all(isinstance(error, OAuthError) for error in errors), errors
    assert {error.error for error in errors if isinstance(error, OAuthError)} == {"invalid_grant"}
    return wins[0]


def test_twenty_simultaneous_refreshes_have_exactly_one_winner(
    provider: Provider, app: Registered
) -> None:
    token = login(provider, app)["refresh_token"]
    results = run_together([lambda: refresh(provider, app, token)] * 20)
    winner = assert_one_winner(results)
    assert provider.issuer.verifier().verify(winner["access_token"])["client_id"] == app.id
    # Without a grace period the losers were replays of a spent token: the family is revoked.
    assert family_of(provider, token).revoked_reason == "reuse"
    refresh_refused(provider, app, winner["refresh_token"])


def test_twenty_simultaneous_refreshes_across_nodes_have_exactly_one_winner(
    provider: Provider,
    app: Registered,
    settings: Settings,
    make_provider: Callable[[Settings], Provider],
) -> None:
    nodes = [provider, make_provider(settings), make_provider(settings)]
    token = login(provider, app)["refresh_token"]
    actions = [lambda node=node: refresh(node, app, token) for node in nodes] * 7
    assert_one_winner(run_together(actions[:20]))


def test_simultaneous_refreshes_within_grace_keep_the_winners_session(
    database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> None:
    settings = make_settings(database_url, tmp_path, refresh_reuse_grace=60)
    nodes = [make_provider(settings), make_provider(settings)]
    add_tenant(nodes[0], "acme")
    client = first_party_client(nodes[0], "acme")
    token = start_family(nodes[0], client, int(time.time()))
    actions = [lambda node=node: refresh(node, client, token) for node in nodes] * 10
    winner = assert_one_winner(run_together(actions))
    assert family_of(nodes[0], token).revoked_at is None
    assert refresh(nodes[1], client, winner["refresh_token"])["refresh_token"]


def test_simultaneous_rotations_in_own_sessions_have_exactly_one_winner(
    provider: Provider, app: Registered
) -> None:
    token = start_family(provider, app, T0)
    results = run_together([lambda: rotate_at(provider, app.id, token, T0 + 5)] * 20)
    assert not [result for result in results if isinstance(result, BaseException)]
    assert len([result for result in results if isinstance(result, Rotated)]) == 1
    assert len([result for result in results if isinstance(result, Refused)]) == 19
