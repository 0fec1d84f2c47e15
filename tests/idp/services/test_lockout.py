"""Brute-force defence: growing delays, locks at the threshold and their end, the same answers
for unknown usernames, the per-address throttle, unlock, resets on success — counted in the
database and in Redis, on SQLite and PostgreSQL, by one node and by two. Time is driven through
``now``."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from argon2 import PasswordHasher
from sqlalchemy import select

from tessera.idp.cache.throttle import IN_FLIGHT
from tessera.idp.config import Settings
from tessera.idp.errors import OAuthError, Throttled
from tessera.idp.flows.grants import token_response
from tessera.idp.http.answers import oauth_status
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import effective_status, set_status
from tessera.idp.services.audit import Context
from tessera.idp.services.lockout import Lockout
from tessera.idp.store.database import Database
from tessera.idp.store.models import AuditEvent, ThrottleCounter, User

from ...services import REDIS_URL
from ..conftest import (
    TENANT,
    Registered,
    add_tenant,
    add_user,
    audit_events,
    first_party_client,
    make_settings,
    run_together,
)

IP = "198.51.100.7"
OTHER_IP = "203.0.113.9"
CONTEXT = Context(ip=IP, user_agent="lockout-test/1.0", actor="admin-1")
PASSWORD = "correct horse battery staple"
WRONG = "Tr0ub4dor&3-but-wrong"


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    """Which throttle store the provider counts in."""
    return str(request.param)


def store_settings(
    database_url: str, tmp_path: Path, store: str, redis_prefix: str, **overrides: Any
) -> Settings:
    """Test settings counting in the database, or in Redis under this test's own prefix."""
    if store == "redis":
        overrides.update(
            redis_url=REDIS_URL,
            redis_prefix=redis_prefix + "revocation:",
            throttle_prefix=redis_prefix + "throttle:",
        )
    return make_settings(database_url, tmp_path, **overrides)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, store: str, redis_prefix: str) -> Settings:
    """The conftest's settings (so ``provider``, ``tenant`` use them), per store."""
    return store_settings(database_url, tmp_path, store, redis_prefix)


@dataclass(frozen=True)
class Counting:
    """A node's lockout and the database it counts in: each call its own transaction."""

    lockout: Lockout
    database: Database

    def check(self, tenant_id: str, username: str, ip: str, now: float | None = None) -> None:
        with self.database.session() as session:
            self.lockout.check(session, tenant_id, username, ip, now=now)

    def succeeded(self, tenant_id: str, username: str, ip: str, now: float) -> None:
        with self.database.session() as session:
            self.lockout.succeeded(session, tenant_id, username, ip, now=now)

    def settle(self, tenant_id: str, username: str, ip: str, now: float) -> None:
        with self.database.session() as session:
            self.lockout.settle(session, tenant_id, username, ip, now=now)


def counting(provider: Provider) -> Counting:
    return Counting(provider.lockout, provider.database)


@pytest.fixture
def lockout(provider: Provider) -> Counting:
    return counting(provider)


def start() -> float:
    """A moment to drive time from: now, so that the user rows' locks read the same."""
    return float(int(time.time()))


def with_settings(provider: Provider, **changes: Any) -> Counting:
    """A lockout with other knobs, counting in the provider's store."""
    changed = provider.settings.model_copy(update=changes)
    return Counting(
        Lockout(changed, provider.master, store=provider.lockout.store), provider.database
    )


def fail(
    provider: Provider,
    username: str,
    at: float,
    *,
    ip: str = IP,
    lockout: Counting | None = None,
    row: bool = True,
) -> None:
    """One failed attempt of ``username`` at ``at``, with its user row (if any), committed."""
    with provider.database.session() as session:
        user = (
            session.scalar(
                select(User).where(User.tenant_id == TENANT, User.username_key == username)
            )
            if row
            else None
        )
        (lockout.lockout if lockout else provider.lockout).failed(
            session, tenant_id=TENANT, username=username, ip=ip, user=user, context=CONTEXT, now=at
        )


def refusal(call: Callable[[], object]) -> Throttled:
    with pytest.raises(Throttled) as refused:
        call()
    return refused.value


def throttled(lockout: Counting, username: str, at: float, ip: str = IP) -> Throttled:
    """The refusal of an attempt at ``at`` (which must be refused)."""
    return refusal(lambda: lockout.check(TENANT, username, ip, now=at))


