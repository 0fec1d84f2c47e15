"""Fixtures for the guard's tests: keys, a real JWKS server, a controllable clock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tessera import jose

from .servers import JwksServer


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def signing_key() -> jose.Key:
    return jose.Key.generate("ES256", kid="key-1")


@pytest.fixture(scope="session")
def next_key() -> jose.Key:
    return jose.Key.generate("ES256", kid="key-2")


@pytest.fixture
def jwks_server(signing_key: jose.Key) -> Iterator[JwksServer]:
    server = JwksServer()
    server.jwks = jose.KeySet([signing_key]).to_jwks()
    server.start()
    try:
        yield server
    finally:
        server.stop()


ISSUER = "https://id.example"
AUDIENCE = "orders"


class Mint:
    """Sign access tokens with sensible defaults; ``overrides`` replace or (None) drop claims."""

    def __init__(self, key: jose.Key) -> None:
        self.key = key
        self.count = 0

    def __call__(self, key: jose.Key | None = None, **overrides: object) -> str:
        self.count += 1
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "ada",
            "iat": now,
            "exp": now + 300,
            "jti": f"jti-{uuid.uuid4().hex}",
            "scope": "orders:read",
            "tenant": "acme",
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jose.jwt.encode(claims, key or self.key)


@pytest.fixture
def mint(signing_key: jose.Key) -> Mint:
    return Mint(signing_key)
