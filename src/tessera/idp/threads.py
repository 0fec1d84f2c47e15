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
