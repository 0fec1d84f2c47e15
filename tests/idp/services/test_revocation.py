"""Revocation: the access-token blocklist, logging out everywhere, RFC 7009 revocation as a
service, and the fan-out to Redis in the format ``tessera.guard`` reads — only once committed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from tessera.guard.revocation import is_revoked as guard_is_revoked
from tessera.guard.revocation_redis import RedisRevocationList
from tessera.idp.cache.fanout import RedisFanout
from tessera.idp.config import Settings
from tessera.idp.errors import OAuthError
from tessera.idp.flows.grants import token_response
from tessera.idp.flows.revoke import log_out_everywhere, revoke
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context
from tessera.idp.store.models import Client, RefreshFamily, RevokedToken, SubjectNotBefore

from ...guard.servers import RedisProcess
from ...services import REDIS_URL
from ..conftest import (
    Registered,
    add_client,
    add_tenant,
    add_user,
    all_rows,
    first_party_client,
    make_settings,
)

CONTEXT = Context(ip="192.0.2.1")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def service(cheap_passwords: Provider, tenant: str) -> Registered:
    return add_client(cheap_passwords, tenant)


def access_token(provider: Provider, client: Registered) -> tuple[str, dict[str, Any]]:
    answer = token_response(provider, {"grant_type": "client_credentials"}, client.basic, CONTEXT)
    token = answer["access_token"]
    return token, provider.issuer.verifier().verify(token)


def revoked(provider: Provider, claims: dict[str, Any]) -> bool:
    with provider.database.session(readonly=True) as session:
        return provider.revocations.is_revoked(session, claims)


def revoke_as(provider: Provider, client_id: str, token: str, hint: str | None = None) -> None:
    with provider.database.session() as session:
        client = session.get(Client, client_id)
        assert client is not None
        revoke(provider, session, client, token, hint=hint, context=CONTEXT)


def claims_for(subject: str, iat: int, tenant: str = "acme", jti: str = "j") -> dict[str, Any]:
    return {"jti": jti, "sub": subject, "iat": iat, "exp": iat + 900, "tenant": tenant}


# ---------------------------------------------------------------------- blocklist


def test_revoked_access_token_is_on_the_blocklist_until_it_expires(
    provider: Provider, service: Registered
) -> None:
    token, claims = access_token(provider, service)
    _, other_claims = access_token(provider, service)
    assert not revoked(provider, claims)
    revoke_as(provider, service.id, token)
    assert revoked(provider, claims)
    assert not revoked(provider, other_claims)
    with provider.database.session(readonly=True) as session:
        row = session.get(RevokedToken, claims["jti"])
        assert row is not None
        assert (row.expires_at, row.tenant_id) == (claims["exp"], service.tenant_id)


def test_revoking_twice_is_harmless(provider: Provider, service: Registered) -> None:
    token, claims = access_token(provider, service)
    revoke_as(provider, service.id, token)
    revoke_as(provider, service.id, token, hint="access_token")
    assert revoked(provider, claims)


def test_unknown_or_malformed_tokens_are_accepted_silently(
    provider: Provider, service: Registered
) -> None:
    before = all_rows(provider)
    for token in ("", "nonsense", "a.b.c", "x" * 5000):
        revoke_as(provider, service.id, token)
    assert all_rows(provider) == before


def test_a_client_cannot_revoke_another_clients_tokens(
    provider: Provider, service: Registered
) -> None:
    intruder = add_client(provider, service.tenant_id)
    token, claims = access_token(provider, service)
    with pytest.raises(OAuthError) as caught:
        revoke_as(provider, intruder.id, token)
    assert caught.value.error == "unauthorized_client"
    assert not revoked(provider, claims)


def test_revoking_a_refresh_token_revokes_its_family(
    provider: Provider, service: Registered
) -> None:
    add_user(provider, service.tenant_id, password=PASSWORD)
    app = first_party_client(provider, service.tenant_id)
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    refresh_token = token_response(provider, form, app.basic, CONTEXT)["refresh_token"]
    with pytest.raises(OAuthError):
        revoke_as(provider, service.id, refresh_token, hint="refresh_token")  # not its token
    revoke_as(provider, app.id, refresh_token, hint="refresh_token")
    with provider.database.session(readonly=True) as session:
        found = provider.refresh.find(session, refresh_token)
        assert found is not None
        assert found[1].revoked_reason == "revoked"
    with pytest.raises(OAuthError) as caught:
        token_response(
            provider,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            app.basic,
            CONTEXT,
        )
    assert caught.value.error == "invalid_grant"


# ---------------------------------------------------------------------- logging out everywhere


def test_log_out_everywhere_revokes_every_family_and_sets_not_before(
    provider: Provider, service: Registered
) -> None:
    user = add_user(provider, service.tenant_id, password=PASSWORD)
    app = first_party_client(provider, service.tenant_id)
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    sessions = [token_response(provider, form, app.basic, CONTEXT) for _ in range(3)]
    claims = [provider.issuer.verifier().verify(answer["access_token"]) for answer in sessions]
    with provider.database.session() as session:
        count = log_out_everywhere(provider, session, service.tenant_id, user.id, CONTEXT)
    assert count == 3
    with provider.database.session(readonly=True) as session:
        families = session.query(RefreshFamily).filter_by(subject=user.id).all()
        assert {family.revoked_reason for family in families} == {"logout-all"}
        not_before = session.get(SubjectNotBefore, (service.tenant_id, user.id))
        assert not_before is not None
    assert all(revoked(provider, item) for item in claims)
    for answer in sessions:
        with pytest.raises(OAuthError):
            token_response(
                provider,
                {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]},
                app.basic,
                CONTEXT,
            )
    # a new login afterwards works, and its tokens are not revoked
    later = claims_for(user.id, not_before.not_before + 1, tenant=service.tenant_id)
    assert not revoked(provider, later)


def test_not_before_refuses_tokens_issued_up_to_the_logout(provider: Provider) -> None:
    now = 1_700_000_000
    with provider.database.session() as session:
        provider.revocations.log_out_everywhere(session, "acme", "ada", now)
    assert revoked(provider, claims_for("ada", now - 60))
    # iat has whole seconds: a token of the logout's own second may have been issued before it
    assert revoked(provider, claims_for("ada", now))
    assert not revoked(provider, claims_for("ada", now + 1))
    assert not revoked(provider, claims_for("bob", now - 60))
    assert not revoked(provider, claims_for("ada", now - 60, tenant="other"))


def test_not_before_only_moves_forward(provider: Provider) -> None:
    now = 1_700_000_000
    with provider.database.session() as session:
        provider.revocations.log_out_everywhere(session, "acme", "ada", now)
    with provider.database.session() as session:
        provider.revocations.log_out_everywhere(session, "acme", "ada", now - 500)
    assert revoked(provider, claims_for("ada", now - 1))


def test_is_revoked_honours_the_blocklist_and_the_not_before(provider: Provider) -> None:
    now = 1_700_000_000
    blocked = claims_for("bob", now, jti="blocked")
    with provider.database.session() as session:
        provider.revocations.revoke_access_token(session, blocked)
        provider.revocations.log_out_everywhere(session, "acme", "ada", now)
    assert revoked(provider, blocked)
    assert not revoked(provider, claims_for("bob", now, jti="another"))
    assert revoked(provider, claims_for("ada", now - 1, jti="another"))


# ---------------------------------------------------------------------- Redis fan-out


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture
def redis_provider(
    database_url: str,
    tmp_path: Path,
    redis_prefix: str,
    make_provider: Callable[[Settings], Provider],
) -> Provider:
    """A provider that fans revocations out to Redis under this test's own prefix."""
    node = make_provider(
        make_settings(database_url, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    )
    assert isinstance(node.revocations.fanout, RedisFanout)
    assert node.revocations.fanout.prefix == redis_prefix
    add_tenant(node, "acme")
    return node


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_revocation_reaches_redis_only_after_commit(
    redis_provider: Provider, redis_prefix: str, redis_client: redis.Redis
) -> None:
    exp = int(time.time()) + 600
    claims = {"jti": "jti-1", "sub": "svc", "iat": exp - 900, "exp": exp, "tenant": "acme"}
    key = redis_prefix + "jti:jti-1"
    with redis_provider.database.session() as session:
        redis_provider.revocations.revoke_access_token(session, claims)
        assert redis_client.get(key) is None  # written, not yet committed
    assert redis_client.get(key) == b"1"
    assert redis_client.expiretime(key) == exp


def test_rolled_back_revocation_never_reaches_redis(
    redis_provider: Provider, redis_prefix: str, redis_client: redis.Redis
) -> None:
    exp = int(time.time()) + 600
    claims = {"jti": "jti-2", "sub": "svc", "iat": exp - 900, "exp": exp, "tenant": "acme"}

    def failing_request() -> None:
        with redis_provider.database.session() as session:
            redis_provider.revocations.revoke_access_token(session, claims)
            redis_provider.revocations.log_out_everywhere(session, "acme", "ada", exp - 900)
            raise RuntimeError("the request failed after the revocation was written")

    with pytest.raises(RuntimeError, match="failed after"):
        failing_request()
    assert list(redis_client.scan_iter(match=redis_prefix + "*")) == []
    assert not revoked(redis_provider, claims)


def test_guard_reads_what_the_provider_publishes(
    redis_provider: Provider, redis_prefix: str, redis_client: redis.Redis
) -> None:
    now = int(time.time())
    exp = now + 600
    listening = RedisRevocationList(REDIS_URL, prefix=redis_prefix).start()
    try:
        assert listening.is_revoked("jti-3") is False
        assert listening.not_before("ada") is None
        claims = {"jti": "jti-3", "sub": "svc", "iat": now, "exp": exp, "tenant": "acme"}
        with redis_provider.database.session() as session:
            redis_provider.revocations.revoke_access_token(session, claims)
            redis_provider.revocations.log_out_everywhere(session, "acme", "ada", now)
        # a guard already following the log learns it there...
        assert wait_for(lambda: listening.is_revoked("jti-3"))
        assert wait_for(lambda: listening.not_before("ada") is not None)
        nbf = listening.not_before("ada")
        # ...and one starting later loads it from the keys.
        with RedisRevocationList(REDIS_URL, prefix=redis_prefix) as starting:
            assert starting.is_revoked("jti-3") is True
            assert starting.not_before("ada") == nbf
            assert starting.is_revoked("jti-other") is False
            assert guard_is_revoked(starting, {"jti": "x", "sub": "ada", "iat": now}) is True
            assert guard_is_revoked(starting, {"jti": "x", "sub": "ada", "iat": now + 1}) is False
            assert guard_is_revoked(starting, claims) is True
        with redis_provider.database.session(readonly=True) as session:
            row = session.get(SubjectNotBefore, ("acme", "ada"))
            assert row is not None
            assert nbf == row.not_before  # the guard and the provider draw the same line
        entries = redis_client.xrange(redis_prefix + "log")
        assert [orjson.loads(fields[b"e"]) for _, fields in entries] == [
            {"jti": "jti-3", "exp": exp},
            {"sub": "ada", "nbf": nbf, "exp": row.expires_at},
        ]
    finally:
        listening.close()


def test_revocation_through_the_service_is_fanned_out(
    redis_provider: Provider, redis_prefix: str
) -> None:
    client = add_client(redis_provider, "acme")
    answer = token_response(
        redis_provider, {"grant_type": "client_credentials"}, client.basic, CONTEXT
    )
    claims = redis_provider.issuer.verifier().verify(answer["access_token"])
    revoke_as(redis_provider, client.id, answer["access_token"])
    with RedisRevocationList(REDIS_URL, prefix=redis_prefix) as guard_list:
        assert guard_list.is_revoked(claims["jti"]) is True


def test_an_older_logout_never_moves_the_published_not_before_back(
    redis_provider: Provider, redis_prefix: str
) -> None:
    now = int(time.time())
    with redis_provider.database.session() as session:
        redis_provider.revocations.log_out_everywhere(session, "acme", "ada", now)
    with redis_provider.database.session() as session:  # e.g. a node whose clock is behind
        redis_provider.revocations.log_out_everywhere(session, "acme", "ada", now - 30)
    with RedisRevocationList(REDIS_URL, prefix=redis_prefix) as guard_list:
        assert guard_list.not_before("ada") == now + 1
        assert guard_is_revoked(guard_list, {"jti": "x", "sub": "ada", "iat": now}) is True


@dataclass
class PrivateRedis:
    """A Redis of the test's own (to take down and restart empty), and a node fanning out to it."""

    server: RedisProcess
    node: Provider
    fanout: RedisFanout


@pytest.fixture
def private_redis(
    database_url: str,
    tmp_path: Path,
    redis_prefix: str,
    make_provider: Callable[[Settings], Provider],
) -> Iterator[PrivateRedis]:
    server = RedisProcess().start()
    try:
        node = make_provider(
            make_settings(database_url, tmp_path, redis_url=server.url, redis_prefix=redis_prefix)
        )
        add_tenant(node, "acme")
        fanout = node.revocations.fanout
        assert isinstance(fanout, RedisFanout)
        yield PrivateRedis(server, node, fanout)
    finally:
        server.stop()


def test_a_revocation_made_while_redis_is_away_reaches_the_guards_once_it_is_back(
    private_redis: PrivateRedis, redis_prefix: str
) -> None:
    server, node, fanout = private_redis.server, private_redis.node, private_redis.fanout
    assert fanout.repair(node.database) == 0  # the first call writes everything: nothing
    assert fanout.repair(node.database) is None  # then only what is due
    now = int(time.time())
    before, during = claims_for("svc", now, jti="before"), claims_for("svc", now, jti="during")
    with node.database.session() as session:
        node.revocations.revoke_access_token(session, before)
    guard_list = RedisRevocationList(server.url, prefix=redis_prefix, max_silence=0.5)
    with guard_list:
        assert wait_for(lambda: guard_list.is_revoked("before"))
        server.stop()  # and it comes back empty: no persistence
        with node.database.session() as session:
            node.revocations.revoke_access_token(session, during)  # committed all the same
        assert revoked(node, during)
        assert fanout.failures == 1 and fanout.owed_for(now=time.time() + 5) >= 5
        assert fanout.repair(node.database) is None  # still away: still owed
        failed = fanout.failures
        server.start()
        assert fanout.repair(node.database) == 2  # the whole denylist, lost one included
        assert fanout.owed_for() == 0.0
        assert wait_for(lambda: guard_list.in_sync and guard_list.is_revoked("during"))
        assert guard_list.is_revoked("before")
        with node.database.session() as session:  # and each one is written at once again
            node.revocations.revoke_access_token(session, claims_for("svc", now, jti="after"))
        assert wait_for(lambda: guard_list.is_revoked("after"))
        assert fanout.failures == failed


def test_a_redis_restarted_empty_is_given_the_denylist_again(
    private_redis: PrivateRedis, redis_prefix: str
) -> None:
    server, node, fanout = private_redis.server, private_redis.node, private_redis.fanout
    now = int(time.time())
    with node.database.session() as session:
        node.revocations.revoke_access_token(session, claims_for("svc", now, jti="kept"))
        node.revocations.log_out_everywhere(session, "acme", "ada", now)
    fanout.repair(node.database)
    server.stop()
    server.start()  # no write failed meanwhile: only its run_id tells
    assert fanout.failures == 0
    assert fanout.repair(node.database) == 2
    with RedisRevocationList(server.url, prefix=redis_prefix) as guard_list:
        assert guard_list.is_revoked("kept") and guard_list.not_before("ada") == now + 1
