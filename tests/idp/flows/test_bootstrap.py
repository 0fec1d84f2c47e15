"""First start: a tenant, an admin whose password works, a demo client whose secret works, a
first-party web client — once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tessera.idp.errors import OAuthError
from tessera.idp.flows.bootstrap import (
    DEFAULT_TENANT,
    DEMO_AUDIENCE,
    DEMO_CLIENT,
    WEB_CLIENT,
    Bootstrapped,
    bootstrap,
)
from tessera.idp.flows.grants import token_response
from tessera.idp.provider import Provider
from tessera.idp.services.accounts import authenticate_user
from tessera.idp.services.audit import Context
from tessera.idp.services.rbac import access_of
from tessera.idp.store.models import Tenant, User

from ..conftest import all_rows, client_row, row_counts

CONTEXT = Context()


@pytest.fixture
def first(provider: Provider) -> Bootstrapped:
    made = bootstrap(provider)
    assert made is not None
    return made


def test_bootstrap_creates_the_default_tenant_and_an_admin(
    provider: Provider, first: Bootstrapped
) -> None:
    with provider.database.session() as session:
        assert session.get(Tenant, DEFAULT_TENANT) is not None
        (admin,) = session.scalars(select(User))
        assert (admin.username, admin.tenant_id) == ("admin", DEFAULT_TENANT)
        assert access_of(session, admin.id).roles == ("admin", "member")
        assert admin.password_hash.startswith("$argon2id$")
        assert first.admin_password not in admin.password_hash
        assert len(first.admin_password) >= 24
        user = authenticate_user(
            session,
            provider.passwords,
            tenant_id=DEFAULT_TENANT,
            username=first.admin_username,
            password=first.admin_password,
        )
        assert user is not None and user.id == admin.id
        assert (
            authenticate_user(
                session,
                provider.passwords,
                tenant_id=DEFAULT_TENANT,
                username="admin",
                password=first.admin_password + "x",
            )
            is None
        )


def test_bootstrap_demo_client_secret_works(provider: Provider, first: Bootstrapped) -> None:
    assert first.client_id == DEMO_CLIENT
    basic = (first.client_id, first.client_secret)
    answer = token_response(provider, {"grant_type": "client_credentials"}, basic, CONTEXT)
    claims = provider.issuer.verifier().verify(answer["access_token"])
    assert (claims["sub"], claims["aud"], claims["tenant"]) == (
        DEMO_CLIENT,
        DEMO_AUDIENCE,
        DEFAULT_TENANT,
    )
    assert claims["scope"] == "demo:read"
    demo = client_row(provider, DEMO_CLIENT)
    assert demo.secret_hash is not None and demo.secret_hash != first.client_secret
    with pytest.raises(OAuthError) as caught:
        token_response(
            provider, {"grant_type": "client_credentials"}, (DEMO_CLIENT, "wrong"), CONTEXT
        )
    assert caught.value.error == "invalid_client"


def test_bootstrap_web_client_is_public_and_first_party(
    provider: Provider, first: Bootstrapped
) -> None:
    web = client_row(provider, WEB_CLIENT)
    assert web.secret_hash is None
    assert web.first_party is True
    assert set(web.grant_types.split()) == {"password", "refresh_token"}
    form = {
        "grant_type": "password",
        "client_id": WEB_CLIENT,
        "username": first.admin_username,
        "password": first.admin_password,
    }
    answer: dict[str, Any] = token_response(provider, form, None, CONTEXT)
    claims = provider.issuer.verifier().verify(answer["access_token"])
    assert claims["roles"] == ["admin", "member"]
    assert claims["client_id"] == WEB_CLIENT
    refreshed = token_response(
        provider,
        {
            "grant_type": "refresh_token",
            "client_id": WEB_CLIENT,
            "refresh_token": answer["refresh_token"],
        },
        None,
        CONTEXT,
    )
    assert refreshed["refresh_token"] != answer["refresh_token"]


def test_bootstrap_runs_once(provider: Provider, first: Bootstrapped) -> None:
    before = all_rows(provider)
    assert bootstrap(provider) is None
    assert all_rows(provider) == before
    counts = row_counts(provider)
    assert (counts["tenants"], counts["users"], counts["clients"]) == (1, 1, 2)


def test_bootstrap_never_stores_the_secrets_it_shows(
    provider: Provider, first: Bootstrapped
) -> None:
    dump = repr(all_rows(provider))
    assert first.admin_password not in dump
    assert first.client_secret not in dump
    events = [row for row in all_rows(provider)["audit_events"] if "bootstrap" in row]
    assert len(events) == 1
