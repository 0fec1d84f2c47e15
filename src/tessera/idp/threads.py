"""Blocking work — a database transaction, an argon2id hash — off the event loop, on the
provider's worker threads: the running loop's default executor, ``Settings.threads`` of them.

asyncio's own executor rather than anyio's worker threads (Starlette's ``run_in_threadpool``):
the hand-off costs about a quarter as much, which counts on a route whose whole work is one
read (UserInfo, measured by ``bench/idp_bench.py``). The request's context variables (its id,
for the log lines: ``logs.REQUEST_ID``) go with the work, as anyio's would.

>>> import asyncio
>>> asyncio.run(in_thread(sum, (1, 2, 3)))
6
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from .store.database import Database, Transaction, WouldWait

P = ParamSpec("P")
T = TypeVar("T")


async def in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` on a worker thread, awaited.

    >>> import asyncio
    >>> asyncio.run(in_thread(max, 3, 7))
    7
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(None, context.run, partial(function, *args, **kwargs))


async def short_write(database: Database, work: Callable[[Transaction], T]) -> T:
    """``work(transaction)``, a few short statements in one write transaction: made here, on
    the event loop, when ``database`` can begin it at once (a SQLite file whose lock nobody
    holds: the hand-off to a worker thread cost a sixth of an SSO hop, measured), else on a
    worker thread in an ordinary transaction. Never for work that hashes a password or waits.

    >>> import asyncio, pathlib, tempfile
    >>> from sqlalchemy import text
    >>> database = Database(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'w.db'}")
    >>> database.upgrade()
    >>> def count(transaction: Transaction) -> int:
    ...     with transaction() as session:
    ...         return int(session.scalar(text("select count(*) from tenants")))
    >>> asyncio.run(short_write(database, count))
    0
    """
    if database.writes_at_once:
        try:
            return work(database.session_at_once)
        except WouldWait:  # raised before anything was done: the worker starts afresh
            pass
    return await in_thread(work, database.session)


def use_threads(count: int) -> None:
    """Give the running loop ``count`` worker threads for :func:`in_thread` (at app start).

    >>> import asyncio
    >>> async def started() -> str:
    ...     use_threads(2)
    ...     return await in_thread(lambda: "on a worker")
    >>> asyncio.run(started())
    'on a worker'
    """
    executor = ThreadPoolExecutor(count, thread_name_prefix="tessera-worker")
    asyncio.get_running_loop().set_default_executor(executor)
