"""Housekeeping: what can no longer matter is purged; nothing live is."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from tessera.idp.provider import Provider
from tessera.idp.services.housekeeping import REVOKED_FAMILY_KEEP, purge
from tessera.idp.services.refresh import Refused, Rotated
from tessera.idp.store.models import RefreshFamily, RefreshToken, RevokedToken, SubjectNotBefore

from .conftest import AUDIENCE, Registered, add_client, row_counts

DAY = 86_400


def start(provider: Provider, client: Registered, now: int) -> tuple[str, str]:
    """A family opened at ``now``: its id and first token."""
    with provider.database.session() as session:
        family, token = provider.refresh.start(
            session,
            tenant_id=client.tenant_id,
            subject=client.id,
            client_id=client.id,
            scope="read",
            audience=AUDIENCE,
            now=now,
        )
    return family.id, token


def rotate(provider: Provider, client: Registered, token: str, now: int) -> str:
    with provider.database.session() as session:
        rotated = provider.refresh.rotate(session, token, client_id=client.id, now=now)
    assert isinstance(rotated, Rotated), rotated
    return rotated.token


def revoke_family(provider: Provider, family_id: str, now: int) -> None:
    with provider.database.session() as session:
        family = session.get(RefreshFamily, family_id)
        assert family is not None
        provider.refresh.revoke_family(session, family, "revoked", now)


def family_ids(provider: Provider) -> set[str]:
    with provider.database.session(readonly=True) as session:
        return set(session.scalars(select(RefreshFamily.id)))


def token_hashes(provider: Provider) -> set[str]:
    with provider.database.session(readonly=True) as session:
        return set(session.scalars(select(RefreshToken.token_hash)))


def blocklist(provider: Provider) -> set[str]:
    with provider.database.session(readonly=True) as session:
        return set(session.scalars(select(RevokedToken.jti)))


def not_befores(provider: Provider) -> set[str]:
    with provider.database.session(readonly=True) as session:
        return set(session.scalars(select(SubjectNotBefore.subject)))


def block(provider: Provider, jti: str, exp: int) -> None:
    claims: dict[str, Any] = {"jti": jti, "exp": exp, "tenant": "acme"}
    with provider.database.session() as session:
        provider.revocations.revoke_access_token(session, claims)


def test_purge_removes_only_what_can_no_longer_matter(provider: Provider, tenant: str) -> None:
    client = add_client(provider, tenant)
    now = int(time.time())
    ttl = provider.settings.refresh_token_ttl
    idle = provider.settings.refresh_idle_ttl

    expired_family, expired_token = start(provider, client, now - ttl - 10)
    old_revoked, _ = start(provider, client, now - REVOKED_FAMILY_KEEP - 2 * DAY)
    revoke_family(provider, old_revoked, now - REVOKED_FAMILY_KEEP - DAY)
    recent_revoked, recent_revoked_token = start(provider, client, now - 2 * DAY)
    revoke_family(provider, recent_revoked, now - DAY)
    # a live family: its first token was spent and has expired since; the second was spent
    # but could still be replayed; the third is the current one
    live, first = start(provider, client, now - idle - 10)
    second = rotate(provider, client, first, now - 100)
    third = rotate(provider, client, second, now - 50)

    block(provider, "expired-jti", now - 1)
    block(provider, "live-jti", now + 600)
    with provider.database.session() as session:
        provider.revocations.log_out_everywhere(session, "acme", "gone", now - 4 * 3600)
        provider.revocations.log_out_everywhere(session, "acme", "kept", now - 60)

    counts = purge(provider, now)

    assert counts == {
        "refresh_families": 2,
        "refresh_tokens": 1,
        "revoked_tokens": 1,
        "subject_not_before": 1,
    }
    families = family_ids(provider)
    assert expired_family not in families and old_revoked not in families
    assert {recent_revoked, live} <= families
    hashes = token_hashes(provider)
    digest = provider.refresh.digest
    assert digest(expired_token) not in hashes  # went with its family
    assert digest(first) not in hashes
    # a spent token stays while it could be replayed: reuse must still be recognised
    assert {digest(second), digest(third), digest(recent_revoked_token)} <= hashes
    assert blocklist(provider) == {"live-jti"}
    assert not_befores(provider) == {"kept"}


def test_purge_keeps_a_fresh_database_intact(provider: Provider, tenant: str) -> None:
    client = add_client(provider, tenant)
    now = int(time.time())
    start(provider, client, now)
    block(provider, "jti", now + 60)
    with provider.database.session() as session:
        provider.revocations.log_out_everywhere(session, "acme", "ada", now)
    before = row_counts(provider)
    assert purge(provider, now) == {
        "refresh_families": 0,
        "refresh_tokens": 0,
        "revoked_tokens": 0,
        "subject_not_before": 0,
    }
    assert row_counts(provider) == before


def test_replay_of_a_spent_token_is_still_reuse_after_a_purge(
    provider: Provider, tenant: str
) -> None:
    client = add_client(provider, tenant)
    now = int(time.time())
    _, first = start(provider, client, now - 100)
    second = rotate(provider, client, first, now - 50)
    purge(provider, now)
    with provider.database.session() as session:
        replay = provider.refresh.rotate(session, first, client_id=client.id, now=now)
    assert isinstance(replay, Refused) and "reused" in replay.reason
    with provider.database.session() as session:
        refused = provider.refresh.rotate(session, second, client_id=client.id, now=now)
    assert isinstance(refused, Refused) and refused.reason == "refresh token revoked"


def test_purge_also_rotates_due_signing_keys(provider: Provider) -> None:
    (active,) = provider.keyring.keys()
    due = active.retires_at - provider.settings.key_prepublish
    purge(provider, due)
    assert len(provider.keyring.keys(due)) == 2
    purge(provider, active.expires_at)
    assert active.kid not in {info.kid for info in provider.keyring.keys(active.expires_at)}