def user_row(provider: Provider, user_id: str) -> User:
    with provider.database.session(readonly=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        return user


def events(provider: Provider, name: str) -> list[AuditEvent]:
    return [event for event in audit_events(provider) if event.event == name]


def password_form(password: str, username: str = "ada") -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


def log_in(provider: Provider, client: Registered, password: str, username: str = "ada") -> Any:
    """The token answer, or the OAuthError the password grant raised."""
    try:
        return token_response(provider, password_form(password, username), client.basic, CONTEXT)
    except OAuthError as error:
        return error


@pytest.fixture
def client(cheap_passwords: Provider, tenant: str) -> Registered:
    return first_party_client(cheap_passwords, tenant)


def admit(provider: Provider, at: float, username: str = "ada") -> User | None:
    """What the password grant does before any argon2 work, at ``at``."""
    with provider.database.session() as session:
        return provider.lockout.admit(
            session, tenant_id=TENANT, username=username, context=CONTEXT, now=at
        )


def lock(provider: Provider, username: str, at: float, **options: Any) -> None:
    for _ in range(provider.settings.lockout_threshold):
        fail(provider, username, at, **options)


# ---------------------------------------------------------------------- growing delays


def test_delays_double_after_the_free_failures_up_to_the_cap(provider: Provider) -> None:
    lockout = with_settings(provider, lockout_max_delay=10)
    at = start()
    for _ in range(provider.settings.lockout_free_attempts):  # 3 failures cost nothing
        lockout.check(TENANT, "ada", IP, now=at)
        fail(provider, "ada", at, lockout=lockout)
    delays = []
    for _ in range(6):
        delay = throttled(lockout, "ada", at).retry_after
        for _ in range(3):  # refused again and again: a refusal counts nothing
            throttled(lockout, "ada", at + delay - 0.01)
        at += delay
        lockout.check(TENANT, "ada", IP, now=at)  # admitted once the delay has passed
        fail(provider, "ada", at, lockout=lockout)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 10, 10]


def test_parallel_guesses_are_admitted_no_faster_than_a_series(
    provider: Provider, lockout: Counting
) -> None:
    at = start()
    results = run_together([lambda: lockout.check(TENANT, "ada", IP, now=at)] * 12)
    admitted = [result for result in results if result is None]
    assert len(admitted) == provider.settings.lockout_free_attempts
    assert all(isinstance(result, Throttled) for result in results if result is not None)
    # An attempt never settled (a crashed request) stops counting after a while.
    lockout.check(TENANT, "ada", IP, now=at + IN_FLIGHT)


def test_a_settled_attempt_keeps_its_failures(provider: Provider, lockout: Counting) -> None:
    at = start()
    for _ in range(2):
        fail(provider, "ada", at)
    lockout.check(TENANT, "ada", IP, now=at)  # the third attempt, in flight
    throttled(lockout, "ada", at)
    lockout.settle(TENANT, "ada", IP, now=at)  # right password, a second factor is due
    lockout.check(TENANT, "ada", IP, now=at)
    fail(provider, "ada", at)  # a wrong code
    assert throttled(lockout, "ada", at).retry_after == 1


# ---------------------------------------------------------------------- locks


def test_the_threshold_locks_the_account_and_the_user_row(
    cheap_passwords: Provider, client: Registered
) -> None:
    provider = cheap_passwords
    ada = add_user(provider)
    at = start()
    lock(provider, "ada", at)
    duration = provider.settings.lockout_duration
    assert throttled(counting(provider), "ada", at).retry_after == duration

    row = user_row(provider, ada.id)
    assert (row.status, row.locked_until) == ("locked", math.ceil(at + duration))
    (locked,) = events(provider, "user.locked")
    assert (locked.subject, locked.outcome, locked.actor) == (ada.id, "success", "admin-1")
    assert '"too-many-failures"' in locked.details

    fail(provider, "ada", at + 1)  # one more failure while locked: no second lock
    assert len(events(provider, "user.locked")) == 1

    refused = log_in(provider, client, PASSWORD)  # even the right password
    assert isinstance(refused, Throttled)
    assert (oauth_status(refused), refused.as_dict()) == (
        429,
        {
            "error": "invalid_grant",
            "error_description": "too many failed attempts; try again later",
        },
    )
    (audited,) = events(provider, "login.throttled")  # committed though the grant raised
    assert (audited.outcome, audited.subject, audited.client_id, audited.ip) == (
        "failure",
        ada.id,
        client.id,
        IP,
    )


