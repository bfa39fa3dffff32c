"""Where a job's blocking work runs: ``in_thread`` is ``asyncio.to_thread`` on the threads of
the worker running the job, when that worker has threads of its own.

The worker inside ``jobchat serve`` shares the process, and so the GIL, with the requests. On
the event loop's default threads, eight jobs at once (the default concurrency) each composing a
notification (the email package's header parsing is most of it) kept several threads busy with
Python whenever a send wanted to run, and each of a send's statements waited for the GIL: at 20
sends and 20 notification emails a second (bench/bench_notify_sends.py --in-server) the sends
took 56-72 ms at p99, against 12 ms with no worker. On one thread of its own (the default,
``JOBCHAT_WORKER_THREADS_IN_SERVER``) the worker still has eight jobs waiting on SMTP and HTTP at
once, on the event loop, but one computing: 35-39 ms, with the same 1,190 emails a minute (two
threads: 44-55 ms). A worker in a process of its own sets none and uses the loop's threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_threads: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "jobchat_job_threads", default=None
)


@contextmanager
def job_threads(executor: Executor | None) -> Iterator[None]:
    """``in_thread`` calls made in this block, and in the tasks it starts, run on
    ``executor`` (None: the event loop's default)."""
    token = _threads.set(executor)
    try:
        yield
    finally:
        _threads.reset(token)


async def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` on the job's threads, in a copy of the current context (as
    ``asyncio.to_thread`` does: the write turn's line, for one, follows the work)."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    return await loop.run_in_executor(_threads.get(), call)
