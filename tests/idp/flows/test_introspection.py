"""RFC 7662 introspection as a service: active with the claims for a live token, inactive for
anything expired, revoked, unknown or of another tenant — access and refresh tokens alike."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tessera import jose
from tessera.idp.flows.grants import token_response
from tessera.idp.flows.introspection import introspect
from tessera.idp.flows.revoke import log_out_everywhere, revoke
from tessera.idp.provider import Provider
from tessera.idp.services.audit import Context
from tessera.idp.store.models import Client

from ..conftest import (
    AUDIENCE,
    ISSUER,
    Registered,
    add_client,
    add_tenant,
    add_user,
    all_rows,
    first_party_client,
)

CONTEXT = Context()
PASSWORD = "correct horse battery staple"
INACTIVE = {"active": False}


def ask(
    provider: Provider,
    caller: Registered,
    token: str,
    *,
    hint: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    with provider.database.session(readonly=True) as session:
        client = session.get(Client, caller.id)
        assert client is not None

    async def asked() -> dict[str, Any]:
        try:
            return await introspect(
                provider.database,
                token,
                caller=client,
                issuer=provider.issuer,
                refresh=provider.refresh,
                hint=hint,
                now=now,
            )
        finally:  # this loop's connections (PostgreSQL) end with it
            await provider.database.close_loop_connections()

    return asyncio.run(asked())


@pytest.fixture
def service(cheap_passwords: Provider, tenant: str) -> Registered:
    return add_client(cheap_passwords, tenant)


@pytest.fixture
def app(cheap_passwords: Provider, tenant: str) -> Registered:
    add_user(cheap_passwords, tenant, password=PASSWORD)
    return first_party_client(cheap_passwords, tenant)


def client_credentials(provider: Provider, client: Registered) -> dict[str, Any]:
    return token_response(provider, {"grant_type": "client_credentials"}, client.basic, CONTEXT)


def log_in(provider: Provider, client: Registered) -> dict[str, Any]:
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    return token_response(provider, form, client.basic, CONTEXT)


# ---------------------------------------------------------------------- access tokens


def test_live_access_token_is_active_with_its_claims(
    provider: Provider, service: Registered
) -> None:
    token = client_credentials(provider, service)["access_token"]
    claims = provider.issuer.verifier().verify(token)
    answer = ask(provider, service, token)
    assert answer == {"active": True, "token_type": "Bearer", **claims}
    assert (answer["iss"], answer["aud"], answer["client_id"]) == (ISSUER, AUDIENCE, service.id)
    assert (answer["tenant"], answer["scope"], answer["sub"]) == ("acme", "read", service.id)


def test_another_client_of_the_same_tenant_may_introspect(
    provider: Provider, service: Registered
) -> None:
    resource_server = add_client(provider, service.tenant_id)
    token = client_credentials(provider, service)["access_token"]
    assert ask(provider, resource_server, token)["active"] is True


def test_expired_access_token_is_inactive(provider: Provider, service: Registered) -> None:
    token = client_credentials(provider, service)["access_token"]
    exp = provider.issuer.verifier().verify(token)["exp"]
    assert ask(provider, service, token, now=exp - 1)["active"] is True
    assert ask(provider, service, token, now=exp) == INACTIVE


def test_revoked_access_token_is_inactive(provider: Provider, service: Registered) -> None:
    token = client_credentials(provider, service)["access_token"]
    assert ask(provider, service, token)["active"] is True
    assert provider.issuer.verifier().cache_info()[0] == 1  # kept verified: revocation is not
    with provider.database.session() as session:
        client = session.get(Client, service.id)
        assert client is not None
        revoke(provider, session, client, token, hint=None, context=CONTEXT)
    assert ask(provider, service, token) == INACTIVE


def test_access_token_before_a_logout_everywhere_is_inactive(
    provider: Provider, app: Registered
) -> None:
    answer = log_in(provider, app)
    subject = provider.issuer.verifier().verify(answer["access_token"])["sub"]
    assert ask(provider, app, answer["access_token"])["active"] is True
    with provider.database.session() as session:
        log_out_everywhere(provider, session, app.tenant_id, subject, CONTEXT)
    assert ask(provider, app, answer["access_token"]) == INACTIVE
    assert ask(provider, app, answer["refresh_token"]) == INACTIVE


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "x" * 10_000, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
)
def test_unknown_tokens_are_inactive(provider: Provider, service: Registered, token: str) -> None:
    assert ask(provider, service, token) == INACTIVE
    assert ask(provider, service, token, hint="refresh_token") == INACTIVE


def test_token_signed_by_a_foreign_key_is_inactive(provider: Provider, service: Registered) -> None:
    token = client_credentials(provider, service)["access_token"]
    genuine = provider.issuer.verifier().verify(token)
    forged = jose.jwt.encode(
        genuine,
        jose.Key.generate("ES256", kid=provider.keyring.signing_key().kid),
        headers={"typ": "at+jwt"},
    )
    assert ask(provider, service, forged) == INACTIVE


def test_access_token_of_another_tenant_is_inactive(
    provider: Provider, service: Registered
) -> None:
    add_tenant(provider, "other")
    outsider = add_client(provider, "other")
    token = client_credentials(provider, service)["access_token"]
    assert ask(provider, outsider, token) == INACTIVE
    assert ask(provider, service, client_credentials(provider, outsider)["access_token"]) == (
        INACTIVE
    )


# ---------------------------------------------------------------------- refresh tokens


def test_live_refresh_token_is_active(provider: Provider, app: Registered) -> None:
    before = int(time.time())
    answer = log_in(provider, app)
    subject = provider.issuer.verifier().verify(answer["access_token"])["sub"]
    for hint in (None, "refresh_token", "access_token"):
        described = ask(provider, app, answer["refresh_token"], hint=hint)
        assert described["active"] is True
        assert described["token_type"] == "refresh_token"
        assert (described["client_id"], described["sub"], described["tenant"]) == (
            app.id,
            subject,
            app.tenant_id,
        )
        assert (described["scope"], described["aud"]) == ("read", AUDIENCE)
        assert before <= described["iat"] <= int(time.time())
        assert described["exp"] == described["iat"] + provider.settings.refresh_idle_ttl


def test_spent_refresh_token_is_inactive(provider: Provider, app: Registered) -> None:
    first = log_in(provider, app)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    second = token_response(provider, form, app.basic, CONTEXT)["refresh_token"]
    assert ask(provider, app, first) == INACTIVE
    assert ask(provider, app, second)["active"] is True


def test_revoked_refresh_token_is_inactive(provider: Provider, app: Registered) -> None:
    token = log_in(provider, app)["refresh_token"]
    with provider.database.session() as session:
        client = session.get(Client, app.id)
        assert client is not None
        revoke(provider, session, client, token, hint="refresh_token", context=CONTEXT)
    assert ask(provider, app, token, hint="refresh_token") == INACTIVE


def test_expired_refresh_token_is_inactive(provider: Provider, app: Registered) -> None:
    token = log_in(provider, app)["refresh_token"]
    exp = ask(provider, app, token)["exp"]
    assert ask(provider, app, token, now=exp - 1)["active"] is True
    assert ask(provider, app, token, now=exp) == INACTIVE


def test_refresh_token_of_another_tenant_is_inactive(provider: Provider, app: Registered) -> None:
    add_tenant(provider, "other")
    outsider = add_client(provider, "other")
    token = log_in(provider, app)["refresh_token"]
    assert ask(provider, outsider, token, hint="refresh_token") == INACTIVE


def test_introspection_writes_nothing(provider: Provider, app: Registered) -> None:
    token = log_in(provider, app)["refresh_token"]
    before = all_rows(provider)
    ask(provider, app, token)
    assert all_rows(provider) == before
