"""Registering a client's URIs for the code flow and logout: checked before anything is
written, stored without duplicates; what an admin registers and changes (a 422 for what
may not be, an OpenID Connect relying party's tokens for itself when it names no audience)."""

from __future__ import annotations

from typing import Any

import pytest

from tessera.idp.errors import AdminError
from tessera.idp.provider import Provider
from tessera.idp.services.clients import create_client, register_client, update_client
from tessera.idp.store.models import Client

from ..conftest import add_client, client_row, row_counts


def test_registered_uris_are_stored_once_each(provider: Provider, tenant: str) -> None:
    uris = ("https://app.example/cb", "http://127.0.0.1/cb", "https://app.example/cb")
    made = add_client(provider, tenant, grant_types=("authorization_code",), redirect_uris=uris)
    row = client_row(provider, made.id)
    assert row.redirect_uris.split() == ["https://app.example/cb", "http://127.0.0.1/cb"]
    assert (row.post_logout_redirect_uris, row.backchannel_logout_uri) == ("", None)


def test_the_code_grant_needs_a_redirect_uri(provider: Provider, tenant: str) -> None:
    before = row_counts(provider)
    with pytest.raises(ValueError, match="the authorization_code grant needs a redirect URI"):
        add_client(provider, tenant, grant_types=("authorization_code",))
    assert row_counts(provider) == before


@pytest.mark.parametrize(
    ("field", "uri", "message"),
    [
        ("redirect_uris", "https://app.example/cb#x", "a redirect URI has no fragment"),
        ("redirect_uris", "http://app.example/cb", "http only on a loopback host"),
        ("post_logout_redirect_uris", "javascript:alert(1)", "private-use scheme"),
        ("backchannel_logout_uri", "com.example.app:/logout", "a back-channel logout URI is"),
        ("backchannel_logout_uri", "http://rp.example/logout", "a back-channel logout URI is"),
    ],
)
def test_an_unsafe_uri_is_refused_before_anything_is_written(
    provider: Provider, tenant: str, field: str, uri: str, message: str
) -> None:
    before = row_counts(provider)
    uris: dict[str, Any] = {"redirect_uris": ("https://app.example/cb",)}
    uris[field] = uri if field == "backchannel_logout_uri" else (uri,)
    with pytest.raises(ValueError, match=message), provider.database.session() as session:
        create_client(
            session,
            provider.master,
            tenant_id=tenant,
            name="rp",
            grant_types=("authorization_code",),
            audience=("https://api.example",),
            **uris,
        )
    assert row_counts(provider) == before


def register(provider: Provider, tenant: str, **options: Any) -> Client:
    wanted: dict[str, Any] = {
        "name": "wiki",
        "grant_types": ("authorization_code",),
        "redirect_uris": ("https://wiki.example/cb",),
        **options,
    }
    with provider.database.session() as session:
        made = register_client(session, provider.master, tenant_id=tenant, **wanted)
        session.expunge(made.client)
        return made.client


def test_a_relying_party_without_audience_is_its_own(provider: Provider, tenant: str) -> None:
    client = register(provider, tenant)
    assert client.audience == client.id and len(client.id) == 24
    named = register(provider, tenant, audience=("https://api.example",))
    assert named.audience == "https://api.example"
    with pytest.raises(AdminError, match="at least one audience"):
        register(provider, tenant, grant_types=("client_credentials",), redirect_uris=())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"id_token_signed_response_alg": "HS256"}, "ID tokens are signed with one of RS256"),
        ({"redirect_uris": ()}, "the authorization_code grant needs a redirect URI"),
        ({"redirect_uris": ("https://wiki.example/cb",) * 11}, "at most 10 redirect URIs"),
        ({"backchannel_logout_uri": ""}, "a back-channel logout URI has 1 to 2000 characters"),
        (
            {"grant_types": ("refresh_token",), "audience": ("api",)},
            "are for clients of the authorization_code grant",
        ),
    ],
)
def test_what_may_not_be_registered_is_a_422_and_nothing_is_written(
    provider: Provider, tenant: str, options: dict[str, Any], message: str
) -> None:
    before = row_counts(provider)
    with pytest.raises(AdminError, match=message) as refused:
        register(provider, tenant, **options)
    assert refused.value.code == "invalid"
    assert row_counts(provider) == before


def test_a_client_whose_stored_uris_break_todays_rules_can_still_be_disabled(
    provider: Provider, tenant: str
) -> None:
    client_id = register(provider, tenant).id
    with provider.database.session() as session:
        client = session.get(Client, client_id)
        assert client is not None
        client.redirect_uris = "http://legacy.example/cb"  # refused since: not https
    with provider.database.session() as session:
        client = session.get(Client, client_id)
        assert client is not None
        assert update_client(session, client, status="disabled") == {"status": "disabled"}
        with pytest.raises(AdminError, match="http only on a loopback host"):
            update_client(session, client, backchannel_logout_uri="https://wiki.example/bc")
    assert client_row(provider, client_id).status == "disabled"
