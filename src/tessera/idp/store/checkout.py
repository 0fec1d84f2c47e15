"""What the pool checks of a PostgreSQL connection as it lends it to a worker thread's
transaction: that the server has not closed it while it was idle.

A restart or a failover closes every connection: the server says goodbye (or its end of the
socket closes) while the pool holds them. Without a check, the first transaction after it gets a
dead connection, fails with 503, and only then does the pool drop its connections. The check is
one poll of the socket and no round trip (``pool_pre_ping`` would send ``SELECT 1`` before every
transaction); a connection cut without a word on the wire still fails its request, with 503.
(The event loop's own connections watch their sockets already: :mod:`.loop_connections`.)
"""

from __future__ import annotations

import select
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy.exc import InvalidatePoolError

_READS = 8  # reads of what waits at the most (a live connection rarely has more than one)


def refuse_if_closed(connection: Any, _record: Any, _proxy: Any) -> None:
    """A ``checkout`` listener: for a ``psycopg`` connection the server has closed, raise
    ``InvalidatePoolError`` (a ``DisconnectionError``), so that the pool drops it, and every
    connection made before it (they met the same end), and lends a new one. A notice waiting on
    a live connection is read, and the connection lent.

    >>> class Closed:
    ...     class pgconn:
    ...         status = pq.ConnStatus.BAD
    >>> refuse_if_closed(Closed(), None, None)
    Traceback (most recent call last):
    ...
    sqlalchemy.exc.InvalidatePoolError: the database closed this connection
    """
    pgconn = connection.pgconn
    if pgconn.status == pq.ConnStatus.OK:
        waiting = select.poll()
        waiting.register(pgconn.socket, select.POLLIN)
        # What waits is read: a notice, or the server's goodbye (a FATAL message, which libpq
        # hands to the notice processor), then the end of the socket, which sets the status.
        for _ in range(_READS):
            if pgconn.status != pq.ConnStatus.OK or not waiting.poll(0):
                break
            with suppress(psycopg.OperationalError):  # the end of the socket
                pgconn.consume_input()
        if pgconn.status == pq.ConnStatus.OK:
            return
    raise InvalidatePoolError("the database closed this connection")
