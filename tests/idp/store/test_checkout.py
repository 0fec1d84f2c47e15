"""The pool's check of a PostgreSQL connection as it lends it (store/checkout.py), on real
connections: one the server ended is refused, one with a notification waiting is lent; and the
TCP keepalives that make a peer gone without a word look the same (store/database.py)."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, event, literal, text
from sqlalchemy import select as query
from sqlalchemy.exc import InvalidatePoolError

from tessera.idp.store.checkout import refuse_if_closed
from tessera.idp.store.database import Database

from ...services import POSTGRES_URL, postgres_schema, require_postgres

DSN = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def connections() -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    require_postgres()
    lent = psycopg.connect(DSN, autocommit=True)
    other = psycopg.connect(DSN, autocommit=True)
    yield lent, other
    lent.close()
    other.close()


def _readable(connection: psycopg.Connection, within: float = 5) -> None:
    waiting = select.poll()
    waiting.register(connection.pgconn.socket, select.POLLIN)
    assert waiting.poll(int(within * 1000)), "nothing came from the server"


def test_a_connection_the_server_ended_is_refused(
    connections: tuple[psycopg.Connection, psycopg.Connection],
) -> None:
    lent, other = connections
    refuse_if_closed(lent, None, None)  # alive and quiet: lent
    other.execute("SELECT pg_terminate_backend(%s)", (lent.info.backend_pid,))
    _readable(lent)  # the server's goodbye
    time.sleep(0.1)  # and the end of the socket after it
    with pytest.raises(InvalidatePoolError):
        refuse_if_closed(lent, None, None)


def test_a_live_connection_with_a_notification_waiting_is_lent(
    connections: tuple[psycopg.Connection, psycopg.Connection],
) -> None:
    lent, other = connections
    lent.execute("LISTEN tessera_checkout_test")
    other.execute("NOTIFY tessera_checkout_test")
    _readable(lent)
    refuse_if_closed(lent, None, None)
    assert lent.execute("SELECT 1").fetchone() == (1,)


def test_the_pool_lends_a_new_connection_in_place_of_every_ended_one() -> None:
    require_postgres()
    engine = create_engine(POSTGRES_URL, pool_size=3, max_overflow=0)
    event.listen(engine, "checkout", refuse_if_closed)
    try:
        held = [engine.connect() for _ in range(3)]
        pids = [connection.scalar(text("SELECT pg_backend_pid()")) for connection in held]
        for connection in held:
            connection.close()  # back to the pool, idle
        with psycopg.connect(DSN, autocommit=True) as other:
            for pid in pids:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)  # the goodbyes reach the idle connections' sockets
        for _ in range(3):
            with engine.connect() as connection:
                assert connection.scalar(text("SELECT pg_backend_pid()")) not in pids
    finally:
        engine.dispose()


def _keepalive(fd: int) -> tuple[int, int, int, int]:
    """The TCP keepalive settings of the socket ``fd`` (a duplicate is read, then closed)."""
    with socket.socket(fileno=os.dup(fd)) as sock:
        return (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        )


def test_every_postgresql_connection_probes_its_peer_when_idle() -> None:
    # A peer gone without a word (a firewall's dropped flow) is known dead within a minute,
    # and a flow kept open through NAT: on the pool's connections and on the event loop's.
    with postgres_schema() as url:
        database = Database(url, pool_size=1)
        database.upgrade()
        with database.engine.connect() as connection:
            pooled = connection.connection.driver_connection
            assert pooled is not None
            assert _keepalive(pooled.pgconn.socket) == (1, 30, 10, 3)

        async def on_the_loop() -> tuple[int, int, int, int]:
            await database.read(query(literal(1).label("one")), {})
            loop_connections = database._loop_connections
            assert loop_connections is not None
            [idle] = loop_connections._pools[asyncio.get_running_loop()]._idle
            settings = _keepalive(idle.connection.pgconn.socket)
            await database.close_loop_connections()
            return settings

        assert asyncio.run(on_the_loop()) == (1, 30, 10, 3)
        database.dispose()
    # A URL's own choice stands.
    with postgres_schema() as url:
        database = Database(f"{url}&keepalives_idle=45")
        with database.engine.connect() as connection:
            pooled = connection.connection.driver_connection
            assert pooled is not None
            assert _keepalive(pooled.pgconn.socket) == (1, 45, 10, 3)
        database.dispose()
