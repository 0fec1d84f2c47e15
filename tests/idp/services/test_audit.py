"""The audit log: one row per security event, with who/what/tenant/client/outcome — and never a
secret, a password or a token, whatever happened."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from tessera.idp.errors import OAuthError
from tessera.idp.flows.grants import token_response
from tessera.idp.flows.revoke import log_out_everywhere, revoke
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context, record
from tessera.idp.store.models import AuditEvent, Client

from ..conftest import (
    Registered,
    add_client,
    add_user,
    all_rows,
    audit_events,
    client_row,
    first_party_client,
)

CONTEXT = Context(ip="203.0.113.50", user_agent="audit-test/1.0", actor="tester")
PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "Tr0ub4dor&3-but-wrong"


def events(provider: Provider, name: str) -> list[AuditEvent]:
    return [event for event in audit_events(provider) if event.event == name]


def only(provider: Provider, name: str) -> AuditEvent:
    (event,) = events(provider, name)
    return event


def password_form(password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": "ada", "password": password}


def revoke_as(provider: Provider, client_id: str, token: str) -> None:
    with provider.database.session() as session:
        client = session.get(Client, client_id)
        assert client is not None
        revoke(provider, session, client, token, hint=None, context=CONTEXT)


@pytest.fixture
def service(cheap_passwords: Provider, tenant: str) -> Registered:
    return add_client(cheap_passwords, tenant)


@pytest.fixture
def app(cheap_passwords: Provider, tenant: str) -> Registered:
    add_user(cheap_passwords, tenant, password=PASSWORD)
    return first_party_client(cheap_passwords, tenant)


def test_issuance_writes_one_row(provider: Provider, service: Registered) -> None:
    answer = token_response(provider, {"grant_type": "client_credentials"}, service.basic, CONTEXT)
    claims = provider.issuer.verifier().verify(answer["access_token"])
    event = only(provider, "token.issued")
    assert (event.outcome, event.tenant_id, event.client_id, event.subject) == (
        "success",
        service.tenant_id,
        service.id,
        service.id,
    )
    assert (event.ip, event.user_agent, event.actor) == (
        CONTEXT.ip,
        CONTEXT.user_agent,
        CONTEXT.actor,
    )
    assert orjson.loads(event.details) == {
        "grant": "client_credentials",
        "jti": claims["jti"],
        "scope": "read",
    }
    assert abs(event.at - claims["iat"]) <= 1


def test_login_success_writes_one_row(provider: Provider, app: Registered) -> None:
    answer = token_response(provider, password_form(), app.basic, CONTEXT)
    claims = provider.issuer.verifier().verify(answer["access_token"])
    event = only(provider, "login.succeeded")
    assert (event.outcome, event.tenant_id, event.client_id, event.subject) == (
        "success",
        app.tenant_id,
        app.id,
        claims["sub"],
    )


def test_login_failure_writes_one_row_although_the_request_fails(
    provider: Provider, app: Registered
) -> None:
    with pytest.raises(OAuthError) as caught:
        token_response(provider, password_form(WRONG_PASSWORD), app.basic, CONTEXT)
    assert caught.value.error == "invalid_grant"
    event = only(provider, "login.failed")
    assert (event.outcome, event.tenant_id, event.client_id) == ("failure", app.tenant_id, app.id)
    assert event.ip == CONTEXT.ip
    assert events(provider, "login.succeeded") == []


def test_refresh_and_reuse_each_write_their_row(provider: Provider, app: Registered) -> None:
    first = token_response(provider, password_form(), app.basic, CONTEXT)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    token_response(provider, form, app.basic, CONTEXT)
    refreshed = only(provider, "token.refreshed")
    assert (refreshed.outcome, refreshed.tenant_id, refreshed.client_id) == (
        "success",
        app.tenant_id,
        app.id,
    )
    with pytest.raises(OAuthError):
        token_response(provider, form, app.basic, CONTEXT)
    reuse = only(provider, "refresh.reuse")
    assert (reuse.outcome, reuse.tenant_id, reuse.client_id, reuse.subject) == (
        "failure",
        app.tenant_id,
        app.id,
        refreshed.subject,
    )
    assert not [event for event in audit_events(provider) if event.event == "token.refresh"]


def test_revocations_write_one_row_each(
    provider: Provider, service: Registered, app: Registered
) -> None:
    access = token_response(provider, {"grant_type": "client_credentials"}, service.basic, CONTEXT)
    login = token_response(provider, password_form(), app.basic, CONTEXT)
    revoke_as(provider, service.id, access["access_token"])
    revoke_as(provider, app.id, login["refresh_token"])
    revoked = events(provider, "token.revoked")
    assert [orjson.loads(event.details)["kind"] for event in revoked] == ["access", "refresh"]
    assert [event.client_id for event in revoked] == [service.id, app.id]
    assert {event.tenant_id for event in revoked} == {service.tenant_id}
    subject = provider.issuer.verifier().verify(login["access_token"])["sub"]
    with provider.database.session() as session:
        log_out_everywhere(provider, session, app.tenant_id, subject, CONTEXT)
    logout = only(provider, "logout.all")
    assert (logout.outcome, logout.tenant_id, logout.subject) == (
        "success",
        app.tenant_id,
        subject,
    )


def test_key_rotation_writes_one_row(provider: Provider) -> None:
    kid = provider.keyring.rotate(context=CONTEXT)
    event = only(provider, "key.rotated")
    assert (event.outcome, event.tenant_id, event.actor) == ("success", "*", CONTEXT.actor)
    assert orjson.loads(event.details)["kid"] == kid
    provider.keyring.rotate(immediate=True)
    assert len(events(provider, "key.rotated")) == 2


def test_failed_client_authentication_writes_nothing_half_done(
    provider: Provider, service: Registered
) -> None:
    before = all_rows(provider)
    with pytest.raises(OAuthError):
        token_response(
            provider, {"grant_type": "client_credentials"}, (service.id, "wrong"), CONTEXT
        )
    assert all_rows(provider) == before


def test_record_drops_secret_details_whatever_the_caller_passes(provider: Provider) -> None:
    with provider.database.session() as session:
        record(
            session,
            "test.event",
            tenant_id="acme",
            details={
                "password": "hunter2",
                "client_secret": "s3cret",
                "secret": "s3cret",
                "token": "tok",
                "access_token": "tok",
                "refresh_token": "tok",
                "code": "c0de",
                "kept": 1,
            },
        )
    assert orjson.loads(only(provider, "test.event").details) == {"kept": 1}


def test_no_audit_row_ever_holds_a_secret_password_or_token(
    provider: Provider, service: Registered, app: Registered
) -> None:
    """A full scenario, then every column of every audit row is searched for what must never
    be there."""
    secrets: list[str] = [PASSWORD, WRONG_PASSWORD]
    assert service.secret is not None and app.secret is not None
    secrets += [service.secret, app.secret]
    secrets += [client_row(provider, client.id).secret_hash or "" for client in (service, app)]

    def remember(answer: dict[str, Any]) -> dict[str, Any]:
        token = answer["access_token"]
        secrets.extend([token, token.rsplit(".", 1)[1]])
        if "refresh_token" in answer:
            secrets.append(answer["refresh_token"])
            secrets.append(provider.refresh.digest(answer["refresh_token"]))
        return answer

    provider.keyring.rotate(context=CONTEXT)
    access = remember(
        token_response(provider, {"grant_type": "client_credentials"}, service.basic, CONTEXT)
    )
    post = {
        "grant_type": "client_credentials",
        "client_id": service.id,
        "client_secret": service.secret,
        "scope": "read write",
    }
    remember(token_response(provider, post, None, CONTEXT))
    with pytest.raises(OAuthError):
        token_response(provider, password_form(WRONG_PASSWORD), app.basic, CONTEXT)
    login = remember(token_response(provider, password_form(), app.basic, CONTEXT))
    form = {"grant_type": "refresh_token", "refresh_token": login["refresh_token"]}
    refreshed = remember(token_response(provider, form, app.basic, CONTEXT))
    with pytest.raises(OAuthError):
        token_response(provider, form, app.basic, CONTEXT)  # reuse
    second = remember(token_response(provider, password_form(), app.basic, CONTEXT))
    revoke_as(provider, service.id, access["access_token"])
    revoke_as(provider, app.id, second["refresh_token"])
    subject = provider.issuer.verifier().verify(refreshed["access_token"])["sub"]
    with provider.database.session() as session:
        log_out_everywhere(provider, session, app.tenant_id, subject, CONTEXT)

    assert Counter(event.event for event in audit_events(provider)) == {
        "key.created": 1,  # at start
        "tenant.created": 1,  # the fixtures' tenant, its member role and user
        "role.created": 1,
        "user.created": 1,
        "key.rotated": 1,
        "token.issued": 2,
        "login.failed": 1,
        "login.succeeded": 2,
        "token.refreshed": 1,
        "refresh.reuse": 1,
        "token.revoked": 2,
        "logout.all": 1,
    }
    rows = all_rows(provider)["audit_events"]
    assert len(rows) == 15
    cells = [str(cell) for row in rows for cell in row]
    leaks = [(secret, cell) for secret in secrets for cell in cells if secret and secret in cell]
    assert leaks == []
