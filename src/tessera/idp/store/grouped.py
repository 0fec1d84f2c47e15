"""Work that requests on one event loop reach in the same turn of the loop, done together: the
one-statement writes of that moment committed in one transaction (group commit: a
client_credentials grant's audit row, an SSO hop's code), the one-row reads of that moment
sent to PostgreSQL in one round trip (introspection's and UserInfo's revocation reads, an SSO
hop's session).

A commit has a fixed cost beside its statements: SQLite writes every page it changed to its
log (a row of the audit table changes five: the table's and four indexes'), PostgreSQL
answers one round trip. A round trip has one too: a system call to send, a wake-up and one to
receive, on both sides — 23 µs of CPU for a one-row read sent alone, 6 µs each for 32 sent
together (libpq, measured). Requests that reach their work in the same turn share it: the
first of them schedules it, the others join until it starts. Nobody waits for a timer; a
write is committed, a read answered, when its ``await`` returns, as it would be alone.

One item that fails does not fail the others: the group is run again one by one, and each
caller gets its own outcome. An error that is the group's rather than an item's (``fails_all``:
the database away, its connection lost — a commit's outcome then unknown) is every caller's,
without a second try. A caller that is cancelled is not told: its item stands.

>>> import asyncio
>>> async def commit(writes):
...     print(f"one commit of {len(writes)} writes")
...     return [n * 10 for n in writes]  # what each write did
>>> async def three_at_once():
...     group = Grouped(commit)
...     return await asyncio.gather(*(group.run(n) for n in range(3)))
>>> asyncio.run(three_at_once())
one commit of 3 writes
[0, 10, 20]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

T = TypeVar("T")
R = TypeVar("R")


class Grouped(Generic[T, R]):
    """Items run by ``run_group`` (a coroutine running a sequence of items together, all or
    none, and returning what each gave) in groups of the same turn of a loop. An error of a
    ``fails_all`` type fails every item of its group as it is."""

    def __init__(
        self,
        run_group: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        fails_all: tuple[type[Exception], ...] = (),
    ) -> None:
        self._run_group = run_group
        self._fails_all = fails_all
        # Per loop: the items waiting for the group its next turn runs.
        self._waiting: WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[tuple[T, asyncio.Future[R]]]
        ] = WeakKeyDictionary()
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, item: T) -> R:
        """Run ``item`` with the others of this moment; what it gave, once it is done."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        waiting = self._waiting.get(loop)
        if waiting is None:
            waiting = self._waiting[loop] = []
            # Its first step runs after every callback already scheduled: the requests of
            # this turn reach their items first.
            task = loop.create_task(self._run(loop))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        waiting.append((item, done))
        return await done

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._waiting.pop(loop)
        try:
            try:
                results = await self._run_group([item for item, _ in group])
            except Exception as error:
                if len(group) == 1 or isinstance(error, self._fails_all):
                    for _, done in group:
                        _failed(done, error)
                    return
                for item, done in group:  # one of them failed: each on its own
                    try:
                        [result] = await self._run_group([item])
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


def _done(done: asyncio.Future[R], result: R) -> None:
    if not done.done():
        done.set_result(result)


def _failed(done: asyncio.Future[R], error: Exception) -> None:
    if not done.done():
        done.set_exception(error)
