"""The pool's check of a PostgreSQL connection as it lends it (store/checkout.py), on real
connections: one the server ended is refused, one with a notification waiting is lent."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import InvalidatePoolError

from tessera.idp.store.checkout import refuse_if_closed

from ...services import POSTGRES_URL, require_postgres

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