def test_a_lock_ends_after_its_duration(cheap_passwords: Provider, tenant: str) -> None:
    provider = cheap_passwords
    ada = add_user(provider)
    at = start()
    lock(provider, "ada", at)
    end = at + provider.settings.lockout_duration

    throttled(counting(provider), "ada", end - 0.5)
    refusal(lambda: admit(provider, end - 0.5))
    admitted = admit(provider, end)
    assert admitted is not None and admitted.id == ada.id
    assert effective_status(user_row(provider, ada.id), int(end)) == "active"


def test_a_locked_user_row_is_refused_like_a_throttled_account_and_counts_nothing(
    cheap_passwords: Provider, tenant: str
) -> None:
    provider = cheap_passwords
    ada = add_user(provider)
    at = start()
    with provider.database.session() as session:
        user = session.get(User, ada.id)
        assert user is not None
        set_status(session, user, "locked", until=int(at) + 10, context=CONTEXT)
    for _ in range(5):
        refused = refusal(lambda: admit(provider, at))
        assert (oauth_status(refused), refused.retry_after, refused.cause) == (429, 10, "locked")
    for _ in range(provider.settings.lockout_free_attempts):  # once the lock has ended
        assert admit(provider, at + 10) is not None


def test_a_disabled_user_reaching_the_threshold_stays_disabled(
    cheap_passwords: Provider, tenant: str
) -> None:
    provider = cheap_passwords
    ada = add_user(provider)
    with provider.database.session() as session:
        user = session.get(User, ada.id)
        assert user is not None
        set_status(session, user, "disabled", context=CONTEXT)
    lock(provider, "ada", start())
    assert user_row(provider, ada.id).status == "disabled"
    assert events(provider, "user.locked") == []


def test_an_unknown_username_is_throttled_and_locked_like_a_known_one(
    cheap_passwords: Provider, tenant: str
) -> None:
    provider = cheap_passwords
    add_user(provider)

    def story(username: str) -> list[object]:
        """Attempt as soon as allowed until locked: what each attempt was told."""
        at, told = start(), list[object]()
        for _ in range(40):
            try:
                counting(provider).check(TENANT, username, IP, now=at)
            except Throttled as refused:
                told.append(refused.retry_after)
                if refused.retry_after == provider.settings.lockout_duration:
                    break
                at += refused.retry_after
            else:
                told.append("admitted")
                fail(provider, username, at)
        return told

    known, unknown = story("ada"), story("nobody-by-this-name")
    assert known == unknown
    assert known.count("admitted") == provider.settings.lockout_threshold
    assert known[-1] == provider.settings.lockout_duration


# ---------------------------------------------------------------------- client addresses


def test_an_address_with_too_many_failures_is_throttled_for_every_account(
    provider: Provider,
) -> None:
    lockout = with_settings(provider, lockout_ip_threshold=10)
    at = start()
    for number in range(10):  # one failure each: no account is throttled
        lockout.check(TENANT, f"user-{number}", IP, now=at)
        fail(provider, f"user-{number}", at, lockout=lockout)
    refused = throttled(lockout, "someone-else", at + 1)
    assert (refused.retry_after, refused.cause) == (provider.settings.lockout_duration - 1, "ip")
    lockout.check(TENANT, "someone-else", OTHER_IP, now=at + 1)  # another address is not
    lockout.succeeded(TENANT, "user-0", IP, now=at + 2)  # a success does not clear an address
    throttled(lockout, "someone-else", at + 2)
    lockout.check(TENANT, "someone-else", IP, now=at + provider.settings.lockout_duration)


def test_an_ipv6_client_is_throttled_by_its_64(provider: Provider) -> None:
    lockout = with_settings(provider, lockout_ip_threshold=10)
    at = start()
    for number in range(10):
        fail(provider, f"user-{number}", at, ip=f"2001:db8::{number + 1:x}", lockout=lockout)
    throttled(lockout, "x", at, "2001:db8::ffff:1")
    lockout.check(TENANT, "x", "2001:db8:0:1::1", now=at)


# ---------------------------------------------------------------------- unlock and success


def test_unlock_clears_the_counters_and_the_lock(
    cheap_passwords: Provider, client: Registered
) -> None:
    provider = cheap_passwords
    ada = add_user(provider, password=PASSWORD)
    lock(provider, "ada", start())
    assert isinstance(log_in(provider, client, PASSWORD), Throttled)

    with provider.database.session() as session:
        user = session.get(User, ada.id)
        assert user is not None
        provider.lockout.unlock(session, user, context=CONTEXT)

    row = user_row(provider, ada.id)
    assert (row.status, row.locked_until) == ("active", None)
    (unlocked,) = events(provider, "user.unlocked")
    assert (unlocked.subject, unlocked.actor) == (ada.id, "admin-1")
    assert "access_token" in log_in(provider, client, PASSWORD)


