"""Authorization codes on SQLite and PostgreSQL: stored hashed, bound to the request that made
them, redeemable once and briefly; a replay names what the code gave; of simultaneous
redemptions exactly one wins."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from tessera.idp.provider import Provider
from tessera.idp.services.authorization_codes import CodeGrant, CodeRefused
from tessera.idp.services.pkce import challenge_of
from tessera.idp.store.models import AuthorizationCode

from ..conftest import Registered, add_client, add_user, run_together

REDIRECT = "https://app.example/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@pytest.fixture
def web(provider: Provider, tenant: str) -> Registered:
    return add_client(
        provider, tenant, grant_types=("authorization_code",), redirect_uris=(REDIRECT,)
    )


@pytest.fixture
def grant(provider: Provider, tenant: str, web: Registered) -> CodeGrant:
    user = add_user(provider, tenant)
    return CodeGrant(
        tenant_id=tenant,
        client_id=web.id,
        user_id=user.id,
        redirect_uri=REDIRECT,
        scope="openid profile",
        code_challenge=challenge_of(VERIFIER),
        auth_time=int(time.time()) - 5,
        amr="pwd",
        nonce="n-0S6_WzA2Mj",
    )


def issue(provider: Provider, grant: CodeGrant, now: int | None = None) -> str:
    with provider.database.session() as session:
        return provider.codes.issue(session, grant, now=int(time.time()) if now is None else now)


def redeem(
    provider: Provider,
    code: str,
    *,
    client_id: str,
    redirect_uri: str | None = REDIRECT,
    verifier: str | None = VERIFIER,
    now: int | None = None,
) -> AuthorizationCode | CodeRefused:
    with provider.database.session() as session:
        return provider.codes.redeem(
            session,
            code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            verifier=verifier,
            now=int(time.time()) if now is None else now,
        )


def test_a_code_is_256_random_bits_stored_only_as_a_keyed_hash(
    provider: Provider, grant: CodeGrant
) -> None:
    codes = {issue(provider, grant) for _ in range(20)}
    assert len(codes) == 20
    assert all(len(code) == 43 for code in codes)  # base64url of 32 bytes
    with provider.database.session(readonly=True) as session:
        stored = set(session.scalars(select(AuthorizationCode.code_hash)))
    assert stored == {provider.codes.digest(code) for code in codes}
    assert not stored & codes


def test_a_code_redeems_once_into_what_the_request_decided(
    provider: Provider, grant: CodeGrant, web: Registered
) -> None:
    now = int(time.time())
    code = issue(provider, grant, now)
    row = redeem(provider, code, client_id=web.id, now=now + 1)
    assert isinstance(row, AuthorizationCode)
    assert (row.user_id, row.client_id, row.tenant_id) == (grant.user_id, web.id, grant.tenant_id)
    assert (row.scope, row.nonce, row.auth_time, row.amr) == (
        "openid profile",
        "n-0S6_WzA2Mj",
        grant.auth_time,
        "pwd",
    )
    assert (row.redeemed_at, row.expires_at) == (now + 1, now + 60)
    again = redeem(provider, code, client_id=web.id, now=now + 2)
    assert isinstance(again, CodeRefused) and again.reason == "authorization code already used"


def test_a_replay_names_what_the_code_gave(
    provider: Provider, grant: CodeGrant, web: Registered
) -> None:
    code = issue(provider, grant)
    row = redeem(provider, code, client_id=web.id)
    assert isinstance(row, AuthorizationCode)
    with provider.database.session() as session:
        provider.codes.issued(session, row, family_id="family-1", jti="jti-1")
    replay = redeem(provider, code, client_id=web.id)
    assert isinstance(replay, CodeRefused) and replay.replayed is not None
    assert (replay.replayed.family_id, replay.replayed.access_jti) == ("family-1", "jti-1")


def test_a_code_expires_after_its_ttl(
    provider: Provider, grant: CodeGrant, web: Registered
) -> None:
    now = int(time.time())
    code = issue(provider, grant, now)
    late = redeem(provider, code, client_id=web.id, now=now + 60)
    assert isinstance(late, CodeRefused) and late.reason == "invalid authorization code"
    assert late.replayed is None


def test_a_code_of_another_client_is_refused_and_not_spent(
    provider: Provider, grant: CodeGrant, web: Registered, tenant: str
) -> None:
    other = add_client(
        provider, tenant, grant_types=("authorization_code",), redirect_uris=(REDIRECT,)
    )
    code = issue(provider, grant)
    stolen = redeem(provider, code, client_id=other.id)
    assert isinstance(stolen, CodeRefused) and stolen.reason == "invalid authorization code"
    assert stolen.replayed is None  # nothing of the owner's is revealed or revoked
    assert isinstance(redeem(provider, code, client_id=web.id), AuthorizationCode)


@pytest.mark.parametrize(
    ("redirect_uri", "verifier", "reason"),
    [
        (REDIRECT + "/", VERIFIER, "redirect_uri does not match"),
        (None, VERIFIER, "redirect_uri does not match"),
        (REDIRECT, None, "code_verifier does not match"),
        (REDIRECT, VERIFIER[:-1] + "Y", "code_verifier does not match"),
        (REDIRECT, challenge_of(VERIFIER), "code_verifier does not match"),  # plain downgrade
    ],
)
def test_a_wrong_redirect_uri_or_verifier_spends_the_code(
    provider: Provider,
    grant: CodeGrant,
    web: Registered,
    redirect_uri: str | None,
    verifier: str | None,
    reason: str,
) -> None:
    code = issue(provider, grant)
    refused = redeem(provider, code, client_id=web.id, redirect_uri=redirect_uri, verifier=verifier)
    assert isinstance(refused, CodeRefused) and refused.reason.startswith(reason)
    # A thief without the verifier has burnt the code: the owner cannot redeem it either.
    assert isinstance(redeem(provider, code, client_id=web.id), CodeRefused)


@pytest.mark.parametrize("code", ["", "x", "A" * 43, "A" * 10_000, "\x00" * 43])
def test_unknown_or_absurd_codes_are_refused(
    provider: Provider, web: Registered, code: str
) -> None:
    refused = redeem(provider, code, client_id=web.id)
    assert isinstance(refused, CodeRefused) and refused.reason == "invalid authorization code"


def test_of_simultaneous_redemptions_exactly_one_wins(
    provider: Provider, grant: CodeGrant, web: Registered
) -> None:
    for _ in range(10):
        code = issue(provider, grant)
        results = run_together([lambda code=code: redeem(provider, code, client_id=web.id)] * 6)
        won = [result for result in results if isinstance(result, AuthorizationCode)]
        lost = [result for result in results if isinstance(result, CodeRefused)]
        assert (len(won), len(lost)) == (1, 5), results
        assert {refused.reason for refused in lost} == {"authorization code already used"}


def test_what_is_bound_to_the_code_comes_back_unchanged(
    provider: Provider, grant: CodeGrant, web: Registered
) -> None:
    bound = replace(
        grant, acr="mfa", amr="pwd otp", resource="https://api.example", session_id="s" * 36
    )
    row = redeem(provider, issue(provider, bound), client_id=web.id)
    assert isinstance(row, AuthorizationCode)
    assert (row.acr, row.amr, row.resource, row.session_id) == (
        "mfa",
        "pwd otp",
        "https://api.example",
        "s" * 36,
    )
