"""Introspection-backed revocation against a real RFC 7662 endpoint: cache, refusal, outage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tessera import jose
from tessera.guard import Guard, TokenRevoked, Unavailable, rule
from tessera.guard.introspection import AsyncIntrospection, Introspection

from .conftest import AUDIENCE, ISSUER, Mint
from .servers import JwksServer


def make_guard(signing_key: jose.Key, status: Any) -> Guard:
    return Guard(
        keys=signing_key.public(),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        revocation=status,
        check_revocation="sensitive",
    )


def introspection(server: JwksServer, **options: Any) -> Introspection:
    return Introspection(
        server.url + "/introspect", client_id="api", client_secret="s3cret", **options
    )


def test_active_token_passes_and_the_answer_is_cached(
    jwks_server: JwksServer, signing_key: jose.Key, mint: Mint
) -> None:
    guard = make_guard(signing_key, introspection(jwks_server))
    token = mint()
    for _ in range(5):
        assert guard.authenticate(token, rule(sensitive=True)).sub == "ada"
    assert jwks_server.counts["/introspect"] == 1


def test_only_sensitive_routes_ask(
    jwks_server: JwksServer, signing_key: jose.Key, mint: Mint
) -> None:
    guard = make_guard(signing_key, introspection(jwks_server))
    guard.authenticate(mint())
    assert jwks_server.counts.get("/introspect", 0) == 0


def test_inactive_token_is_refused_and_stays_refused(
    jwks_server: JwksServer, signing_key: jose.Key, mint: Mint
) -> None:
    status = introspection(jwks_server, cache_ttl=0)
    guard = make_guard(signing_key, status)
    token = mint()
    jwks_server.inactive.add(token)
    for _ in range(3):
        with pytest.raises(TokenRevoked):
            guard.authenticate(token, rule(sensitive=True))
    assert status.requests == 1


def test_short_cache_expires(jwks_server: JwksServer, signing_key: jose.Key, mint: Mint) -> None:
    guard = make_guard(signing_key, introspection(jwks_server, cache_ttl=0))
    token = mint()
    guard.authenticate(token, rule(sensitive=True))
    jwks_server.inactive.add(token)
    with pytest.raises(TokenRevoked):
        guard.authenticate(token, rule(sensitive=True))


@pytest.mark.parametrize("answer", [{"active": "true"}, {"scope": "x"}])
def test_a_nonsense_answer_fails_closed(
    jwks_server: JwksServer, signing_key: jose.Key, mint: Mint, answer: dict[str, Any]
) -> None:
    jwks_server.introspection_answer = answer
    guard = make_guard(signing_key, introspection(jwks_server))
    with pytest.raises(Unavailable, match="revocation_unavailable"):
        guard.authenticate(mint(), rule(sensitive=True))


def test_unreachable_endpoint_fails_closed(
    jwks_server: JwksServer, signing_key: jose.Key, mint: Mint
) -> None:
    guard = make_guard(signing_key, introspection(jwks_server, timeout=1))
    jwks_server.stop()
    with pytest.raises(Unavailable, match="revocation_unavailable"):
        guard.authenticate(mint(), rule(sensitive=True))


def test_wrong_client_credentials_fail_closed(
    jwks_server: JwksServer, signing_key: jose.Key, mint: Mint
) -> None:
    status = Introspection(jwks_server.url + "/introspect", client_id="api", client_secret="no")
    with pytest.raises(Unavailable):
        make_guard(signing_key, status).authenticate(mint(), rule(sensitive=True))


def test_async_twin(jwks_server: JwksServer, signing_key: jose.Key, mint: Mint) -> None:
    status = AsyncIntrospection(
        jwks_server.url + "/introspect", client_id="api", client_secret="s3cret"
    )
    guard = make_guard(signing_key, status)
    good, revoked = mint(), mint()
    jwks_server.inactive.add(revoked)

    async def main() -> None:
        assert (await guard.authenticate_async(good, rule(sensitive=True))).sub == "ada"
        with pytest.raises(TokenRevoked):
            await guard.authenticate_async(revoked, rule(sensitive=True))

    asyncio.run(main())
    with pytest.raises(jose.UsageError):
        guard.authenticate(good)
