"""Registering a client's URIs for the code flow and logout: checked before anything is
written, stored without duplicates."""

from __future__ import annotations

from typing import Any

import pytest

from tessera.idp.provider import Provider
from tessera.idp.services.clients import create_client

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