@pytest.mark.parametrize("locked", ["row", "counters", "neither"])
def test_unlock_works_whichever_of_the_two_is_set(
    cheap_passwords: Provider, tenant: str, locked: str
) -> None:
    provider = cheap_passwords
    ada = add_user(provider)
    at = start()
    with provider.database.session() as session:
        user = session.get(User, ada.id)
        assert user is not None
        if locked == "row":  # an admin's lock, until unlocked
            set_status(session, user, "locked", context=CONTEXT)
    if locked == "counters":  # e.g. locked while this node could not reach the database
        lock(provider, "ada", at, row=False)
    for _ in range(5 if locked != "neither" else 0):  # refused: nothing counted
        refusal(lambda: admit(provider, at))
    before = len(events(provider, "user.unlocked"))

    with provider.database.session() as session:
        user = session.get(User, ada.id)
        assert user is not None
        provider.lockout.unlock(session, user, context=CONTEXT, now=at)
    for _ in range(provider.settings.lockout_free_attempts):
        admitted = admit(provider, at)
        assert admitted is not None and admitted.id == ada.id
    assert user_row(provider, ada.id).status == "active"
    assert len(events(provider, "user.unlocked")) == before + 1


def test_unlock_leaves_a_disabled_user_disabled(cheap_passwords: Provider, tenant: str) -> None:
    provider = cheap_passwords
    ada = add_user(provider)
    lock(provider, "ada", start())
    with provider.database.session() as session:
        user = session.get(User, ada.id)
        assert user is not None
        set_status(session, user, "disabled", context=CONTEXT)
        provider.lockout.unlock(session, user, context=CONTEXT)
    assert user_row(provider, ada.id).status == "disabled"
    counting(provider).check(TENANT, "ada", IP)  # the counters are gone all the same


def test_a_success_forgets_the_failures(provider: Provider, lockout: Counting) -> None:
    at = start()
    for _ in range(3):
        lockout.check(TENANT, "ada", IP, now=at)
        fail(provider, "ada", at)
    throttled(lockout, "ada", at)
    lockout.succeeded(TENANT, "Ada ", IP, now=at)  # the same account, however spelled
    for _ in range(3):  # free again
        lockout.check(TENANT, "ada", IP, now=at)
        fail(provider, "ada", at)
    throttled(lockout, "ada", at)


def test_a_password_login_resets_the_failures(
    cheap_passwords: Provider, client: Registered
) -> None:
    provider = cheap_passwords
    add_user(provider, password=PASSWORD)
    assert isinstance(log_in(provider, client, WRONG), OAuthError)
    assert isinstance(log_in(provider, client, WRONG), OAuthError)
    assert "access_token" in log_in(provider, client, PASSWORD)
    for _ in range(3):
        error = log_in(provider, client, WRONG)
        assert isinstance(error, OAuthError) and oauth_status(error) == 400
    assert isinstance(log_in(provider, client, WRONG), Throttled)
    assert len(events(provider, "login.failed")) == 5
    assert len(events(provider, "login.throttled")) == 1


