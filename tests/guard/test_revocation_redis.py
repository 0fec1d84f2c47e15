"""Redis revocation against the real Redis at 127.0.0.1:6379 (and a private one to take down).

Every test works under its own key prefix and deletes only its own keys; the shared Redis is
never flushed or stopped. Without that Redis these tests fail — they are never skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tessera import jose
from tessera.guard import Guard, TokenRevoked, Unavailable, rule
from tessera.guard.revocation_redis import RedisRevocationList

from .conftest import AUDIENCE, ISSUER, Mint
from .servers import RedisProcess

SHARED_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    client = redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at 127.0.0.1:6379 is required and unreachable: {error}")
    name = f"test:guard:{uuid.uuid4().hex}:"
    try:
        yield name
    finally:
        own = list(client.scan_iter(match=name + "*"))
        if own:
            client.delete(*own)
        client.close()


def make_guard(signing_key: jose.Key, revocations: RedisRevocationList, **options: object) -> Guard:
    return Guard(
        keys=signing_key.public(),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        revocation=revocations,
        cache=64,
        **options,  # type: ignore[arg-type]
    )


def wait_until(condition: object, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.001)
    raise AssertionError(f"condition not met within {timeout} s")


def refused(guard: Guard, token: str) -> bool:
    try:
        guard.authenticate(token)
    except TokenRevoked:
        return True
    return False


def test_revoked_jti_is_refused_at_another_guard_within_100_ms(
    prefix: str, signing_key: jose.Key, mint: Mint
) -> None:
    with (
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as idp_side,
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as other_node,
    ):
        first, second = make_guard(signing_key, idp_side), make_guard(signing_key, other_node)
        token = mint(jti="t-revoke")
        assert second.authenticate(token).jti == "t-revoke"  # now in the verified cache too
        started = time.monotonic()
        idp_side.revoke("t-revoke", expires_at=time.time() + 300)
        assert refused(first, token)
        elapsed = wait_until(lambda: refused(second, token), timeout=1.0)
        assert time.monotonic() - started < 0.1, f"took {elapsed * 1000:.1f} ms"


def test_logout_everywhere_reaches_every_guard(
    prefix: str, signing_key: jose.Key, mint: Mint
) -> None:
    with (
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as idp_side,
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as other_node,
    ):
        guard = make_guard(signing_key, other_node)
        now = int(time.time())
        before = mint(iat=now - 10)
        idp_side.revoke_subject("ada", not_before=now - 5, expires_at=now + 300)
        wait_until(lambda: refused(guard, before), timeout=0.1)
        assert guard.authenticate(mint(iat=now)).sub == "ada"
        assert guard.authenticate(mint(sub="bob", iat=now - 10)).sub == "bob"


def test_entries_expire_with_the_token_and_load_at_startup(
    prefix: str, signing_key: jose.Key, mint: Mint
) -> None:
    expires_at = int(time.time()) + 120
    with RedisRevocationList(SHARED_REDIS, prefix=prefix) as idp_side:
        idp_side.revoke("t-early", expires_at=expires_at)
        ttl = idp_side.redis.ttl(prefix + "jti:t-early")
        assert 115 <= ttl <= 120
    # A guard that starts after the revocation learns it from the snapshot, not from pub/sub.
    with RedisRevocationList(SHARED_REDIS, prefix=prefix) as late:
        assert late.in_sync
        assert refused(make_guard(signing_key, late), mint(jti="t-early"))
        assert late.is_revoked("t-other") is False


def test_redis_down_fails_closed_on_sensitive_routes(
    prefix: str, signing_key: jose.Key, mint: Mint
) -> None:
    server = RedisProcess().start()
    try:
        with RedisRevocationList(server.url, prefix=prefix, max_silence=0.5) as revocations:
            guard = make_guard(signing_key, revocations, on_revocation_unavailable="allow")
            known = mint(jti="t-known")
            revocations.revoke("t-known", expires_at=time.time() + 300)
            token = mint()
            sensitive = rule(sensitive=True)
            assert guard.authenticate(token, sensitive).sub == "ada"
            server.stop()
            wait_until(lambda: not revocations.in_sync, timeout=2.0)
            with pytest.raises(Unavailable) as unavailable:
                guard.authenticate(token, sensitive)
            assert (unavailable.value.status, unavailable.value.code) == (
                503,
                "revocation_unavailable",
            )
            assert guard.authenticate(token).sub == "ada"  # the configured policy: allow
            assert refused(guard, known)  # what the mirror knows still refuses
            strict = make_guard(signing_key, revocations)
            with pytest.raises(Unavailable):
                strict.authenticate(token)
    finally:
        server.stop()


def test_reconnects_and_resyncs_after_redis_comes_back(prefix: str) -> None:
    server = RedisProcess().start()
    try:
        with RedisRevocationList(
            server.url, prefix=prefix, max_silence=0.5, resync_interval=0.3
        ) as revocations:
            server.stop()
            wait_until(lambda: not revocations.in_sync, timeout=2.0)
            server.start()
            writer = redis.Redis.from_url(server.url)
            writer.set(prefix + "jti:t-missed", "1", ex=300)  # no event: only a resync finds it
            writer.close()
            wait_until(lambda: revocations.in_sync, timeout=5.0)
            wait_until(lambda: revocations.is_revoked("t-missed"), timeout=5.0)
    finally:
        server.stop()


def test_never_reachable_redis_is_unavailable(
    prefix: str, signing_key: jose.Key, mint: Mint
) -> None:
    server = RedisProcess()  # a free port with nothing listening
    with RedisRevocationList(server.url, prefix=prefix, max_silence=0.3).start(
        wait=0.2
    ) as revocations:
        guard = make_guard(signing_key, revocations, on_revocation_unavailable="allow")
        with pytest.raises(Unavailable):
            guard.authenticate(mint(), rule(sensitive=True))
