"""Housekeeping: what can no longer matter is purged; nothing live is."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tessera.idp.config import Settings
from tessera.idp.flows.housekeeping import (
    ENDED_SESSION_KEEP,
    EXPIRED_ASSERTION_KEEP,
    EXPIRED_CODE_KEEP,
    REVOKED_FAMILY_KEEP,
    purge,
)
from tessera.idp.provider import Provider
from tessera.idp.services.audit import AuditQuery, event_as_dict, iter_events, record
from tessera.idp.services.authorization_codes import CodeGrant
from tessera.idp.services.client_assertions import Assertion, spend
from tessera.idp.services.refresh import Refused, Rotated
from tessera.idp.store.models import (
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    ClientAssertion,
    RefreshFamily,
    RefreshToken,
    RevokedToken,
    SessionClient,
    SubjectNotBefore,
    ThrottleCounter,
)

from ..conftest import (
    AUDIENCE,
    Registered,
    add_client,
    add_user,
    audit_events,
    make_settings,
    row_counts,
)

DAY = 86_400


def start(provider: Provider, client: Registered, now: int) -> tuple[str, str]:
    """A family opened at ``now``: its id and first token."""
    with provider.database.session() as session:
        family_id, token = provider.refresh.start(
            session,
            tenant_id=client.tenant_id,
            subject=client.id,
            client_id=client.id,
            scope="read",
            audience=AUDIENCE,
            now=now,
        )
    return family_id, token


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


def codes(provider: Provider) -> set[str]:
    with provider.database.session(readonly=True) as session:
        return set(session.scalars(select(AuthorizationCode.code_hash)))


def issue_code(provider: Provider, client: Registered, user_id: str, now: int) -> str:
    grant = CodeGrant(
        tenant_id=client.tenant_id,
        client_id=client.id,
        user_id=user_id,
        redirect_uri="https://app.example/cb",
        scope="openid",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        auth_time=now,
        amr="pwd",
    )
    with provider.database.session() as session:
        return provider.codes.digest(provider.codes.issue(session, grant, now=now))


def test_purge_removes_only_what_can_no_longer_matter(provider: Provider, tenant: str) -> None:
    client = add_client(provider, tenant)
    now = int(time.time())
    user_id = add_user(provider, tenant).id
    ttl_code = provider.settings.authorization_code_ttl
    old_code = issue_code(provider, client, user_id, now - ttl_code - EXPIRED_CODE_KEEP - 1)
    recent_code = issue_code(provider, client, user_id, now - ttl_code - 10)  # replay still seen
    live_code = issue_code(provider, client, user_id, now)
    ada = add_user(provider, tenant, username="ada-browser")
    idle = provider.settings.session_idle_ttl
    with provider.database.session() as session:
        old_session = provider.sessions.start(session, ada, amr=("pwd",), now=now - idle - 1)
        logged_out = provider.sessions.start(session, ada, amr=("pwd",), now=now - 10)
        provider.sessions.end(session, logged_out.row, now=now - ENDED_SESSION_KEEP - 1)
        live_session = provider.sessions.start(session, ada, amr=("pwd",), now=now - 60)
        stale_ids = {old_session.row.id, logged_out.row.id}
        live_id = live_session.row.id
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
        "authorization_codes": 1,
        "client_assertions": 0,
        "browser_sessions": 2,
        "throttle_counters": 0,
        "audit_events": 0,
    }
    with provider.database.session(readonly=True) as session:
        kept = set(session.scalars(select(BrowserSession.id)))
    assert live_id in kept and not stale_ids & kept
    assert codes(provider) == {recent_code, live_code} and old_code not in codes(provider)
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
        "authorization_codes": 0,
        "client_assertions": 0,
        "browser_sessions": 0,
        "throttle_counters": 0,
        "audit_events": 0,
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


# ---------------------------------------------------------------------- audit retention


def audit_at(provider: Provider, at: int, n: int, tenant_id: str = "acme") -> None:
    with provider.database.session() as session:
        record(session, "user.updated", tenant_id=tenant_id, at=at, details={"n": n})


def seeded(provider: Provider) -> list[int]:
    """The ``n`` of the seeded audit rows still there, oldest first."""
    return [
        orjson.loads(event.details)["n"]
        for event in audit_events(provider)
        if event.event == "user.updated"
    ]


def columns(event: AuditEvent) -> tuple[Any, ...]:
    return tuple(getattr(event, column.key) for column in AuditEvent.__table__.columns)


def retaining(
    make_provider: Callable[[Settings], Provider], database_url: str, tmp_path: Path, days: int
) -> Provider:
    return make_provider(make_settings(database_url, tmp_path, audit_retention_days=days))


def test_audit_rows_past_retention_are_purged_and_the_purge_is_audited(
    make_provider: Callable[[Settings], Provider], database_url: str, tmp_path: Path
) -> None:
    provider = retaining(make_provider, database_url, tmp_path, 30)
    now = int(time.time())
    cutoff = now - 30 * DAY
    audit_at(provider, cutoff - 5 * DAY, 0)
    audit_at(provider, cutoff - 1, 1, tenant_id="globex")
    audit_at(provider, cutoff, 2)  # exactly at the cut-off: kept
    audit_at(provider, now - DAY, 3)
    before = audit_events(provider)

    counts = purge(provider, now)

    assert counts["audit_events"] == 2
    assert seeded(provider) == [2, 3]
    after = audit_events(provider)
    purged = [event for event in after if event.event == "audit.purged"]
    assert len(purged) == 1
    (row,) = purged
    assert (row.tenant_id, row.outcome, row.actor, row.at) == ("*", "success", "housekeeping", now)
    assert orjson.loads(row.details) == {"count": 2, "cutoff": cutoff}
    assert row.id > max(event.id for event in before)
    # the rows that stay are untouched; only the purge's own row is new
    gone = {event.id for event in before} - {event.id for event in after}
    assert len(gone) == 2
    assert [columns(event) for event in after[:-1]] == [
        columns(event) for event in before if event.id not in gone
    ]

    # nothing more to purge: no new row either
    assert purge(provider, now)["audit_events"] == 0
    assert len(audit_events(provider)) == len(after)


def test_with_an_export_directory_the_purged_rows_are_written_there_first(
    make_provider: Callable[[Settings], Provider], database_url: str, tmp_path: Path
) -> None:
    exports = tmp_path / "audit-exports"
    provider = make_provider(
        make_settings(database_url, tmp_path, audit_retention_days=30, audit_export_dir=exports)
    )
    now = int(time.time())
    cutoff = now - 30 * DAY
    audit_at(provider, cutoff - 5 * DAY, 0)
    audit_at(provider, cutoff - 1, 1, tenant_id="globex")
    audit_at(provider, now - DAY, 2)
    before = {event.id: event for event in audit_events(provider)}

    assert purge(provider, now)["audit_events"] == 2

    (exported,) = exports.iterdir()
    assert exported.stat().st_mode & 0o777 == 0o600  # addresses, user agents: the owner's only
    lines = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    assert [line["details"] for line in lines] == [{"n": 0}, {"n": 1}]
    assert all(line == event_as_dict(before[line["id"]]) for line in lines)  # as export has it
    assert seeded(provider) == [2]
    (purged,) = [event for event in audit_events(provider) if event.event == "audit.purged"]
    assert orjson.loads(purged.details) == {"count": 2, "cutoff": cutoff, "export": exported.name}


def test_a_purge_whose_export_cannot_be_written_deletes_nothing(
    make_provider: Callable[[Settings], Provider], database_url: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the exports should go")
    provider = make_provider(
        make_settings(database_url, tmp_path, audit_retention_days=30, audit_export_dir=blocked)
    )
    now = int(time.time())
    audit_at(provider, now - 40 * DAY, 0)
    audit_at(provider, now - DAY, 1)
    before = audit_events(provider)
    with pytest.raises(FileExistsError):  # mkdir of the export directory: a file is there
        purge(provider, now)
    assert [columns(event) for event in audit_events(provider)] == [
        columns(event) for event in before
    ]


def test_a_purge_of_everything_keeps_its_own_row_and_ids_keep_growing(
    make_provider: Callable[[Settings], Provider], database_url: str, tmp_path: Path
) -> None:
    provider = retaining(make_provider, database_url, tmp_path, 1)
    now = int(time.time())
    for n in range(5):
        audit_at(provider, now - 10 * DAY + n, n)
    for moment in (now + 400 * DAY, now + 800 * DAY):  # every row is old by then
        before = audit_events(provider)
        newest = before[-1].id

        counts = purge(provider, moment)

        after = audit_events(provider)
        assert counts["audit_events"] == len(before) - 1
        # of the rows that were there, only the newest stays: SQLite numbers a new row after
        # the highest id left, so keeping it keeps ids growing
        assert [event.id for event in after if event.id <= newest] == [newest]
        (purged,) = [event for event in after if event.id > newest and event.at == moment]
        assert purged.event == "audit.purged"
        assert orjson.loads(purged.details)["count"] == len(before) - 1


def test_retention_zero_keeps_audit_rows_forever(
    make_provider: Callable[[Settings], Provider], database_url: str, tmp_path: Path
) -> None:
    provider = retaining(make_provider, database_url, tmp_path, 0)
    now = int(time.time())
    audit_at(provider, 0, 0)
    audit_at(provider, now - 3650 * DAY, 1)
    before = audit_events(provider)
    assert purge(provider, now)["audit_events"] == 0
    assert [event.id for event in audit_events(provider)] == [event.id for event in before]


def test_the_default_retention_is_a_year(provider: Provider) -> None:
    assert provider.settings.audit_retention_days == 365
    now = int(time.time())
    audit_at(provider, now - 366 * DAY, 0)
    audit_at(provider, now - 364 * DAY, 1)
    purge(provider, now)
    assert seeded(provider) == [1]
    query = AuditQuery(tenant_id="*", event="audit.purged")
    assert [event["details"]["count"] for event in iter_events(provider.database, query)] == [1]


@pytest.mark.parametrize("days", [-1, 36_501, "forever"])
def test_retention_bounds(tmp_path: Path, days: object) -> None:
    with pytest.raises(ValidationError, match="audit_retention_days"):
        make_settings("sqlite://", tmp_path, audit_retention_days=days)


def test_a_purged_session_takes_its_client_list_along(provider: Provider, tenant: str) -> None:
    client = add_client(provider, tenant)
    grace = add_user(provider, tenant, username="grace-browser")
    now = int(time.time())
    with provider.database.session() as session:
        stale = provider.sessions.start(session, grace, amr=("pwd",), now=now - 30 * DAY)
        live = provider.sessions.start(session, grace, amr=("pwd",), now=now - 60)
        for row in (stale.row, live.row):
            session.add(SessionClient(session_id=row.id, client_id=client.id, first_at=now))
    purge(provider, now)
    with provider.database.session(readonly=True) as session:
        left = set(session.scalars(select(SessionClient.session_id)))
    assert live.row.id in left and stale.row.id not in left


def test_a_spent_assertion_id_is_kept_until_its_assertion_could_no_longer_be_used(
    provider: Provider, tenant: str
) -> None:
    client = add_client(provider, tenant)
    now = int(time.time())
    with provider.database.session() as session:
        for jti, expires_at in (
            ("old", now - EXPIRED_ASSERTION_KEEP - 1),
            ("just-expired", now - 1),  # a node whose clock is behind could still accept it
            ("live", now + 60),
        ):
            spend(session, Assertion(client.id, jti, expires_at))
    assert purge(provider, now)["client_assertions"] == 1
    with provider.database.session(readonly=True) as session:
        kept = set(session.scalars(select(ClientAssertion.jti)))
    assert kept == {"just-expired", "live"}


def test_lockout_counters_go_once_they_count_nothing(provider: Provider) -> None:
    now = int(time.time())
    window = provider.settings.lockout_window
    with provider.database.session() as session:
        for username, at in (("old", now - window - 1), ("recent", now - 10)):
            provider.lockout.failed(
                session,
                tenant_id="acme",
                username=username,
                ip=None,
                user=None,
                context=None,
                now=at,
            )
    assert purge(provider, now)["throttle_counters"] == 1
    with provider.database.session(readonly=True) as session:
        left = list(session.scalars(select(ThrottleCounter)))
    assert len(left) == 1 and left[0].failures == 1 and left[0].expires_at > now
