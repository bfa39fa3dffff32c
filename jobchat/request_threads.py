"""The threads the requests answered before FastAPI's routing run their blocking work on
(``jobchat.messages.fast_send``, ``jobchat.fast_reads``).

Starlette's ``run_in_threadpool`` goes through anyio's ``to_thread``: a capacity limiter, a
cancel scope, the async backend looked up and a ``queue.Queue`` with its condition variable, each
call. The loop's ``run_in_executor`` on a ``ThreadPoolExecutor`` costs less, but still makes a
``concurrent.futures.Future`` (a condition variable and its lock) and chains an asyncio future
to it both ways, and the pool checks a semaphore (a condition variable again) on each submit and
releases it after each item. Here a hop is what it needs to be: the job goes into a
``SimpleQueue`` that idle threads wait on, and its thread hands the outcome back to the loop
with one ``call_soon_threadsafe``, where it is set on a plain asyncio future
(bench/bench_hop.py measures the three ways). That hop is on every send, inbox page and history
page. The pool is as large as anyio's limiter for the same work (``jobchat.app``: the reads' 40
threads plus one for each writer that may hold one), so the requests it runs are bounded as they
were; the other routes keep anyio's.

As with anyio's ``to_thread``, work that has begun runs to its end: a request cancelled meanwhile
(a server stopping) waits for it before it lets the cancellation through, so nothing is half
done behind a stopped request. Work not yet begun when its request is cancelled never begins.
The threads are daemons, so a pool nobody closed never holds the interpreter at exit; the app
closes its pool at shutdown, which waits for the work under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# anyio's default limiter: what the threads for reads number (jobchat.app adds the writers').
READ_THREADS = 40


class _Job(Generic[T]):
    """One request's work, from the loop to a thread and its outcome back."""

    __slots__ = (
        "context",
        "error",
        "future",
        "loop",
        "result",
        "settled",
        "state",
        "waiter",
        "work",
    )

    def __init__(self, work: Callable[[], T], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        # The request's context (its id and client address, which logs and the audit trail
        # read), copied as anyio's to_thread carries it.
        self.context = contextvars.copy_context()
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()
        # _QUEUED until a thread begins it (_RUNNING) or its request gives it up first
        # (_ABANDONED): changed under the pool's lock, as both sides may try at once.
        self.state = _QUEUED
        self.result: T | None = None
        self.error: BaseException | None = None
        # On the loop: whether the outcome has arrived, and who waits for it after a cancel.
        self.settled = False
        self.waiter: asyncio.Future[None] | None = None

    def settle(self) -> None:
        """On the loop, once the work has run: its outcome to the request, if still there."""
        self.settled = True
        if not self.future.done():  # a cancelled request's future is done already
            if self.error is not None:
                self.future.set_exception(self.error)
            else:
                self.future.set_result(self.result)  # type: ignore[arg-type]  # T when no error
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


_QUEUED, _RUNNING, _ABANDONED = 0, 1, 2


class _Crew:
    """The threads started since the last ``close()``, and the queue they take jobs from."""

    __slots__ = ("idle", "jobs", "threads")

    def __init__(self) -> None:
        self.jobs: SimpleQueue[_Job[Any] | None] = SimpleQueue()
        self.threads: list[threading.Thread] = []
        # Threads waiting for a job that no job queued since has counted on (under the lock).
        self.idle = 0


class RequestThreads:
    """A pool of ``size`` threads, started as work needs them, and again after ``close()``."""

    def __init__(self, size: int = READ_THREADS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._crew = _Crew()

    def resize(self, size: int) -> None:
        """Threads from the next start on (``jobchat.app`` sizes it when the app starts)."""
        self.size = size

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` on one of the threads, in a copy of the caller's context; its result or
        its exception."""
        job = _Job(work, asyncio.get_running_loop())
        self._submit(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            await self._finished(job)
            raise

    def close(self) -> None:
        """Wait for the work under way (and queued) to end and let the threads go; the next
        ``run`` starts new ones."""
        with self._lock:
            crew, self._crew = self._crew, _Crew()
        for _ in crew.threads:
            crew.jobs.put(None)  # after every job queued: each thread ends when it meets one
        for thread in crew.threads:
            thread.join()

    def _submit(self, job: _Job[Any]) -> None:
        with self._lock:
            crew = self._crew
            if crew.idle:
                crew.idle -= 1  # that thread is this job's
            elif len(crew.threads) < self.size:
                thread = threading.Thread(
                    target=self._serve,
                    args=(crew,),
                    name=f"jobchat-request_{len(crew.threads)}",
                    daemon=True,
                )
                # Started before the job is queued: a thread that cannot start (the process
                # out of threads) fails the request with nothing left behind to run later.
                thread.start()
                crew.threads.append(thread)
            # else it waits for a thread to be free. Queued under the lock: a close() after it
            # queues its threads' ends behind it.
            crew.jobs.put(job)

    def _serve(self, crew: _Crew) -> None:
        """A thread's life: run jobs until told to end."""
        while True:
            job = crew.jobs.get()
            if job is None:
                return
            with self._lock:
                begin = job.state == _QUEUED
                if begin:
                    job.state = _RUNNING
            if begin:
                try:
                    job.result = job.context.run(job.work)
                except BaseException as exc:  # raised to the request, as the thread's own
                    # (an asyncio future refuses only StopIteration, as a coroutine would).
                    job.error = RuntimeError(exc) if isinstance(exc, StopIteration) else exc
            # Free before the request hears back: the request's next work, if it has more,
            # finds this thread rather than starting another.
            with self._lock:
                crew.idle += 1
            if begin:
                # A loop that has closed has nobody waiting for it.
                with contextlib.suppress(RuntimeError):
                    job.loop.call_soon_threadsafe(job.settle)
            del job  # its outcome is the loop's now

    async def _finished(self, job: _Job[Any]) -> None:
        """A cancelled request's job: given up if it has not begun, else waited for (through
        any further cancellation) until it has run to its end."""
        with self._lock:
            if job.state == _QUEUED:
                job.state = _ABANDONED
                return
        if job.settled:
            return
        job.waiter = waiter = job.loop.create_future()
        while not waiter.done():
            try:
                await asyncio.shield(waiter)
            except asyncio.CancelledError:
                continue
