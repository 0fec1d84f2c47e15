"""Fixtures for the provider's HTTP tests: a real server per module, httpx clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .servers import IdpServer, serving


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    """A bootstrapped provider on its own SQLite file, served for the whole module."""
    with serving("sqlite", tmp_path_factory.mktemp("idp")) as server:
        yield server


@pytest.fixture
def http(idp: IdpServer) -> Iterator[httpx.Client]:
    with idp.client() as client:
        yield client
