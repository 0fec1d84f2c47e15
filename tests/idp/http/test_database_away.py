"""The database away from a node (its connections cut, new ones refused): every request that
needs it is answered 503 with ``Retry-After`` and ``temporarily_unavailable`` (the OAuth
endpoints', and the admin API guard's) — never a 500 nor a hang — and the node serves again by
itself once the database is back. (tests/cluster restarts PostgreSQL under load; this test
needs no cluster.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ...guard.servers import CuttableProxy
from ...services import migrated_database
from .servers import CHEAP_ARGON2, DEMO, IdpServer, admin_token


@pytest.fixture
def away(tmp_path: Path) -> Iterator[tuple[IdpServer, CuttableProxy]]:
    """A provider whose PostgreSQL is reached through a relay the test can cut."""
    proxy = CuttableProxy(5432)
    with migrated_database("postgresql", tmp_path) as url:
        relayed = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        assert relayed != url
        server = IdpServer(relayed, tmp_path, **CHEAP_ARGON2).start()
        try:
            yield server, proxy
        finally:
            proxy.restore()
            server.stop()  # its lifespan closes the provider
            proxy.close()


def grant(http: httpx.Client, server: IdpServer) -> httpx.Response:
    return http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(DEMO, server.demo_secret)
    )


def serving(http: httpx.Client, server: IdpServer) -> tuple[str, dict[str, str]]:
    """An admin token and its headers, once the admin API and a grant both answer 200 (each
    pool holds a connection to the database)."""
    token = admin_token(http, "admin", server.admin_password)
    admin = {"Authorization": f"Bearer {token}"}
    assert http.get("/admin/tenants", headers=admin).status_code == 200
    assert grant(http, server).status_code == 200
    return token, admin


def test_oauth_and_admin_answer_503_while_the_database_is_away(
    away: tuple[IdpServer, CuttableProxy],
) -> None:
    server, proxy = away
    with server.client() as http:
        token, admin = serving(http, server)
        proxy.cut()
        started = time.monotonic()
        refused = grant(http, server)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["error"] == "temporarily_unavailable"
        # The admin API's guard reads the revocation list first: it answers, as its 401s,
        # per RFC 6750 (admin/__init__.py) — 503, temporarily_unavailable, and when to retry.
        guarded = http.get("/admin/tenants", headers=admin)
        assert guarded.status_code == 503, guarded.text
        assert guarded.headers["retry-after"] == "5"
        assert guarded.json() == {
            "error": "temporarily_unavailable",
            "error_description": "revocation_unavailable",
        }
        assert time.monotonic() - started < 10  # answered at once, not held till a timeout
        assert token not in guarded.text and server.demo_secret not in refused.text

        proxy.restore()
        deadline = time.monotonic() + 5
        while (answer := grant(http, server)).status_code != 200:
            assert answer.status_code == 503, answer.text
            assert time.monotonic() < deadline, "not serving 5 s after the database came back"
            time.sleep(0.1)
        assert http.get("/admin/tenants", headers=admin).status_code == 200


def test_connections_the_database_closed_while_idle_are_not_handed_to_a_request(
    away: tuple[IdpServer, CuttableProxy],
) -> None:
    # The database restarts (here: every connection to it cut, then new ones accepted again)
    # while the node is idle. Its pooled connections are dead; the first requests after —
    # the admin API's on worker threads, a grant's on the event loop — must not be the ones
    # that find out.
    server, proxy = away
    with server.client() as http:
        _, admin = serving(http, server)
        proxy.cut()
        time.sleep(0.5)  # the node reads each connection's end while nothing is asked of it
        proxy.restore()
        assert http.get("/admin/tenants", headers=admin).status_code == 200
        assert grant(http, server).status_code == 200
        assert http.get("/admin/tenants", headers=admin).status_code == 200
