"""Remote JWKS sources against a real JWKS server: caching, rotation, cooldown, stale serving."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tessera import jose
from tessera.guard.errors import FetchError, KeysUnavailable
from tessera.guard.remote import AsyncRemoteJwks, RemoteJwks

from .conftest import FakeClock
from .servers import JwksServer


def test_first_get_fetches_once_and_then_serves_from_cache(jwks_server: JwksServer) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks")
    first = source.get()
    assert first.get("key-1") is not None
    assert source.get() is first
    assert jwks_server.jwks_fetches == 1


def test_cache_control_max_age_sets_the_lifetime_within_bounds(
    jwks_server: JwksServer, clock: FakeClock
) -> None:
    jwks_server.cache_control = "public, max-age=120"
    source = RemoteJwks(jwks_server.url + "/jwks", clock=clock)
    source.get()
    clock.advance(119)
    source.get()
    assert jwks_server.jwks_fetches == 1
    clock.advance(2)
    source.get()
    assert jwks_server.jwks_fetches == 2


def test_tiny_max_age_is_raised_to_the_lower_bound(
    jwks_server: JwksServer, clock: FakeClock
) -> None:
    jwks_server.cache_control = "max-age=1"
    source = RemoteJwks(jwks_server.url + "/jwks", clock=clock, min_ttl=60)
    source.get()
    clock.advance(59)
    source.get()
    assert jwks_server.jwks_fetches == 1


def test_without_cache_control_keys_live_five_minutes(
    jwks_server: JwksServer, clock: FakeClock
) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks", clock=clock)
    source.get()
    clock.advance(299)
    source.get()
    assert jwks_server.jwks_fetches == 1
    clock.advance(1)
    source.get()
    assert jwks_server.jwks_fetches == 2


def test_unchanged_document_keeps_the_same_keyset_object(
    jwks_server: JwksServer, clock: FakeClock
) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks", clock=clock)
    first = source.get()
    clock.advance(301)
    assert source.get() is first
    assert jwks_server.jwks_fetches == 2


def test_rotation_new_kid_is_found_after_one_refetch(
    jwks_server: JwksServer, signing_key: jose.Key, next_key: jose.Key, clock: FakeClock
) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks", clock=clock)
    assert source.get().get("key-2") is None
    jwks_server.jwks = jose.KeySet([signing_key, next_key]).to_jwks()
    clock.advance(30)  # the cooldown started with the first fetch
    assert source.refresh().get("key-2") is not None
    assert jwks_server.jwks_fetches == 2


def test_random_kid_flood_causes_at_most_one_fetch_per_cooldown(
    jwks_server: JwksServer,
) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks", cooldown=30)
    source.get()

    def flood() -> None:
        for _ in range(50):
            source.refresh()

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 400 refresh requests: the initial fetch, then none (the cooldown started with it).
    assert jwks_server.jwks_fetches == 1


def test_flood_over_several_cooldowns_fetches_once_per_cooldown(
    jwks_server: JwksServer,
) -> None:
    cooldown = 0.25
    source = RemoteJwks(jwks_server.url + "/jwks", cooldown=cooldown)
    started = time.monotonic()
    stop = started + 1.0

    def flood() -> None:
        while time.monotonic() < stop:
            source.refresh()

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert jwks_server.jwks_fetches <= int(elapsed / cooldown) + 1


def test_concurrent_callers_share_one_inflight_fetch(jwks_server: JwksServer) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks")
    barrier = threading.Barrier(16)
    results: list[jose.KeySet] = []

    def call() -> None:
        barrier.wait()
        results.append(source.get())

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 16
    assert all(keys is results[0] for keys in results)
    assert jwks_server.jwks_fetches == 1


def test_server_down_serves_last_good_keys_until_the_stale_limit(
    jwks_server: JwksServer, clock: FakeClock
) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks", clock=clock, ttl=300, max_stale=600)
    good = source.get()
    jwks_server.stop()
    clock.advance(301)
    assert source.get() is good
    assert source.refresh() is good
    clock.advance(598)
    assert source.get() is good
    clock.advance(2)
    with pytest.raises(KeysUnavailable):
        source.get()


def test_server_error_serves_stale_and_retries_only_after_a_cooldown(
    jwks_server: JwksServer, clock: FakeClock
) -> None:
    source = RemoteJwks(jwks_server.url + "/jwks", clock=clock, cooldown=30)
    good = source.get()
    jwks_server.mode = "error"
    clock.advance(301)
    for _ in range(20):
        assert source.get() is good
    assert jwks_server.jwks_fetches == 2
    clock.advance(30)
    jwks_server.mode = "ok"
    assert source.get() is good
    assert jwks_server.jwks_fetches == 3
    assert source.peek() is good


def test_oversize_response_is_refused(jwks_server: JwksServer) -> None:
    jwks_server.mode = "oversize"
    source = RemoteJwks(jwks_server.url + "/jwks")
    with pytest.raises(KeysUnavailable):
        source.get()
    assert source.peek() is None


def test_redirect_is_refused_and_not_followed(jwks_server: JwksServer) -> None:
    jwks_server.mode = "redirect"
    source = RemoteJwks(jwks_server.url + "/jwks")
    with pytest.raises(KeysUnavailable):
        source.get()
    assert jwks_server.counts.get("/good-jwks", 0) == 0


def test_plain_http_is_refused_except_on_loopback() -> None:
    with pytest.raises(FetchError):
        RemoteJwks("http://id.example/jwks")
    assert RemoteJwks("http://localhost:1/jwks").url == "http://localhost:1/jwks"


def test_published_secrets_are_never_taken_as_keys(jwks_server: JwksServer) -> None:
    secret = jose.Key.generate("HS256", kid="shared")
    jwks_server.jwks = {"keys": [{**secret.to_jwk(private=True)}, *jwks_server.jwks["keys"]]}
    keys = RemoteJwks(jwks_server.url + "/jwks").get()
    assert keys.get("shared") is None
    assert all(not key.is_private for key in keys)


def test_discovery_finds_the_jwks_uri(jwks_server: JwksServer) -> None:
    jwks_server.metadata_issuer = jwks_server.url
    source = RemoteJwks.discover(jwks_server.url)
    assert source.get().get("key-1") is not None
    assert source.url == jwks_server.url + "/jwks"


def test_discovery_with_a_mismatched_issuer_is_refused(jwks_server: JwksServer) -> None:
    jwks_server.metadata_issuer = "https://attacker.example"
    source = RemoteJwks.discover(jwks_server.url)
    with pytest.raises(KeysUnavailable):
        source.get()
    assert jwks_server.jwks_fetches == 0


# ------------------------------------------------------------------ the async twin


def test_async_concurrent_callers_share_one_inflight_fetch(jwks_server: JwksServer) -> None:
    source = AsyncRemoteJwks(jwks_server.url + "/jwks")

    async def main() -> list[jose.KeySet]:
        return await asyncio.gather(*(source.get() for _ in range(16)))

    results = asyncio.run(main())
    assert all(keys is results[0] for keys in results)
    assert jwks_server.jwks_fetches == 1


def test_async_rotation_and_flood(
    jwks_server: JwksServer, signing_key: jose.Key, next_key: jose.Key
) -> None:
    source = AsyncRemoteJwks(jwks_server.url + "/jwks", cooldown=30)

    async def main() -> jose.KeySet:
        await source.get()
        jwks_server.jwks = jose.KeySet([signing_key, next_key]).to_jwks()
        refreshed = await asyncio.gather(*(source.refresh() for _ in range(100)))
        return refreshed[-1]

    # The initial fetch started the cooldown, so the flood adds nothing.
    assert asyncio.run(main()).get("key-2") is None
    assert jwks_server.jwks_fetches == 1


def test_async_rotation_after_cooldown(
    jwks_server: JwksServer, signing_key: jose.Key, next_key: jose.Key, clock: FakeClock
) -> None:
    source = AsyncRemoteJwks(jwks_server.url + "/jwks", cooldown=30, clock=clock)

    async def main() -> jose.KeySet:
        await source.get()
        jwks_server.jwks = jose.KeySet([signing_key, next_key]).to_jwks()
        clock.advance(30)
        refreshed = await asyncio.gather(*(source.refresh() for _ in range(100)))
        return refreshed[-1]

    assert asyncio.run(main()).get("key-2") is not None
    assert jwks_server.jwks_fetches == 2


def test_async_oversize_redirect_and_mismatched_issuer_are_refused(
    jwks_server: JwksServer,
) -> None:
    async def fails(source: AsyncRemoteJwks) -> bool:
        try:
            await source.get()
        except KeysUnavailable:
            return True
        return False

    jwks_server.mode = "oversize"
    assert asyncio.run(fails(AsyncRemoteJwks(jwks_server.url + "/jwks")))
    jwks_server.mode = "redirect"
    assert asyncio.run(fails(AsyncRemoteJwks(jwks_server.url + "/jwks")))
    jwks_server.mode = "ok"
    jwks_server.metadata_issuer = "https://attacker.example"
    assert asyncio.run(fails(AsyncRemoteJwks.discover(jwks_server.url)))
    assert jwks_server.counts.get("/good-jwks", 0) == 0


def test_async_server_down_serves_stale_until_the_limit(
    jwks_server: JwksServer, clock: FakeClock
) -> None:
    source = AsyncRemoteJwks(jwks_server.url + "/jwks", clock=clock, max_stale=60)

    async def main() -> None:
        good = await source.get()
        jwks_server.stop()
        clock.advance(301)
        assert await source.get() is good
        clock.advance(60)
        with pytest.raises(KeysUnavailable):
            await source.get()

    asyncio.run(main())
