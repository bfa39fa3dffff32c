"""The threads the requests answered before FastAPI's routing run their blocking work on
(``jobchat.messages.fast_send``, ``jobchat.fast_reads``).

Starlette's ``run_in_threadpool`` goes through anyio's ``to_thread``: a capacity limiter, a
cancel scope, the async backend looked up and a ``queue.Queue`` with its condition variable, each
call: 28-58 us of CPU a hop where the event loop's own ``run_in_executor`` on a
``ThreadPoolExecutor`` costs 11-24 (bench/bench_hop.py, on uvloop), on every send, inbox page
and history page; 2% of a send's instructions (bench/bench_instructions.py --sends). The pool
is as large as anyio's limiter for the same work (``jobchat.app``: the reads' 40 threads plus
one for each writer that may hold one), so the requests it runs are bounded as they were; the
other routes keep anyio's.

As with anyio's ``to_thread``, work that has begun runs to its end: a request cancelled meanwhile
(a server stopping) waits for it before it lets the cancellation through, so nothing is half
done behind a stopped request.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# anyio's default limiter: what the threads for reads number (jobchat.app adds the writers').
READ_THREADS = 40


class RequestThreads:
    """A pool of ``size`` threads, started on first use and after each ``close()``."""

    def __init__(self, size: int = READ_THREADS) -> None:
        self.size = size
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def resize(self, size: int) -> None:
        """Threads from the next start on (``jobchat.app`` sizes it when the app starts)."""
        self.size = size

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` on one of the threads, in a copy of the caller's context (the request's
        id and client address, which logs and the audit trail read, as anyio's to_thread
        carries them); its result or its exception."""
        started = self._executor().submit(contextvars.copy_context().run, work)
        try:
            return await asyncio.wrap_future(started)
        except asyncio.CancelledError:
            await _finished(started)
            raise

    def close(self) -> None:
        """Wait for the work under way to end and let the threads go."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _executor(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="jobchat-request")
            return self._pool


async def _finished(started: Future[T]) -> None:
    """Wait, through any further cancellation, until ``started`` has ended (cancelled before it
    began, or run to its end)."""
    while not started.done():
        try:
            await asyncio.shield(asyncio.wrap_future(started))
        except asyncio.CancelledError:
            continue
        except Exception:
            # Its failure is the answer of a request that is going away: nobody to tell.
            return
