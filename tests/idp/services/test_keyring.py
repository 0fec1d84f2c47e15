"""The keyring: sealed keys, automatic rotation with prepublication, forced rotation, and
exactly one node rotating — on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from tessera import jose
from tessera.idp.config import Settings
from tessera.idp.provider import Provider
from tessera.idp.services.keyring import KeyInfo
from tessera.idp.services.secrets import MasterKey, MasterKeyError
from tessera.idp.store.database import Database
from tessera.idp.store.models import SigningKey
from tessera.jose import b64

from ..conftest import AUDIENCE, ISSUER, audit_events, make_settings, run_together

PERIOD = 4 * 3600
PREPUBLISH = 600
TTL = 300


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        key_rotation_period=PERIOD,
        key_prepublish=PREPUBLISH,
        access_token_ttl=TTL,
    )


def only_key(provider: Provider) -> KeyInfo:
    (info,) = provider.keyring.keys()
    return info


def published(provider: Provider, now: float) -> list[str]:
    return [jwk["kid"] for jwk in provider.keyring.jwks(now)["keys"]]


def stored_kids(provider: Provider) -> set[str]:
    with provider.database.session(readonly=True) as session:
        return set(session.scalars(select(SigningKey.kid)))


def sign(provider: Provider, now: float) -> str:
    return provider.issuer.issue(
        tenant_id="acme",
        subject="svc",
        client_id="svc",
        scope=("read",),
        audience=AUDIENCE,
        now=now,
    ).token


def verifies_against_jwks(provider: Provider, token: str, now: float) -> bool:
    """What a guard does: verify with the JWKS the provider publishes at ``now``."""
    verifier = jose.Verifier(
        jose.KeySet.from_jwks(provider.keyring.jwks(now)),
        algorithms=[provider.settings.signing_alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        typ="at+jwt",
    )
    try:
        verifier.verify(token, now=now)
    except jose.InvalidToken:
        return False
    return True


def kid_of(token: str) -> str:
    return str(jose.jwt.decode_unverified(token)[0]["kid"])


# ---------------------------------------------------------------------- the first key


def test_start_creates_one_active_key_and_audits_it(provider: Provider) -> None:
    info = only_key(provider)
    assert info.state(info.activates_at) == "active"
    assert info.retires_at - info.activates_at == PERIOD
    assert provider.keyring.signing_key().kid == info.kid
    assert published(provider, info.activates_at) == [info.kid]
    (event,) = [event for event in audit_events(provider) if event.event.startswith("key.")]
    assert (event.event, event.outcome, event.tenant_id) == ("key.created", "success", "*")
    assert info.kid in event.details


def test_second_start_reuses_the_stored_key(provider: Provider, settings: Settings) -> None:
    kid = only_key(provider).kid
    again = Provider(settings)
    again.start()
    try:
        assert [info.kid for info in again.keyring.keys(now=None)] == [kid]
        assert again.keyring.signing_key().kid == kid
    finally:
        again.close()


def test_private_key_is_sealed_at_rest(provider: Provider) -> None:
    key = provider.keyring.signing_key()
    assert key.kid is not None
    der = key.to_der(private=True)
    with provider.database.session(readonly=True) as session:
        row = session.get(SigningKey, key.kid)
        assert row is not None
        sealed = bytes(row.private_sealed)
        public_jwk = row.public_jwk
    assert sealed != der
    assert der not in sealed
    assert der[-32:] not in sealed  # not even the tail that holds the private scalar
    assert '"d"' not in public_jwk
    assert provider.master.unseal(sealed, aad=key.kid.encode()) == der
    with pytest.raises(MasterKeyError):
        MasterKey(bytes(32)).unseal(sealed, aad=key.kid.encode())


def test_a_provider_with_another_master_key_cannot_open_the_keys(
    provider: Provider, settings: Settings, tmp_path: Path
) -> None:
    other = Provider(
        make_settings(settings.database_url, tmp_path, master_key=b64.encode_str(bytes(32)))
    )
    try:
        with pytest.raises(MasterKeyError):
            other.keyring.signing_key()
    finally:
        other.close()


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "PS256", "EdDSA"])
def test_configured_algorithm_signs_and_verifies(
    alg: str, database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> None:
    node = make_provider(make_settings(database_url, tmp_path, signing_alg=alg))
    key = node.keyring.signing_key()
    assert key.alg == alg
    (jwk,) = node.keyring.jwks()["keys"]
    assert (jwk["alg"], jwk["use"], jwk["kid"]) == (alg, "sig", key.kid)
    assert "d" not in jwk
    now = 1_700_000_000
    assert verifies_against_jwks(node, sign(node, now), now)


# ---------------------------------------------------------------------- automatic rotation


def test_automatic_rotation_prepublishes_switches_and_retires(provider: Provider) -> None:
    old = only_key(provider)
    retire = old.retires_at
    due = retire - PREPUBLISH

    assert provider.keyring.ensure(due - 1) == []
    assert published(provider, due - 1) == [old.kid]

    (new_kid,) = provider.keyring.ensure(due)
    assert set(published(provider, due)) == {old.kid, new_kid}  # published before it signs
    assert provider.keyring.signing_key(due).kid == old.kid
    assert provider.keyring.ensure(due + 1) == []  # no second key for the same rotation

    last_old = sign(provider, retire - 1)
    assert kid_of(last_old) == old.kid
    first_new = sign(provider, retire)
    assert kid_of(first_new) == new_kid
    assert provider.keyring.signing_key(retire).kid == new_kid

    # The retired key stays published until the last token it signed has expired...
    last_exp = retire - 1 + TTL
    for moment in (retire, last_exp - 1):
        assert provider.keyring.ensure(moment) == []
        assert old.kid in published(provider, moment)
        assert verifies_against_jwks(provider, last_old, moment)
    assert not verifies_against_jwks(provider, last_old, last_exp)  # expired, as it should

    # ...and goes once nothing it signed can still be valid.
    gone = old.expires_at
    assert gone >= last_exp
    provider.keyring.ensure(gone - 1)
    assert old.kid in stored_kids(provider)
    provider.keyring.ensure(gone)
    assert old.kid not in stored_kids(provider)
    assert old.kid not in published(provider, gone)
    assert new_kid in published(provider, gone)
    assert old.kid not in [info.kid for info in provider.keyring.keys(gone)]
    assert verifies_against_jwks(provider, sign(provider, gone), gone)

    rotated = [event for event in audit_events(provider) if event.event == "key.rotated"]
    assert len(rotated) == 1
    assert new_kid in rotated[0].details and old.kid in rotated[0].details


def test_key_states_follow_the_timeline(provider: Provider) -> None:
    old = only_key(provider)
    (new_kid,) = provider.keyring.ensure(old.retires_at - PREPUBLISH)
    new = next(info for info in provider.keyring.keys(now=None) if info.kid == new_kid)
    assert new.published_at == old.retires_at - PREPUBLISH
    assert new.activates_at == old.retires_at
    assert new.state(old.retires_at - 1) == "next"
    assert old.state(old.retires_at - 1) == "active"
    assert (old.state(old.retires_at), new.state(old.retires_at)) == ("retired", "active")
    assert old.state(old.expires_at) == "expired"


def test_keyring_rotates_by_itself_when_no_key_signs(provider: Provider) -> None:
    """After a long outage (nothing rotated), signing makes a key rather than fail."""
    old = only_key(provider)
    later = old.expires_at + 10 * PERIOD
    key = provider.keyring.signing_key(later)
    assert key.kid != old.kid
    assert published(provider, later) == [key.kid]


# ---------------------------------------------------------------------- forced rotation


def test_forced_rotation_publishes_now_and_signs_after_prepublication(
    provider: Provider,
) -> None:
    old = only_key(provider)
    now = old.activates_at + 100
    kid = provider.keyring.rotate(now)
    infos = {info.kid: info for info in provider.keyring.keys(now)}
    assert infos[kid].published_at == now
    assert infos[kid].activates_at == now + PREPUBLISH
    assert infos[old.kid].retires_at == now + PREPUBLISH
    assert set(published(provider, now)) == {old.kid, kid}
    assert provider.keyring.signing_key(now).kid == old.kid
    assert provider.keyring.signing_key(now + PREPUBLISH).kid == kid
    token = sign(provider, now + PREPUBLISH - 1)
    assert verifies_against_jwks(provider, token, now + PREPUBLISH - 1 + TTL - 1)
    events = [event for event in audit_events(provider) if event.event == "key.rotated"]
    assert len(events) == 1 and kid in events[0].details


def test_forced_rotation_replaces_an_unused_next_key(provider: Provider) -> None:
    old = only_key(provider)
    (next_kid,) = provider.keyring.ensure(old.retires_at - PREPUBLISH)
    kid = provider.keyring.rotate(old.retires_at - PREPUBLISH + 1)
    assert next_kid not in stored_kids(provider)
    assert stored_kids(provider) == {old.kid, kid}


def test_immediate_rotation_signs_at_once_and_old_tokens_keep_verifying(
    provider: Provider,
) -> None:
    old = only_key(provider)
    now = old.activates_at + 100
    before = sign(provider, now)
    kid = provider.keyring.rotate(now + 1, immediate=True)
    assert provider.keyring.signing_key(now + 1).kid == kid
    after = sign(provider, now + 1)
    assert kid_of(after) == kid
    for moment in (now + 1, now + TTL - 1):
        assert verifies_against_jwks(provider, before, moment)
        assert verifies_against_jwks(provider, after, moment)
    info = next(info for info in provider.keyring.keys(now + 1) if info.kid == old.kid)
    assert info.retires_at == now + 1
    assert info.expires_at >= now + 1 + 3600  # outlives the longest token it may have signed


def test_tokens_signed_before_rotations_verify_until_they_expire(provider: Provider) -> None:
    old = only_key(provider)
    start = old.activates_at + 10
    tokens = []
    moment = start
    for _ in range(3):
        tokens.append((sign(provider, moment), moment))
        provider.keyring.rotate(moment + 1, immediate=True)
        moment += 2
    assert len({kid_of(token) for token, _ in tokens}) == 3
    for token, issued in tokens:
        assert verifies_against_jwks(provider, token, moment)
        assert verifies_against_jwks(provider, token, issued + TTL - 1)
        assert not verifies_against_jwks(provider, token, issued + TTL)


# ---------------------------------------------------------------------- many nodes


def test_exactly_one_node_rotates_when_due(
    provider: Provider, settings: Settings, make_provider: Callable[[Settings], Provider]
) -> None:
    nodes = [provider, make_provider(settings), make_provider(settings)]
    old = only_key(provider)
    due = old.retires_at - PREPUBLISH
    results = run_together([lambda node=node: node.keyring.ensure(due) for node in nodes] * 2)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    created = [kid for result in results for kid in result]  # type: ignore[attr-defined]
    assert len(created) == 1
    assert stored_kids(provider) == {old.kid, created[0]}
    assert len([event for event in audit_events(provider) if event.event == "key.rotated"]) == 1
    for node in nodes:
        assert set(published(node, due + 1)) == {old.kid, created[0]}


def test_exactly_one_node_creates_the_first_key(database_url: str, tmp_path: Path) -> None:
    """Nodes starting together on a migrated but empty database make one key between them."""
    database = Database(database_url)
    database.upgrade()
    database.dispose()
    settings = make_settings(database_url, tmp_path)
    nodes = [Provider(settings) for _ in range(4)]
    try:
        results = run_together([node.keyring.ensure for node in nodes])
        errors = [result for result in results if isinstance(result, BaseException)]
        assert errors == []
        created = [kid for result in results for kid in result]  # type: ignore[attr-defined]
        assert len(created) == 1
        assert {node.keyring.signing_key().kid for node in nodes} == set(created)
    finally:
        for node in nodes:
            node.close()


def test_signing_never_needs_a_second_database_connection(settings: Settings) -> None:
    """Regression: a request holding the only pooled connection must still sign, across a key
    boundary too (the key that signs follows from memory, not from a second session)."""
    provider = Provider(settings.model_copy(update={"threads": 1}))
    provider.start()
    provider.database.engine.pool._timeout = 2  # type: ignore[attr-defined]  # fail in 2 s
    retires = max(info.retires_at for info in provider.keyring.keys())  # noqa: SIM118
    provider.keyring.ensure(retires - PREPUBLISH)  # the housekeeping publishes the next key
    connections = []
    try:
        # Hold every connection of the pool but one, as busy request threads would.
        while True:
            try:
                connections.append(provider.database.engine.connect())
            except Exception:
                break
        last = connections.pop()
        last.close()
        with provider.database.session() as session:
            session.execute(select(SigningKey.kid)).all()  # this request now holds the connection
            signers = {
                provider.keyring.signing_key(moment).kid for moment in (retires - 1, retires)
            }
            assert len(signers) == 2  # the boundary was crossed without a second connection
    finally:
        for connection in connections:
            connection.close()
        provider.close()


# ---------------------------------------------------------------------- a second algorithm


def keys_of(provider: Provider, alg: str, now: float) -> list[KeyInfo]:
    return [info for info in provider.keyring.keys(now) if info.alg == alg]


def test_a_second_algorithm_gets_its_first_key_when_first_asked_for(provider: Provider) -> None:
    es = only_key(provider)
    assert es.alg == "ES256"
    now = es.activates_at + 5
    rs = provider.keyring.signing_key(now, alg="RS256")
    assert (rs.alg, rs.kty) == ("RS256", "RSA")
    assert provider.keyring.signing_key(now, alg="RS256").kid == rs.kid  # made once
    assert provider.keyring.signing_key(now).kid == es.kid  # the default timeline is as it was
    assert sorted(published(provider, now)) == sorted([es.kid, str(rs.kid)])
    jwk = next(jwk for jwk in provider.keyring.jwks(now)["keys"] if jwk["kid"] == rs.kid)
    assert (jwk["alg"], jwk["use"]) == ("RS256", "sig") and "d" not in jwk
    created = [event for event in audit_events(provider) if event.event == "key.created"]
    assert [orjson.loads(event.details)["alg"] for event in created] == ["ES256", "RS256"]


def test_an_algorithm_the_provider_does_not_sign_with_is_refused(provider: Provider) -> None:
    with pytest.raises(ValueError, match="no signing keys for HS256"):
        provider.keyring.signing_key(alg="HS256")
    assert [info.alg for info in provider.keyring.keys(now=None)] == ["ES256"]


def test_every_timeline_rotates_with_prepublication(provider: Provider) -> None:
    es = only_key(provider)
    provider.keyring.signing_key(es.activates_at, alg="RS256")
    (rs,) = keys_of(provider, "RS256", es.activates_at)
    due = max(es.retires_at, rs.retires_at) - PREPUBLISH
    created = provider.keyring.ensure(due)
    assert len(created) == 2
    for alg, old in (("ES256", es), ("RS256", rs)):
        newest = keys_of(provider, alg, due)[0]
        assert newest.kid in created and newest.activates_at == old.retires_at
        assert newest.kid in published(provider, due)  # before it signs
        after = provider.keyring.signing_key(newest.activates_at, alg=alg)
        assert after.kid == newest.kid


def test_a_forced_rotation_rotates_every_timeline(provider: Provider) -> None:
    es = only_key(provider)
    now = es.activates_at + 10
    old_rs = provider.keyring.signing_key(now, alg="RS256").kid
    kid = provider.keyring.rotate(now, immediate=True)
    assert provider.keyring.signing_key(now).kid == kid != es.kid
    new_rs = provider.keyring.signing_key(now, alg="RS256").kid
    assert new_rs != old_rs
    assert {es.kid, old_rs, kid, new_rs} <= set(published(provider, now))  # old ones verify


def test_nodes_asking_for_a_new_algorithm_at_once_make_one_key(
    provider: Provider, settings: Settings, make_provider: Callable[[Settings], Provider]
) -> None:
    nodes = [provider, make_provider(settings), make_provider(settings)]
    now = only_key(provider).activates_at + 5
    results = run_together(
        [lambda node=node: node.keyring.signing_key(now, alg="RS256").kid for node in nodes]
    )
    assert all(isinstance(result, str) for result in results), results
    assert len(set(results)) == 1
    assert [info.kid for info in keys_of(provider, "RS256", now)] == results[:1]


def test_a_first_key_made_inside_a_transaction_is_published_when_it_commits(
    provider: Provider,
) -> None:
    """What the token endpoint does: no second connection (SQLite holds the write lock)."""
    with provider.database.session() as session:
        key = provider.keyring.signing_key(alg="RS256", session=session)
        assert key.kid not in published(provider, time.time())  # not before it is stored
    assert key.kid in published(provider, time.time())
    assert provider.keyring.signing_key(alg="RS256").kid == key.kid


def test_a_first_key_of_a_rolled_back_transaction_is_not_kept(provider: Provider) -> None:
    made: list[jose.Key] = []

    def failing_request() -> None:
        with provider.database.session() as session:
            made.append(provider.keyring.signing_key(alg="RS256", session=session))
            raise RuntimeError("the request failed after signing: nothing was answered")

    with pytest.raises(RuntimeError):
        failing_request()
    assert made[0].kid not in stored_kids(provider)
    assert provider.keyring.signing_key(alg="RS256").kid != made[0].kid
