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
from tessera.guard.revocation_redis import RedisRevocationList, entry_id

from .conftest import AUDIENCE, ISSUER, Mint
from .servers import CuttableProxy, RedisProcess

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


def test_revoked_jti_is_refused_at_another_guard(
    prefix: str, signing_key: jose.Key, mint: Mint
) -> None:
    """How soon is measured by ``bench/idp_bench.py`` (the fan-out's latency distribution)."""
    with (
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as idp_side,
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as other_node,
    ):
        first, second = make_guard(signing_key, idp_side), make_guard(signing_key, other_node)
        token = mint(jti="t-revoke")
        assert second.authenticate(token).jti == "t-revoke"  # now in the verified cache too
        idp_side.revoke("t-revoke", expires_at=time.time() + 300)
        assert refused(first, token)
        wait_until(lambda: refused(second, token), timeout=2.0)
        assert other_node.loads == 1  # learnt from the log, not by reading every key again


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
    # A guard that starts after the revocation learns it from the keys, not from the log.
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


# A link the test can cut, a writer on the Redis behind it, and a guard's list through the link.
CutOff = tuple[CuttableProxy, RedisRevocationList, RedisRevocationList]


@pytest.fixture
def cut_off(prefix: str) -> Iterator[CutOff]:
    """A Redis of the test's own; a writer on it, and a guard's list behind a cuttable link."""
    server = RedisProcess().start()
    proxy = CuttableProxy(server.port)
    try:
        with (
            RedisRevocationList(server.url, prefix=prefix) as idp_side,
            RedisRevocationList(proxy.url, prefix=prefix, max_silence=0.5) as guard_side,
        ):
            yield proxy, idp_side, guard_side
    finally:
        proxy.close()
        server.stop()


def test_a_guard_cut_off_from_redis_reads_what_it_missed_from_the_log(
    cut_off: CutOff,
    signing_key: jose.Key,
    mint: Mint,
) -> None:
    proxy, idp_side, guard_side = cut_off
    guard = make_guard(signing_key, guard_side, on_revocation_unavailable="allow")
    tokens = {jti: mint(jti=jti) for jti in ("t-before", "t-during-1", "t-during-2")}
    idp_side.revoke("t-before", expires_at=time.time() + 300)
    wait_until(lambda: refused(guard, tokens["t-before"]), timeout=2.0)
    proxy.cut()
    wait_until(lambda: not guard_side.in_sync, timeout=2.0)
    idp_side.revoke("t-during-1", expires_at=time.time() + 300)
    idp_side.revoke_subject("ada", not_before=time.time(), expires_at=time.time() + 300)
    idp_side.revoke("t-during-2", expires_at=time.time() + 300)
    assert not refused(guard, tokens["t-during-1"])  # it cannot know yet
    proxy.restore()
    wait_until(lambda: guard_side.in_sync, timeout=5.0)
    wait_until(lambda: refused(guard, tokens["t-during-2"]), timeout=2.0)
    assert refused(guard, tokens["t-during-1"]) and guard_side.not_before("ada")
    assert guard_side.loads == 1  # caught up from its last entry: no key read again


def test_a_guard_away_longer_than_the_log_keeps_reads_every_key_again(
    cut_off: CutOff,
    signing_key: jose.Key,
    mint: Mint,
) -> None:
    proxy, idp_side, guard_side = cut_off
    guard = make_guard(signing_key, guard_side)
    idp_side.revoke("t-seen", expires_at=time.time() + 300)
    wait_until(lambda: refused(guard, mint(jti="t-seen")), timeout=2.0)
    proxy.cut()
    wait_until(lambda: not guard_side.in_sync, timeout=2.0)
    idp_side.revoke("t-trimmed", expires_at=time.time() + 300)
    idp_side.revoke("t-kept", expires_at=time.time() + 300)
    newest = "-".join(map(str, _last(idp_side)))
    idp_side.redis.xtrim(idp_side.log, minid=newest, approximate=False)
    assert idp_side.redis.xlen(idp_side.log) == 1  # "t-trimmed" is gone from the log
    proxy.restore()
    wait_until(lambda: guard_side.in_sync, timeout=5.0)
    assert guard_side.loads == 2  # a gap: it read the keys again
    assert refused(guard, mint(jti="t-trimmed")) and refused(guard, mint(jti="t-kept"))
    assert refused(guard, mint(jti="t-seen"))


def test_a_restarted_redis_is_read_again_from_its_keys(prefix: str) -> None:
    server = RedisProcess().start()
    proxy = CuttableProxy(server.port)  # the guard comes back only once the key is written
    try:
        with RedisRevocationList(proxy.url, prefix=prefix, max_silence=0.5) as revocations:
            proxy.cut()
            wait_until(lambda: not revocations.in_sync, timeout=2.0)
            server.stop()
            server.start()  # empty: no persistence
            writer = redis.Redis.from_url(server.url)
            writer.set(prefix + "jti:t-restored", "1", ex=300)  # no log entry: only keys
            writer.close()
            proxy.restore()
            wait_until(lambda: revocations.in_sync, timeout=5.0)
            assert revocations.is_revoked("t-restored")  # another run_id: keys read again
            assert revocations.loads == 2
    finally:
        proxy.close()
        server.stop()


def test_republish_writes_the_keys_and_has_every_guard_read_them(
    prefix: str, signing_key: jose.Key, mint: Mint
) -> None:
    now = time.time()
    with (
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as writer,
        RedisRevocationList(SHARED_REDIS, prefix=prefix) as follower,
    ):
        written = writer.republish(
            [("t-live", now + 300), ("t-gone", now - 1)],
            [("ada", now - 5, now + 300)],
            now=now,
        )
        assert written == 2  # the expired entry is left out
        wait_until(lambda: follower.loads == 2, timeout=2.0)
        guard = make_guard(signing_key, follower)
        assert refused(guard, mint(jti="t-live"))
        assert refused(guard, mint(sub="ada", iat=int(now) - 10))
        assert not refused(guard, mint(jti="t-gone"))
        assert writer.redis.ttl(prefix + "jti:t-live") > 290


def _last(revocations: RedisRevocationList) -> tuple[int, int]:
    (newest,) = revocations.redis.xrevrange(revocations.log, count=1)
    return entry_id(newest[0])


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
