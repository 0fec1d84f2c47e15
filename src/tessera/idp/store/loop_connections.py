"""PostgreSQL statements of the hot endpoints awaited on the event loop, on connections of the
loop's own, in groups (:mod:`.grouped`): the one-row reads requests reach in the same turn of
the loop (UserInfo's claims and revocation, introspection's revocation, an SSO hop's session, a
client on a cache miss) and the writes they make there (client_credentials grants' audit rows,
SSO hops' codes), each group sent in one round trip (libpq's pipeline mode: every statement,
then one sync) — a group of writes is one transaction; a read is one statement, with its own
snapshot, wherever it travels.

Made on a worker thread, such a statement costs the hand-off there and back (43–65 µs of CPU
on uvloop, measured) and an ORM session or a pooled connection's checkout; made on the loop
with a blocking driver it would stall every other request for the round trip. Here it is
awaited, in autocommit, a few connections per event loop, made when first needed and kept
while they work.

psycopg's ``AsyncConnection`` makes the connection (hosts, authentication, timeouts); the
statements go to its libpq connection itself (``psycopg.pq``): each prepared once per
connection (by the types of its arguments, as psycopg's cursors do), then sent by name with
its arguments in text, the results awaited on the socket. ``Database.read`` of a one-row
SELECT costs 57 µs of CPU alone, 6 µs each of 32 at once (uvloop, measured; 121 µs alone
through psycopg's async cursors, whose generators and locks are work one prepared statement
does not need).

A statement the server refuses raises as SQLAlchemy would (``IntegrityError``…) and leaves its
connection in use; a connection that fails, or whose statements were cancelled half-way, is
closed, never handed on (``OperationalError``: the app answers 503 with ``Retry-After``). A
group that finds every connection busy waits at most ``pool_timeout`` seconds
(``sqlalchemy.exc.TimeoutError``, the same 503). Transactions whose statements depend on each
other stay on worker threads.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import psycopg
from psycopg import AsyncConnection, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .prepared import PreparedStatement, Write

T = TypeVar("T")


class LoopConnections:
    """Up to ``size`` connections per event loop to the database ``connect_args`` name
    (``psycopg.AsyncConnection.connect`` keywords, as SQLAlchemy's dialect makes them)."""

    def __init__(self, connect_args: Mapping[str, Any], size: int, pool_timeout: float) -> None:
        self._connect_args = {**connect_args, "autocommit": True}
        self._size = size
        self._pool_timeout = pool_timeout
        self._pools: WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = WeakKeyDictionary()

    async def run_all(self, writes: Sequence[Write]) -> list[int]:
        """Run every one of ``writes`` (statement and parameters), in order, in one
        transaction and one round trip: all are committed, or none (the first refusal is
        raised). Returns how many rows each changed."""
        return await self._lent(writes[0][0], lambda connection: connection.run_all(writes))

    async def first_all(self, reads: Sequence[Write]) -> list[Any | None]:
        """The first row (or ``None``) of each of ``reads`` (statement and parameters), sent
        in one round trip."""
        return await self._lent(reads[0][0], lambda connection: connection.first_all(reads))

    async def _lent(
        self, statement: PreparedStatement, work: Callable[[_Connection], Awaitable[T]]
    ) -> T:
        """``work`` on a connection of the running loop's, lent for it; errors raised as
        SQLAlchemy would (``statement``'s SQL in them)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(self._connect_args, self._size)
        try:
            connection = await pool.take(self._pool_timeout)
        except psycopg.Error as error:  # could not connect
            raise statement.raised(error) from None
        try:
            done = await work(connection)
        except _Refused as refused:  # the server's answer: the connection is fine
            pool.give_back(connection)
            raise statement.raised(refused.error) from None
        except psycopg.Error as error:
            await pool.discard(connection)
            raise statement.raised(error) from None
        except BaseException:  # cancelled half-way: what the connection holds is unknown
            await pool.discard(connection)
            raise
        pool.give_back(connection)
        return done

    async def close(self) -> None:
        """Close the running loop's connections (its app is stopping)."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()


class _Refused(Exception):
    """The server refused a statement (``error``): its connection stays usable."""

    def __init__(self, error: psycopg.Error) -> None:
        self.error = error


class _Connection:
    """A libpq connection of the loop's, and the statements prepared on it.

    Its socket is watched by the loop for as long as the connection is kept, not for each
    answer (watching and unwatching cost two system calls a round trip, 12 µs measured): a
    duplicate of it, since libpq closes its own descriptor when the connection fails, and the
    loop must never watch a descriptor that is closed (or, worse, reused)."""

    def __init__(self, connection: AsyncConnection[Any]) -> None:
        self.connection = connection
        self._pgconn = connection.pgconn
        self._transformer = Transformer(connection)
        # A statement is prepared once per connection and per types of its arguments (an
        # int is sent as int2, int4 or int8 by its size), as psycopg's cursors do.
        self._prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._loop = asyncio.get_running_loop()
        self._socket = os.dup(self._pgconn.socket)
        self._answer: asyncio.Future[None] | None = None  # what an awaited answer waits on
        self._failed = False
        self._loop.add_reader(self._socket, self._readable)

    @property
    def closed(self) -> bool:
        return self._failed or self.connection.closed

    async def close(self) -> None:
        if not self._failed:
            self._loop.remove_reader(self._socket)
        os.close(self._socket)
        await self.connection.close()

    def _readable(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None:
            if not answer.done():
                answer.set_result(None)
            return
        # Nothing is awaited: the server sent something unasked (a notice, or its goodbye
        # before it closes the connection). Read it; a connection that failed is closed
        # when it is next taken, and no longer watched.
        try:
            self._pgconn.consume_input()
        except psycopg.Error:
            self._failed = True
            self._loop.remove_reader(self._socket)

    async def run_all(self, writes: Sequence[Write]) -> list[int]:
        """``writes`` in one implicit transaction: how many rows each changed."""
        return [result.command_tuples or 0 for result in await self._pipeline(writes)]

    async def first_all(self, reads: Sequence[Write]) -> list[Any | None]:
        """The first row of each of ``reads`` (or ``None``), all sent at once."""
        transformer = self._transformer
        rows: list[Any | None] = []
        for (statement, _), result in zip(reads, await self._pipeline(reads), strict=True):
            if result.ntuples == 0:
                rows.append(None)
            else:
                transformer.set_pgresult(result)
                rows.append(statement.shaped(transformer.load_row(0, tuple)))
        return rows

    async def _pipeline(self, statements: Sequence[Write]) -> list[pq.abc.PGresult]:
        """``statements`` in one implicit transaction: libpq's pipeline mode, every statement
        sent before one sync, the server's answers read after it. The result of each."""
        pgconn = self._pgconn
        preparing: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        sent: list[tuple[bytes, tuple[int, ...]] | None] = []  # what each command prepared
        pgconn.enter_pipeline_mode()
        for statement, params in statements:
            name, arguments, prepare = self._named(statement, params, preparing)
            if prepare is not None:
                preparing[prepare] = name
                pgconn.send_prepare(name, *prepare)
                sent.append(prepare)
            pgconn.send_query_prepared(name, arguments)
            sent.append(None)
        pgconn.pipeline_sync()
        results = await self._pipeline_results(len(sent))
        pgconn.exit_pipeline_mode()
        for prepare, result in zip(sent, results, strict=True):
            if prepare is not None and result.status == pq.ExecStatus.COMMAND_OK:
                self._prepared[prepare] = preparing[prepare]
        for result in results:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                raise _Refused(error_from_result(result, self.connection.info.encoding))
        return [result for prepare, result in zip(sent, results, strict=True) if prepare is None]

    def _named(
        self,
        statement: PreparedStatement,
        params: Mapping[str, Any],
        preparing: Mapping[tuple[bytes, tuple[int, ...]], bytes] | None = None,
    ) -> tuple[bytes, Sequence[Any], tuple[bytes, tuple[int, ...]] | None]:
        """The name ``statement`` is prepared by for ``params``' types, its arguments, and
        the SQL and types to prepare it with if it is not yet (``preparing``: being so)."""
        assert statement.numbered is not None, "a statement compiled for psycopg"
        sql, order = statement.numbered
        transformer = self._transformer
        arguments = transformer.dump_sequence(
            statement.in_order(params, order), [PyFormat.TEXT] * len(order)
        )
        key = (sql, transformer.types or ())
        name = self._prepared.get(key) or (preparing or {}).get(key)
        if name is not None:
            return name, arguments, None
        return b"tessera_%d" % (len(self._prepared) + len(preparing or ())), arguments, key

    async def _pipeline_results(self, commands: int) -> list[pq.abc.PGresult]:
        """The first result of each of ``commands`` sent in pipeline mode, once the sync that
        ends them has come back."""
        pgconn = self._pgconn
        while pgconn.flush():
            await self._ready(writable=True)
        results: list[pq.abc.PGresult] = []
        current: pq.abc.PGresult | None = None
        while True:
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:  # the end of one command's results
                    if current is not None:
                        results.append(current)
                        current = None
                    continue
                if result.status == pq.ExecStatus.PIPELINE_SYNC:
                    assert len(results) == commands, "a result for each command"
                    return results
                current = current if current is not None else result
            await self._ready(writable=False)

    async def _ready(self, writable: bool) -> None:
        if self._failed:
            raise psycopg.OperationalError("the connection failed")
        if not writable:
            self._answer = self._loop.create_future()
            try:
                await self._answer
            finally:
                self._answer = None
            return
        ready = self._loop.create_future()
        self._loop.add_writer(self._socket, _wake, ready)
        try:
            await ready
        finally:
            self._loop.remove_writer(self._socket)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class _Pool:
    """One loop's connections: idle ones last-in first-out, at most ``size`` in all; a
    statement that finds them all lent waits in line for the next one given back, with a
    timer for its timeout. (``asyncio.wait_for`` makes a task of each wait: with 32 reads
    at once on 10 connections, 23 µs of CPU a read where this costs 19; a server's
    introspection on PostgreSQL under 32 connections, 194–199 µs a request where this costs
    172–180, measured.)"""

    def __init__(self, connect_args: Mapping[str, Any], size: int) -> None:
        self._connect_args = connect_args
        self._idle: list[_Connection] = []
        self._unmade = size  # connections that may still be made
        # Who waits, first come first served: each is handed a connection given back, or
        # None when one was discarded (its slot: the waiter makes a new connection).
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()

    async def take(self, timeout: float) -> _Connection:
        while self._idle:
            idle = self._idle.pop()
            if not idle.closed:
                return idle
            self._unmade += 1
            await idle.close()
        if self._unmade:
            self._unmade -= 1
            return await self._made()
        handed = await self._in_line(timeout)
        return handed if handed is not None else await self._made()

    async def _in_line(self, timeout: float) -> _Connection | None:
        """What the pool hands this waiter, within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiting.append(turn)
        timer = loop.call_later(timeout, _expire, turn)
        try:
            return await turn
        except BaseException:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                # Handed something, then cancelled before resuming: pass it on.
                self._hand_on(turn.result())
            raise
        finally:
            timer.cancel()
            if not turn.done():  # cancelled while in line
                self._waiting.remove(turn)

    async def _made(self) -> _Connection:
        """A new connection, in a slot already counted as taken."""
        try:
            return _Connection(await AsyncConnection.connect(**self._connect_args))
        except BaseException:
            self._hand_on(None)
            raise

    def give_back(self, connection: _Connection) -> None:
        self._hand_on(connection)

    async def discard(self, connection: _Connection) -> None:
        self._hand_on(None)
        await connection.close()

    def _hand_on(self, connection: _Connection | None) -> None:
        """``connection`` (or, if ``None``, its slot) to the first in line, else to the pool."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(connection)
                return
        if connection is None:
            self._unmade += 1
        else:
            self._idle.append(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


def _expire(turn: asyncio.Future[_Connection | None]) -> None:
    if not turn.done():
        turn.set_exception(PoolTimeout("every connection on the loop is busy"))
