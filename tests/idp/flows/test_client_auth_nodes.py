"""Two provider nodes on one database: a client disabled, or its secret rotated, on one node is
refused by the other within ``client_cache_ttl`` (1 s by default), however warm its cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy.orm import Session

from tessera.idp.config import Settings
from tessera.idp.errors import OAuthError
from tessera.idp.flows.client_auth import client_from_request
from tessera.idp.provider import Provider
from tessera.idp.services.clients import rotate_secret, update_client
from tessera.idp.store.models import Client

from ..conftest import TENANT, Registered, add_client, add_tenant, make_settings

T = TypeVar("T")
BOUND = 1.0  # seconds: the default client_cache_ttl


def authenticates(node: Provider, client_id: str, secret: str) -> bool:
    try:
        client_from_request(node, {"grant_type": "client_credentials"}, (client_id, secret))
    except OAuthError:
        return False
    return True


def refused_within(node: Provider, client_id: str, secret: str) -> float:
    """Seconds until ``node`` refuses the credentials (asked every 20 ms, at most 3 s)."""
    started = time.monotonic()
    while authenticates(node, client_id, secret):
        assert time.monotonic() - started < 3, "the other node still accepts the client"
        time.sleep(0.02)
    return time.monotonic() - started


def changed(node: Provider, client_id: str, change: Callable[[Session, Client], T]) -> T:
    """``change`` made to the client in one transaction on ``node`` (as its admin API would)."""
    with node.database.session() as session:
        row = session.get(Client, client_id)
        assert row is not None
        return change(session, row)


@pytest.fixture
def nodes(
    database_url: str, tmp_path: Path, make_provider: Callable[[Settings], Provider]
) -> tuple[Provider, Provider]:
    settings = make_settings(database_url, tmp_path)
    assert settings.client_cache_ttl == BOUND
    return make_provider(settings), make_provider(settings)


@pytest.fixture
def warm(nodes: tuple[Provider, Provider]) -> tuple[Provider, Provider, Registered]:
    """The nodes and a client the second node has just authenticated (it is in its cache)."""
    first, second = nodes
    add_tenant(first, TENANT)
    client = add_client(first)
    assert client.secret is not None
    assert authenticates(second, client.id, client.secret)
    return first, second, client


def test_a_disabled_client_is_refused_on_every_node_within_a_second(
    warm: tuple[Provider, Provider, Registered],
) -> None:
    first, second, client = warm
    assert client.secret is not None
    changed(
        first,
        client.id,
        lambda session, row: update_client(session, row, status="disabled", cache=first.clients),
    )
    assert not authenticates(first, client.id, client.secret)  # at once where it was changed
    assert refused_within(second, client.id, client.secret) <= BOUND + 0.1


def test_a_rotated_secret_is_refused_on_every_node_within_a_second(
    warm: tuple[Provider, Provider, Registered],
) -> None:
    first, second, client = warm
    assert client.secret is not None
    new_secret = changed(
        first,
        client.id,
        lambda session, row: rotate_secret(session, first.master, row, cache=first.clients),
    )
    assert refused_within(second, client.id, client.secret) <= BOUND + 0.1
    assert authenticates(second, client.id, new_secret)
