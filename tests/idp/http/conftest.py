"""Fixtures for the provider's HTTP tests: one real server per module, httpx clients.

A module says how its server is made with the ``idp`` marker::

    pytestmark = pytest.mark.idp(databases=BOTH_DATABASES, argon2_memory_kib=64)

``databases`` (default: SQLite only) parametrizes every test that uses the ``idp`` fixture; the
other keywords are :class:`~tessera.idp.config.Settings` overrides.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .servers import IdpServer, serving


def _marked(node: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    marker = node.get_closest_marker("idp")
    options = dict(marker.kwargs) if marker else {}
    return tuple(options.pop("databases", ("sqlite",))), options


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "idp" in metafunc.fixturenames:
        databases, _ = _marked(metafunc.definition)
        if databases != ("sqlite",):  # one database needs no parameter (nor a [sqlite] id)
            metafunc.parametrize("idp", databases, indirect=True, scope="module")


@pytest.fixture(scope="module")
def idp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdpServer]:
    """A bootstrapped provider on its own database, served for the whole module."""
    _, settings = _marked(request.node)
    database = getattr(request, "param", "sqlite")
    with serving(database, tmp_path_factory.mktemp("idp"), **settings) as server:
        yield server


@pytest.fixture
def http(idp: IdpServer) -> Iterator[httpx.Client]:
    with idp.client() as client:
        yield client
