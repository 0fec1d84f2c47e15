"""Group commit: the one-statement writes that requests on one event loop make at the same
moment (a client_credentials grant's audit row) are committed together, in one transaction.

A commit has a fixed cost beside its statements: SQLite writes every page it changed to its
log (a row of the audit table changes five: the table's and four indexes'), PostgreSQL
answers one round trip. Requests that reach their write in the same turn of the loop share
it: the first of them schedules the commit, the others join until it starts. Nobody waits
for a timer; a write is committed when its ``await`` returns, as it would be alone.

One write that fails does not fail the others: the group is written again one by one, and
each writer gets its own outcome.

>>> import asyncio
>>> async def commit(writes):
...     print(f"one commit of {len(writes)} writes")
...     return [n * 10 for n in writes]  # what each write did
>>> async def three_at_once():
...     group = GroupCommit(commit)
...     return await asyncio.gather(*(group.write(n) for n in range(3)))
>>> asyncio.run(three_at_once())
one commit of 3 writes
[0, 10, 20]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

W = TypeVar("W")
R = TypeVar("R")


class GroupCommit(Generic[W, R]):
    """Writes committed by ``commit`` (a coroutine committing a sequence of writes in one
    transaction, all or none, and returning what each did) in groups."""

    def __init__(self, commit: Callable[[Sequence[W]], Awaitable[Sequence[R]]]) -> None:
        self._commit = commit
        # Per loop: the writes waiting for the commit its next turn makes.
        self._waiting: WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[tuple[W, asyncio.Future[R]]]
        ] = WeakKeyDictionary()
        self._committing: set[asyncio.Task[None]] = set()

    async def write(self, write: W) -> R:
        """Commit ``write`` with the others of this moment; what it did, once it is
        committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        waiting = self._waiting.get(loop)
        if waiting is None:
            waiting = self._waiting[loop] = []
            # Its first step runs after every callback already scheduled: the requests of
            # this turn reach their writes first.
            task = loop.create_task(self._commit_group(loop))
            self._committing.add(task)
            task.add_done_callback(self._committing.discard)
        waiting.append((write, done))
        return await done

    async def _commit_group(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._waiting.pop(loop)
        try:
            try:
                results = await self._commit([write for write, _ in group])
            except Exception as error:
                if len(group) == 1:
                    _failed(group[0][1], error)
                    return
                for write, done in group:  # one of them failed: each on its own
                    try:
                        [result] = await self._commit([write])
                    except Exception as alone:
                        _failed(done, alone)
                    else:
                        _done(done, result)
                return
            for (_, done), result in zip(group, results, strict=True):
                _done(done, result)
        finally:  # cancelled (the loop is stopping): nobody waits for ever
            for _, done in group:
                if not done.done():
                    done.cancel()


# A writer that was cancelled is not told: its write stands, nobody hears of it.


def _done(done: asyncio.Future[R], result: R) -> None:
    if not done.done():
        done.set_result(result)


def _failed(done: asyncio.Future[R], error: Exception) -> None:
    if not done.done():
        done.set_exception(error)
