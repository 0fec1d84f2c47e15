"""Access tokens: RFC 9068 JWTs signed by the active key, with the lifetime from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tessera import jose
from tessera.idp.config import Settings
from tessera.idp.provider import Provider

from ..conftest import AUDIENCE, ISSUER, make_settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, access_token_ttl=120)


def issue(provider: Provider, now: float | None = None) -> tuple[str, dict[str, object]]:
    issued = provider.issuer.issue(
        tenant_id="acme",
        subject="user-1",
        client_id="app",
        scope=("read", "write"),
        audience=AUDIENCE,
        now=now,
    )
    return issued.token, issued.claims


def test_access_token_has_the_rfc9068_header_and_claims(provider: Provider) -> None:
    token, claims = issue(provider)
    header, payload = jose.jwt.decode_unverified(token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": provider.keyring.signing_key().kid}
    assert set(payload) == {
        "iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "tenant",
    }  # fmt: skip
    assert payload == claims
    assert payload["iss"] == ISSUER
    assert (payload["sub"], payload["aud"], payload["client_id"]) == ("user-1", AUDIENCE, "app")
    assert (payload["scope"], payload["tenant"]) == ("read write", "acme")
    assert isinstance(payload["jti"], str) and len(payload["jti"]) >= 16


def test_access_token_verifies_with_the_published_keys(provider: Provider) -> None:
    token, _ = issue(provider)
    verifier = jose.Verifier(
        jose.KeySet.from_jwks(provider.keyring.jwks()),
        algorithms=["ES256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        typ="at+jwt",
        require=("exp", "iat", "jti", "sub", "client_id"),
    )
    assert verifier.verify(token)["sub"] == "user-1"
    assert provider.issuer.verifier().verify(token)["client_id"] == "app"


def test_every_token_gets_its_own_jti(provider: Provider) -> None:
    jtis = {issue(provider, now=1_700_000_000)[1]["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_lifetime_comes_from_settings(provider: Provider) -> None:
    issued = provider.issuer.issue(
        tenant_id="acme", subject="s", client_id="c", scope=(), audience=AUDIENCE, now=1_700_000_000
    )
    assert issued.expires_in == 120
    assert (issued.claims["iat"], issued.claims["exp"]) == (1_700_000_000, 1_700_000_120)
    verifier = provider.issuer.verifier(1_700_000_000)
    assert verifier.verify(issued.token, now=1_700_000_119)["sub"] == "s"
    with pytest.raises(jose.ExpiredToken):
        verifier.verify(issued.token, now=1_700_000_120)


def test_extra_claims_are_added(provider: Provider) -> None:
    issued = provider.issuer.issue(
        tenant_id="acme",
        subject="s",
        client_id="c",
        scope=(),
        audience=AUDIENCE,
        extra={"roles": ["admin"], "amr": ["pwd"]},
    )
    assert issued.claims["roles"] == ["admin"]
    assert jose.jwt.decode_unverified(issued.token)[1]["amr"] == ["pwd"]


@pytest.mark.parametrize("ttl", [60, 900, 3600])
def test_access_token_lifetime_within_bounds_is_accepted(ttl: int) -> None:
    assert Settings(database_url="sqlite://", access_token_ttl=ttl).access_token_ttl == ttl


@pytest.mark.parametrize("ttl", [0, 59, 3601, 86_400])
def test_access_token_lifetime_outside_one_minute_to_one_hour_is_refused(ttl: int) -> None:
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite://", access_token_ttl=ttl)


def test_default_access_token_lifetime_is_fifteen_minutes() -> None:
    assert Settings(database_url="sqlite://").access_token_ttl == 900