def test_a_refused_attempt_does_no_argon2_work_and_counts_nothing(
    cheap_passwords: Provider, client: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = cheap_passwords
    add_user(provider, password=PASSWORD)
    for _ in range(3):
        log_in(provider, client, WRONG)
    verified: list[object] = []
    verify = PasswordHasher.verify

    def counting_verify(hasher: PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        verified.append(hash)
        return verify(hasher, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    for username in ("ada", "ADA", "ada"):
        refused = log_in(provider, client, PASSWORD, username)
        assert isinstance(refused, Throttled) and oauth_status(refused) == 429
    assert verified == []
    assert len(events(provider, "login.failed")) == 3
    assert len(events(provider, "login.throttled")) == 3


# ---------------------------------------------------------------------- several nodes


def test_two_nodes_count_every_guess_once(
    database_url: str,
    tmp_path: Path,
    store: str,
    redis_prefix: str,
    make_provider: Callable[[Settings], Provider],
) -> None:
    """A guesser spreading attempts over two nodes is locked at the count one node locks at."""
    settings = store_settings(database_url, tmp_path, store, redis_prefix)
    one, two = make_provider(settings), make_provider(settings)
    add_tenant(one, TENANT)
    ada = add_user(one, password=PASSWORD, username="ada")
    at = start()
    nodes = [one, two] * settings.lockout_threshold
    for node in nodes[: settings.lockout_threshold - 1]:
        fail(node, "ada", at)
        fail(node, "nobody", at)
    for node in (one, two):  # nine failures in all: a delay on either node, not yet a lock
        told = throttled(counting(node), "ada", at)
        assert told.retry_after == settings.lockout_max_delay
    fail(two, "ada", at)
    fail(two, "nobody", at)
    for node in (one, two):
        for username in ("ada", "nobody"):
            told = throttled(counting(node), username, at)
            assert told.retry_after == settings.lockout_duration
    assert user_row(one, ada.id).status == "locked"

    with one.database.session() as session:
        user = session.get(User, ada.id)
        assert user is not None
        one.lockout.unlock(session, user, context=CONTEXT, now=at)
    for node in (one, two):
        counting(node).check(TENANT, "ada", IP, now=at)


def test_parallel_guesses_at_two_nodes_are_admitted_no_faster_than_at_one(
    database_url: str,
    tmp_path: Path,
    store: str,
    redis_prefix: str,
    make_provider: Callable[[Settings], Provider],
) -> None:
    settings = store_settings(database_url, tmp_path, store, redis_prefix)
    one, two = make_provider(settings), make_provider(settings)
    add_tenant(one, TENANT)
    at = start()
    guesses = [
        lambda node=node: counting(node).check(TENANT, "ada", IP, now=at) for node in (one, two)
    ]
    results = run_together(guesses * 6)
    admitted = [result for result in results if result is None]
    assert len(admitted) == settings.lockout_free_attempts
    assert all(isinstance(result, Throttled) for result in results if result is not None)


# ---------------------------------------------------------------------- the stores themselves


def test_redis_unreachable_nodes_count_together_in_the_database(
    database_url: str,
    tmp_path: Path,
    make_provider: Callable[[Settings], Provider],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(database_url, tmp_path, redis_url="redis://127.0.0.1:1/0")
    one, two = make_provider(settings), make_provider(settings)
    add_tenant(one, TENANT)
    at = start()
    with caplog.at_level(logging.WARNING, logger="tessera.idp"):
        for number in range(settings.lockout_free_attempts):
            node = (one, two)[number % 2]
            counting(node).check(TENANT, "ada", IP, now=at)  # logins go on
            fail(node, "ada", at)
        for node in (one, two):  # and so does throttling, on either node
            throttled(counting(node), "ada", at)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2 and all("Redis unreachable" in warning for warning in warnings)
    assert not any("ada" in message or IP in message for message in warnings)


def test_counters_hold_no_username_or_address(
    database_url: str,
    tmp_path: Path,
    store: str,
    redis_prefix: str,
    make_provider: Callable[[Settings], Provider],
) -> None:
    provider = make_provider(store_settings(database_url, tmp_path, store, redis_prefix))
    secretive = "Tr0ub4dor&3 typed as a username"
    at = start()
    counting(provider).check(TENANT, secretive, IP, now=at)
    fail(provider, secretive, at, row=False)
    with provider.database.session(readonly=True) as session:
        rows = list(session.scalars(select(ThrottleCounter)))
    if store == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=redis_prefix + "*"))
        values = [value for key in keys for value in client.hgetall(key).values()]
        client.close()
        assert rows == []  # Redis counts; the database holds nothing
        assert all(key.startswith((redis_prefix + "throttle:").encode()) for key in keys)
    else:
        keys = [row.key.encode() for row in rows]
        values = [repr(row.__dict__).encode() for row in rows]
    assert len(keys) == 2  # the account and the address
    stored = b" ".join(keys + values)
    assert b"Tr0ub4dor" not in stored and IP.encode() not in stored


def test_a_count_in_the_database_rolls_back_with_its_transaction(
    database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> None:
    provider = make_provider(make_settings(database_url, tmp_path))  # no Redis: the database
    at = start()

    def count_then_fail() -> None:
        with provider.database.session() as session:
            provider.lockout.failed(
                session, tenant_id=TENANT, username="ada", ip=IP, user=None, context=CONTEXT, now=at
            )
            raise RuntimeError("the request failed after counting")

    with pytest.raises(RuntimeError):
        count_then_fail()
    for _ in range(provider.settings.lockout_free_attempts):
        counting(provider).check(TENANT, "ada", IP, now=at)
