"""PostgreSQL statements of the hot endpoints awaited on the event loop, on connections of the
loop's own: one-row reads (UserInfo's claims and revocation, introspection's revocation, a
client on a cache miss) and one-statement writes (a client_credentials grant's audit row).

Made on a worker thread, such a statement costs the hand-off there and back (43–65 µs of CPU
on uvloop, measured) and an ORM session or a pooled connection's checkout; made on the loop
with a blocking driver it would stall every other request for the round trip. Here it is
awaited: psycopg's ``AsyncConnection`` in autocommit (one statement, one round trip, its own
transaction), a few per event loop, made when first needed and kept while they work. A
connection that fails is closed, never handed on; the statement raises as SQLAlchemy would
(``OperationalError``: the app answers 503 with ``Retry-After``), and one that finds every
connection busy waits at most ``pool_timeout`` seconds (``sqlalchemy.exc.TimeoutError``, the
same 503). An awaited round trip costs more CPU than a blocking one (~130 µs against ~55 µs,
psycopg 3.3): transactions of several statements stay on worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg import AsyncConnection
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .prepared import PreparedStatement


class LoopConnections:
    """Up to ``size`` connections per event loop to the database ``connect_args`` name
    (``psycopg.AsyncConnection.connect`` keywords, as SQLAlchemy's dialect makes them)."""

    def __init__(self, connect_args: Mapping[str, Any], size: int, pool_timeout: float) -> None:
        self._connect_args = {**connect_args, "autocommit": True}
        self._size = size
        self._pool_timeout = pool_timeout
        self._pools: WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = WeakKeyDictionary()

    async def run(self, statement: PreparedStatement, params: Mapping[str, Any]) -> Any | None:
        """Run ``statement`` for ``params`` in a transaction of its own: its first row (a
        SELECT, a RETURNING), else ``None``."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(self._connect_args, self._size)
        try:
            connection = await pool.take(self._pool_timeout)
        except psycopg.Error as error:  # could not connect
            raise statement.raised(error) from None
        try:
            row = await statement.first_async(connection, params)
        except BaseException:
            await pool.discard(connection)
            raise
        pool.give_back(connection)
        return row

    async def close(self) -> None:
        """Close the running loop's connections (its app is stopping)."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()


class _Pool:
    """One loop's connections: idle ones last-in first-out, at most ``size`` in all."""

    def __init__(self, connect_args: Mapping[str, Any], size: int) -> None:
        self._connect_args = connect_args
        self._idle: list[AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    async def take(self, timeout: float) -> AsyncConnection[Any]:
        if self._slots.locked():  # every connection lent: wait, at most timeout
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout)
            except TimeoutError:
                raise PoolTimeout("every connection on the loop is busy") from None
        else:  # a free slot: taken without suspending (wait_for would make a task)
            await self._slots.acquire()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        try:
            connection = await AsyncConnection.connect(**self._connect_args)
        except BaseException:
            self._slots.release()
            raise
        return connection

    def give_back(self, connection: AsyncConnection[Any]) -> None:
        self._idle.append(connection)
        self._slots.release()

    async def discard(self, connection: AsyncConnection[Any]) -> None:
        self._slots.release()
        await connection.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()
