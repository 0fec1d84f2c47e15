"""Users and passwords: the NIST SP 800-63B policy, argon2id parameters from the settings,
re-hash on login when they change, and no user enumeration (same argon2 work, same error).

Real argon2id (the OWASP parameters unless a test says otherwise) and real databases."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import argon2
import pytest
from argon2 import PasswordHasher, Type
from pydantic import ValidationError
from sqlalchemy import select

from tessera.idp.config import Settings
from tessera.idp.errors import OAuthError
from tessera.idp.flows.grants import token_response
from tessera.idp.http.answers import oauth_status
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import create_user
from tessera.idp.services.audit import Context
from tessera.idp.services.password_policy import (
    MAX_LENGTH,
    PasswordPolicy,
    PasswordRejected,
    common_passwords,
)
from tessera.idp.store.models import User

from ..conftest import (
    ISSUER,
    TENANT,
    add_tenant,
    add_user,
    first_party_client,
    make_settings,
    row_counts,
)

CONTEXT = Context(ip="203.0.113.9", user_agent="pytest")
PASSWORD = "correct horse battery staple"

policy = PasswordPolicy(min_length=12)


def rejection(password: str, candidate: PasswordPolicy = policy, **who: Any) -> PasswordRejected:
    with pytest.raises(PasswordRejected) as caught:
        candidate.check(password, **who)
    return caught.value


# ---------------------------------------------------------------------- the policy


def test_a_password_shorter_than_the_minimum_is_refused() -> None:
    assert rejection("elevenchars").reason == "too_short"
    assert rejection("x" * 11, PasswordPolicy(min_length=12)).reason == "too_short"


def test_a_password_of_the_minimum_length_is_accepted() -> None:
    policy.check("twelve chars", username="ada")
    PasswordPolicy(min_length=8).check("eight ch", username="ada")


def test_length_counts_code_points_after_nfkc() -> None:
    # Twelve decomposed "é" (e + combining accent) are 24 code points but 12 after NFKC…
    policy.check("e\u0301" * 12)
    # …and eleven of them are too short, however many code points they are written with.
    assert rejection("e\u0301" * 11).reason == "too_short"
    # A ligature NFKC spells out counts as what it stands for ("ﬃ" is "ffi").
    PasswordPolicy(min_length=12).check("\ufb03" * 4)


def test_a_password_longer_than_1024_characters_is_refused() -> None:
    policy.check("a" + "b" * (MAX_LENGTH - 1))
    assert rejection("a" * (MAX_LENGTH + 1)).reason == "too_long"
    assert rejection("a" * 100_000).reason == "too_long"


def test_no_composition_rules_lowercase_words_and_spaces_are_fine() -> None:
    policy.check("correct horse battery staple", username="ada", email="ada@example.com")
    policy.check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")  # no "mix of character classes" demanded


@pytest.mark.parametrize("password", ["unbelievable", "Unbelievable", "UNBELIEVABLE"])
def test_common_passwords_are_refused_in_any_case(password: str) -> None:
    assert rejection(password).reason == "common"


@pytest.mark.parametrize("password", ["password", "PassWord", "baseball", "FOOTBALL", "qwertyuiop"])
def test_common_passwords_are_refused_at_the_lowest_minimum_too(password: str) -> None:
    assert rejection(password, PasswordPolicy(min_length=8)).reason == "common"


def test_the_shipped_list_is_loaded_once_with_ten_thousand_entries() -> None:
    assert common_passwords() is common_passwords()
    assert len(common_passwords()) == 10_000
    assert {"password", "123456", "qwerty"} <= common_passwords()


@pytest.mark.parametrize(
    ("password", "who"),
    [
        ("Ada.Lovelace.1815", {"username": "ada.lovelace.1815"}),
        ("ADA@EXAMPLE.COM", {"username": "ada", "email": "ada@example.com"}),
        ("  grace.hopper.1906 ", {"username": "Grace.Hopper.1906"}),
    ],
)
def test_a_password_equal_to_the_username_or_email_is_refused(
    password: str, who: dict[str, str]
) -> None:
    assert rejection(password, **who).reason == "matches_identity"


def test_a_password_that_only_contains_the_username_is_accepted() -> None:
    policy.check("ada.lovelace.1815 and more", username="ada.lovelace.1815")


@pytest.mark.parametrize(
    "password",
    ["short pw", "Unbelievable", "x" * 2000, "ada@example.com"],
)
def test_the_error_never_contains_the_password(password: str) -> None:
    error = rejection(password, username="nobody", email="ada@example.com")
    assert password not in str(error) and password not in repr(error)
    assert password.strip().casefold() not in str(error).casefold()
    assert error.args == (str(error),)


def test_create_user_enforces_the_policy_and_writes_nothing(provider: Provider) -> None:
    add_tenant(provider, TENANT)
    before = row_counts(provider)["users"]
    for password, reason in [
        ("too short", "too_short"),
        ("Unbelievable", "common"),
        ("ada.lovelace@example.com", "matches_identity"),
    ]:
        with pytest.raises(PasswordRejected) as caught, provider.database.session() as session:
            create_user(
                session,
                provider.passwords,
                tenant_id=TENANT,
                username="ada",
                email="ada.lovelace@example.com",
                password=password,
                policy=provider.password_policy,
            )
        assert caught.value.reason == reason
    assert row_counts(provider)["users"] == before
    assert add_user(provider, password=PASSWORD).username == "ada"


def test_the_minimum_length_comes_from_the_settings(
    database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> None:
    node = make_provider(make_settings(database_url, tmp_path, password_min_length=20))
    add_tenant(node, TENANT)
    with pytest.raises(PasswordRejected, match="shorter than the minimum length"):
        add_user(node, password="nineteen characters")
    add_user(node, password="twenty characters ok")


# ---------------------------------------------------------------------- settings


def test_the_argon2_defaults_are_owasps() -> None:
    settings = Settings(issuer=ISSUER, database_url="sqlite://")
    assert (
        settings.argon2_memory_kib,
        settings.argon2_time_cost,
        settings.argon2_parallelism,
        settings.password_min_length,
    ) == (19_456, 2, 1, 12)


@pytest.mark.parametrize("value", [8, 12, 128])
def test_password_min_length_accepts_8_to_128(value: int) -> None:
    assert Settings(issuer=ISSUER, password_min_length=value).password_min_length == value


@pytest.mark.parametrize(
    "overrides",
    [
        {"password_min_length": 7},
        {"password_min_length": 129},
        {"argon2_time_cost": 0},
        {"argon2_parallelism": 0},
        {"argon2_memory_kib": 4},
        {"argon2_memory_kib": 16, "argon2_parallelism": 4},  # < 8 KiB per lane
    ],
)
def test_out_of_range_password_settings_are_refused(overrides: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Settings(issuer=ISSUER, **overrides)  # type: ignore[arg-type]


def test_password_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_ARGON2_MEMORY_KIB", "7168")
    monkeypatch.setenv("TESSERA_ARGON2_TIME_COST", "5")
    monkeypatch.setenv("TESSERA_PASSWORD_MIN_LENGTH", "16")
    settings = Settings(issuer=ISSUER)
    assert (settings.argon2_memory_kib, settings.argon2_time_cost) == (7168, 5)
    assert settings.password_min_length == 16


# ---------------------------------------------------------------------- re-hash on login


def password_form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


def stored_hash(provider: Provider, username: str = "ada") -> str:
    with provider.database.session(readonly=True) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        return user.password_hash


def test_changed_argon2_parameters_rehash_on_the_next_successful_login(
    database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> None:
    # The user was made while the settings asked for less (8 MiB, 1 iteration)…
    before = make_provider(
        make_settings(database_url, tmp_path, argon2_memory_kib=8192, argon2_time_cost=1)
    )
    add_tenant(before, TENANT)
    add_user(before, password=PASSWORD)
    old = stored_hash(before)
    old_parameters = argon2.extract_parameters(old)
    assert (old_parameters.memory_cost, old_parameters.time_cost) == (8192, 1)

    # …and now a node runs with the OWASP defaults on the same database.
    after = make_provider(make_settings(database_url, tmp_path))
    owasp = PasswordHasher(memory_cost=19_456, time_cost=2, parallelism=1, type=Type.ID)
    assert owasp.check_needs_rehash(old)
    client = first_party_client(after)

    with pytest.raises(OAuthError):  # a failed login changes nothing
        token_response(
            after, password_form("ada", "not the password at all"), client.basic, CONTEXT
        )
    assert stored_hash(after) == old

    assert token_response(after, password_form("ada", PASSWORD), client.basic, CONTEXT)
    new = stored_hash(after)
    parameters = argon2.extract_parameters(new)
    assert new != old
    assert (parameters.type, parameters.memory_cost, parameters.time_cost) == (Type.ID, 19_456, 2)
    assert parameters.parallelism == 1
    assert not owasp.check_needs_rehash(new)
    assert owasp.verify(new, PASSWORD)

    # The next login finds nothing to re-hash.
    assert token_response(after, password_form("ada", PASSWORD), client.basic, CONTEXT)
    assert stored_hash(after) == new


# ---------------------------------------------------------------------- no user enumeration


def failed_login(provider: Provider, client: Any, username: str, password: str) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        token_response(provider, password_form(username, password), client.basic, CONTEXT)
    return caught.value


def test_unknown_user_and_wrong_password_do_the_same_argon2_work(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_tenant(provider, TENANT)
    add_user(provider, password=PASSWORD)
    client = first_party_client(provider)

    calls: list[argon2.Parameters] = []
    verify = PasswordHasher.verify

    def recording_verify(hasher: PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        text = hash.decode() if isinstance(hash, bytes) else hash
        calls.append(argon2.extract_parameters(text))
        return verify(hasher, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", recording_verify)

    seen: dict[str, tuple[object, ...]] = {}
    for case, username, password in [
        ("wrong password", "ada", "a wrong but long password"),
        ("unknown user", "nobody-by-this-name", "a wrong but long password"),
        ("unknown user, right password", "nobody-by-this-name", PASSWORD),
    ]:
        calls.clear()
        error = failed_login(provider, client, username, password)
        seen[case] = (error.error, str(error), tuple(calls))
        assert len(calls) == 1, case
        (used,) = calls
        assert used.type == Type.ID, case
        assert (used.memory_cost, used.time_cost, used.parallelism) == (19_456, 2, 1), case
    # Every failure answers the same error after the same work.
    assert len({repr(answer) for answer in seen.values()}) == 1, seen


def test_unknown_user_and_wrong_password_take_overlapping_time(
    database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> None:
    # Brute-force throttling would answer most of these guesses at once, without argon2:
    # here every one must do the full work, which is what is measured.
    provider = make_provider(
        make_settings(database_url, tmp_path, lockout_free_attempts=100, lockout_threshold=1000)
    )
    add_tenant(provider, TENANT)
    add_user(provider, password=PASSWORD)
    client = first_party_client(provider)
    assert oauth_status(failed_login(provider, client, "ada", "warm up the connection pool")) == 400

    known: list[float] = []
    unknown: list[float] = []
    for attempt in range(25):  # interleaved, so drift on the machine hits both alike
        for username, into in [("ada", known), (f"nobody-{attempt}", unknown)]:
            started = time.perf_counter()
            error = failed_login(provider, client, username, "a wrong but long password")
            into.append(time.perf_counter() - started)
            assert (oauth_status(error), error.description) == (400, "invalid username or password")

    print(
        f"\nwrong password: median {statistics.median(known) * 1000:.1f} ms "
        f"[{min(known) * 1000:.1f}, {max(known) * 1000:.1f}]"
        f"\nunknown user:   median {statistics.median(unknown) * 1000:.1f} ms "
        f"[{min(unknown) * 1000:.1f}, {max(unknown) * 1000:.1f}]"
    )
    assert max(min(known), min(unknown)) <= min(max(known), max(unknown)), (known, unknown)
