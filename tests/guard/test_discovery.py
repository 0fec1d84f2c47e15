"""Issuer discovery against a real server: OIDC first, RFC 8414 next, issuer must match."""

from __future__ import annotations

import asyncio

import pytest

from tessera.guard.discovery import adiscover, discover, metadata_urls
from tessera.guard.errors import FetchError

from .servers import JwksServer


def test_openid_configuration_names_the_jwks_uri(jwks_server: JwksServer) -> None:
    jwks_server.metadata_issuer = jwks_server.url
    assert discover(jwks_server.url) == jwks_server.url + "/jwks"
    assert asyncio.run(adiscover(jwks_server.url)) == jwks_server.url + "/jwks"


def test_rfc8414_metadata_is_tried_next(jwks_server: JwksServer) -> None:
    jwks_server.metadata_issuer = jwks_server.url
    jwks_server.metadata_at = "oauth-authorization-server"
    assert discover(jwks_server.url) == jwks_server.url + "/jwks"
    assert jwks_server.counts["/.well-known/openid-configuration"] == 1
    assert jwks_server.counts["/.well-known/oauth-authorization-server"] == 1


def test_mismatched_issuer_is_refused(jwks_server: JwksServer) -> None:
    jwks_server.metadata_issuer = jwks_server.url + "/other"
    with pytest.raises(FetchError, match="issuer differs"):
        discover(jwks_server.url)
    with pytest.raises(FetchError, match="issuer differs"):
        asyncio.run(adiscover(jwks_server.url))


def test_no_metadata_anywhere_is_a_fetch_error(jwks_server: JwksServer) -> None:
    with pytest.raises(FetchError, match="404"):
        discover(jwks_server.url)


def test_rfc8414_inserts_well_known_before_the_issuer_path() -> None:
    assert metadata_urls("https://id.example/t/1/") == (
        "https://id.example/t/1/.well-known/openid-configuration",
        "https://id.example/.well-known/oauth-authorization-server/t/1",
    )
