"""The Guard end to end: verification, key rotation through a real JWKS server, revocation, logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import pytest

from tessera import jose
from tessera.guard import (
    Forbidden,
    Guard,
    InsufficientScope,
    MemoryRevocationList,
    MissingToken,
    RevocationUnavailable,
    TokenRefused,
    TokenRevoked,
    Unavailable,
    rule,
)
from tessera.guard.remote import AsyncRemoteJwks, RemoteJwks

from .conftest import AUDIENCE, ISSUER, FakeClock, Mint
from .servers import JwksServer


def make_guard(keys: Any, **options: Any) -> Guard:
    return Guard(keys=keys, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"], **options)


class Unreachable:
    """A revocation list whose backend is down (the real Redis case is in test_revocation_redis)."""

    def is_revoked(self, jti: str) -> bool:
        raise RevocationUnavailable("down")

    def not_before(self, sub: str) -> float | None:
        raise RevocationUnavailable("down")


def test_valid_token_gives_its_principal(signing_key: jose.Key, mint: Mint) -> None:
    guard = make_guard(signing_key.public())
    principal = guard.authenticate(mint(roles=["clerk"], azp="web"))
    assert (principal.sub, principal.tenant, principal.client_id) == ("ada", "acme", "web")
    assert principal.scopes == {"orders:read"}
    assert principal.roles == {"clerk"}
    assert principal.claims["iss"] == ISSUER


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": 1}, "expired"),
        ({"aud": "billing"}, "invalid_audience"),
        ({"iss": "https://evil.example"}, "invalid_issuer"),
        ({"nbf": 2**31}, "not_yet_valid"),
        ({"exp": None}, "missing_claim"),
    ],
)
def test_claim_failures_are_refused_with_their_code(
    signing_key: jose.Key, mint: Mint, overrides: dict[str, Any], code: str
) -> None:
    guard = make_guard(signing_key.public())
    with pytest.raises(TokenRefused) as refused:
        guard.authenticate(mint(**overrides))
    assert refused.value.code == code
    assert refused.value.status == 401


def test_wrong_key_and_garbage_are_refused(signing_key: jose.Key, mint: Mint) -> None:
    guard = make_guard(signing_key.public())
    other = jose.Key.generate("ES256", kid="key-1")
    with pytest.raises(TokenRefused, match="invalid_signature"):
        guard.authenticate(mint(key=other))
    with pytest.raises(TokenRefused, match="malformed"):
        guard.authenticate("not-a-token")
    with pytest.raises(TokenRefused, match="algorithm_not_allowed"):
        guard.authenticate(mint(key=jose.Key.generate("HS256", kid="key-1")))


def test_no_token_is_missing_token(signing_key: jose.Key) -> None:
    with pytest.raises(MissingToken):
        make_guard(signing_key.public()).authenticate(None)


def test_rules_are_applied_after_verification(signing_key: jose.Key, mint: Mint) -> None:
    guard = make_guard(signing_key.public())
    token = mint(scope="orders:read", roles=["clerk"])
    with pytest.raises(InsufficientScope) as refused:
        guard.authenticate(token, rule(scopes=["orders:read", "orders:write"]))
    assert refused.value.scope == ("orders:read", "orders:write")
    with pytest.raises(Forbidden, match="insufficient_role"):
        guard.authenticate(token, rule(roles=["admin"]))
    with pytest.raises(Forbidden, match="tenant_mismatch"):
        guard.authenticate(token, rule(tenant="tenant_id"), tenant="globex")
    assert guard.authenticate(token, rule(tenant="tenant_id"), tenant="acme").tenant == "acme"


def test_policy_errors_surface_at_construction(signing_key: jose.Key) -> None:
    with pytest.raises(jose.UsageError):
        Guard(keys=signing_key, issuer=None, audience=None, algorithms=["none"])
    with pytest.raises(jose.UsageError):
        make_guard(signing_key, check_revocation="never")  # type: ignore[arg-type]


# ------------------------------------------------------------------ keys from a real JWKS server


def test_rotation_new_kid_is_accepted_after_at_most_one_refetch(
    jwks_server: JwksServer, signing_key: jose.Key, next_key: jose.Key, mint: Mint, clock: FakeClock
) -> None:
    guard = make_guard(RemoteJwks(jwks_server.url + "/jwks", clock=clock))
    assert guard.authenticate(mint()).sub == "ada"
    jwks_server.jwks = jose.KeySet([signing_key, next_key]).to_jwks()
    clock.advance(60)
    before = jwks_server.jwks_fetches
    assert guard.authenticate(mint(key=next_key)).sub == "ada"
    assert jwks_server.jwks_fetches - before == 1
    assert guard.authenticate(mint()).sub == "ada"
    assert jwks_server.jwks_fetches - before == 1


def test_random_kid_flood_fetches_at_most_once_per_cooldown_counted_at_the_server(
    jwks_server: JwksServer, mint: Mint, clock: FakeClock
) -> None:
    guard = make_guard(RemoteJwks(jwks_server.url + "/jwks", clock=clock, cooldown=30))
    guard.authenticate(mint())
    attackers = [jose.Key.generate("ES256", kid=f"random-{n}") for n in range(4)]
    for window in range(3):
        for n in range(100):
            with pytest.raises(TokenRefused, match="key_not_found"):
                guard.authenticate(mint(key=attackers[n % 4]))
        assert jwks_server.jwks_fetches <= 1 + window
        clock.advance(30)
    assert jwks_server.jwks_fetches <= 3


def test_keys_unavailable_fails_closed_with_503(jwks_server: JwksServer, mint: Mint) -> None:
    jwks_server.mode = "error"
    guard = make_guard(RemoteJwks(jwks_server.url + "/jwks"))
    with pytest.raises(Unavailable) as refused:
        guard.authenticate(mint())
    assert (refused.value.status, refused.value.code) == (503, "keys_unavailable")


def test_async_guard_follows_rotation_with_an_async_source(
    jwks_server: JwksServer, signing_key: jose.Key, next_key: jose.Key, mint: Mint, clock: FakeClock
) -> None:
    guard = make_guard(AsyncRemoteJwks(jwks_server.url + "/jwks", clock=clock))

    async def main() -> None:
        assert (await guard.authenticate_async(mint())).sub == "ada"
        jwks_server.jwks = jose.KeySet([signing_key, next_key]).to_jwks()
        clock.advance(30)
        tokens = [mint(key=next_key) for _ in range(20)]
        principals = await asyncio.gather(*(guard.authenticate_async(t) for t in tokens))
        assert all(p.sub == "ada" for p in principals)

    asyncio.run(main())
    assert jwks_server.jwks_fetches == 2


def test_async_guard_works_with_a_sync_source(jwks_server: JwksServer, mint: Mint) -> None:
    guard = make_guard(RemoteJwks(jwks_server.url + "/jwks"))
    assert asyncio.run(guard.authenticate_async(mint())).sub == "ada"


def test_sync_authenticate_refuses_an_async_source(jwks_server: JwksServer, mint: Mint) -> None:
    guard = make_guard(AsyncRemoteJwks(jwks_server.url + "/jwks"))
    with pytest.raises(jose.UsageError):
        guard.authenticate(mint())


# ------------------------------------------------------------------ revocation and cache


def test_revoked_jti_is_refused_even_from_the_verified_token_cache(
    signing_key: jose.Key, mint: Mint
) -> None:
    revocations = MemoryRevocationList()
    guard = make_guard(signing_key.public(), revocation=revocations, cache=128)
    token = mint(jti="t-1")
    assert guard.authenticate(token).jti == "t-1"
    revocations.revoke("t-1", expires_at=time.time() + 300)
    with pytest.raises(TokenRevoked) as refused:
        guard.authenticate(token)
    assert refused.value.code == "revoked"


def test_logout_everywhere_refuses_tokens_issued_before_it(
    signing_key: jose.Key, mint: Mint
) -> None:
    revocations = MemoryRevocationList()
    guard = make_guard(signing_key.public(), revocation=revocations)
    now = int(time.time())
    old, new = mint(iat=now - 60), mint(iat=now)
    revocations.revoke_subject("ada", not_before=now - 30, expires_at=now + 300)
    with pytest.raises(TokenRevoked):
        guard.authenticate(old)
    assert guard.authenticate(new).sub == "ada"
    assert guard.authenticate(mint(sub="bob", iat=now - 60)).sub == "bob"


def test_revocation_only_on_sensitive_routes_when_so_configured(
    signing_key: jose.Key, mint: Mint
) -> None:
    revocations = MemoryRevocationList()
    guard = make_guard(signing_key.public(), revocation=revocations, check_revocation="sensitive")
    token = mint(jti="t-2")
    revocations.revoke("t-2", expires_at=time.time() + 300)
    assert guard.authenticate(token).sub == "ada"
    with pytest.raises(TokenRevoked):
        guard.authenticate(token, rule(sensitive=True))


def test_unreachable_revocation_fails_closed_on_sensitive_routes(
    signing_key: jose.Key, mint: Mint
) -> None:
    allowing = make_guard(
        signing_key.public(), revocation=Unreachable(), on_revocation_unavailable="allow"
    )
    assert allowing.authenticate(mint()).sub == "ada"
    with pytest.raises(Unavailable, match="revocation_unavailable"):
        allowing.authenticate(mint(), rule(sensitive=True))
    denying = make_guard(signing_key.public(), revocation=Unreachable())
    with pytest.raises(Unavailable, match="revocation_unavailable"):
        denying.authenticate(mint())


def test_verifier_is_rebuilt_only_when_the_keyset_changes(
    jwks_server: JwksServer, signing_key: jose.Key, next_key: jose.Key, mint: Mint, clock: FakeClock
) -> None:
    guard = make_guard(RemoteJwks(jwks_server.url + "/jwks", clock=clock), cache=16)
    guard.authenticate(mint())
    first = guard._current
    clock.advance(301)  # expired, refetched, same document
    guard.authenticate(mint())
    assert guard._current is first
    jwks_server.jwks = jose.KeySet([signing_key, next_key]).to_jwks()
    clock.advance(301)
    guard.authenticate(mint())
    assert guard._current is not first


# ------------------------------------------------------------------ decision log


def test_every_decision_is_logged_without_the_token(
    signing_key: jose.Key, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    guard = make_guard(signing_key.public())
    good, expired = mint(jti="t-ok"), mint(exp=1)
    with caplog.at_level(logging.DEBUG, logger="tessera.guard"):
        guard.authenticate(good, route="/orders")
        with pytest.raises(TokenRefused):
            guard.authenticate(expired, route="/orders")
        with pytest.raises(InsufficientScope):
            guard.authenticate(good, rule(scopes=["admin"]), route="/admin")
    events: list[Mapping[str, Any]] = [vars(record) for record in caplog.records]
    assert [(e["outcome"], e["code"], e["route"]) for e in events] == [
        ("allow", "ok", "/orders"),
        ("deny", "expired", "/orders"),
        ("deny", "insufficient_scope", "/admin"),
    ]
    assert events[0]["sub"] == "ada" and events[0]["jti"] == "t-ok"
    assert events[2]["sub"] == "ada"
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        assert good not in text and expired not in text
        assert good.split(".")[2] not in text


def test_a_key_removed_from_the_jwks_stops_verifying_even_cached_tokens(
    jwks_server: JwksServer, signing_key: jose.Key, next_key: jose.Key, mint: Mint, clock: FakeClock
) -> None:
    jwks_server.jwks = jose.KeySet([signing_key, next_key]).to_jwks()
    guard = make_guard(RemoteJwks(jwks_server.url + "/jwks", clock=clock), cache=16)
    old = mint()
    assert guard.authenticate(old).sub == "ada"  # verified and cached
    jwks_server.jwks = jose.KeySet([next_key]).to_jwks()  # key-1 withdrawn (compromised)
    clock.advance(301)
    with pytest.raises(TokenRefused, match="key_not_found"):
        guard.authenticate(old)
    assert guard.authenticate(mint(key=next_key)).sub == "ada"
