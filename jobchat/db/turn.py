"""This process's queue for the write turn: bounded in time and in length, first come first
served, with the jobs worker ahead of requests.

Request handlers run on a fixed pool of worker threads, and a writer waiting for its turn holds
one. Left unbounded, a stalled database (another process holding SQLite's write lock, a long
PostgreSQL transaction) let waiting writers take every thread, and plain reads, which need no
turn, stalled behind them. So a writer waits at most ``timeout`` seconds, and at most
``max_waiting`` writers wait at once; past either it gets ``WriteBusy`` (503 ``busy``) at once,
having changed nothing.

The jobs worker's bookkeeping (taking jobs, recording them) waits in a line of its own that is
not bounded in length (the worker has a few such writes at a time). In one line with requests
the worker lost to them whenever sends came faster than the database took them: it found the
line full, and no push went out for as long as the sends kept coming. The two lines take turns
when both have writers waiting: after an ahead writer a waiting request goes next, after a
request an ahead writer. Serving the worker's line always first let a few ahead writers that
loop (several jobs recording at once) keep every request waiting until it timed out. A job's
own work (a bulk batch, a scheduled send) writes as an ordinary writer; the worker runs it again
shortly when it finds the database busy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class WriteBusy(Exception):
    """The write could not get its turn in time (or too many were already waiting)."""


# Set by the jobs worker around its own writes (a context variable, so that it follows the
# work into the thread asyncio.to_thread runs it in, and nothing else).
_ahead: ContextVar[bool] = ContextVar("jobchat_write_turn_ahead", default=False)


@contextmanager
def ahead_of_requests() -> Iterator[None]:
    """The writes made in this block wait in the line that goes before requests."""
    token = _ahead.set(True)
    try:
        yield
    finally:
        _ahead.reset(token)


class _Waiter:
    __slots__ = ("given", "thread", "wake")

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.given = False
        self.wake = threading.Lock()
        self.wake.acquire()  # released by the writer that hands the turn on


class WriteTurn:
    def __init__(self, *, timeout: float, max_waiting: int) -> None:
        self.timeout = timeout
        self.max_waiting = max_waiting
        self._mutex = threading.Lock()
        # The turn is handed from one writer to the next, so it is free (None) only while
        # nobody waits. Reentrant: a writer that holds it may open another write inside it.
        self._owner: int | None = None
        self._depth = 0
        self._requests: deque[_Waiter] = deque()
        self._worker: deque[_Waiter] = deque()
        # Whether the holder came from the worker's line: the next turn goes to the other line.
        self._owner_ahead = False

    @property
    def waiting(self) -> int:
        return len(self._requests) + len(self._worker)

    def acquire(self) -> float:
        """Take the turn; returns the deadline (``time.monotonic()``) by which the database's
        own lock must be had too, so that the whole wait stays within ``timeout``."""
        deadline = time.monotonic() + self.timeout
        me = threading.get_ident()
        ahead = _ahead.get()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return deadline
            if self._owner is None:
                self._owner, self._depth, self._owner_ahead = me, 1, ahead
                return deadline  # free: the usual case
            line = self._worker if ahead else self._requests
            if not ahead and len(line) >= self.max_waiting:
                raise WriteBusy(f"{len(line)} writes are already waiting for their turn")
            waiter = _Waiter(me)
            line.append(waiter)
        if waiter.wake.acquire(timeout=self.timeout):
            return deadline
        with self._mutex:
            if waiter.given:
                return deadline  # handed over just as the wait ran out: ours all the same
            line.remove(waiter)
        raise WriteBusy(f"no turn to write within {self.timeout:g} s")

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("the write turn is released by a thread that does not hold it")
            self._depth -= 1
            if self._depth:
                return
            if self._worker and self._requests:
                ahead = not self._owner_ahead  # both lines waiting: they take turns
            elif self._worker or self._requests:
                ahead = bool(self._worker)
            else:
                self._owner = None
                return
            waiter = (self._worker if ahead else self._requests).popleft()
            waiter.given = True
            self._owner, self._depth, self._owner_ahead = waiter.thread, 1, ahead
            waiter.wake.release()


class WriteSlots:
    """Room for writers that need no turn (PostgreSQL sends into different conversations, see
    ``Database.write``): at most ``slots`` write at once, at most ``max_waiting`` more wait for
    a slot (first come, roughly first served), each at most ``timeout`` seconds; past either,
    ``WriteBusy`` at once, having changed nothing.

    Each writer holds a pooled connection while it works or waits for a database lock, and a
    thread while it waits here: unbounded, a stalled database (a writer holding the lock)
    took every connection and thread that reads needed, as the turn's waiters once did.
    """

    def __init__(self, slots: int, *, timeout: float, max_waiting: int) -> None:
        self.slots = slots
        self.timeout = timeout
        self.max_waiting = max_waiting
        self._free = threading.Semaphore(slots)
        self._mutex = threading.Lock()
        self._waiting = 0

    def acquire(self) -> float:
        """Take a slot; returns the deadline by which the database's locks must be had too."""
        deadline = time.monotonic() + self.timeout
        if self._free.acquire(blocking=False):
            return deadline  # the usual case
        with self._mutex:
            if self._waiting >= self.max_waiting:
                raise WriteBusy(f"{self._waiting} writes are already waiting for room")
            self._waiting += 1
        try:
            got = self._free.acquire(timeout=self.timeout)
        finally:
            with self._mutex:
                self._waiting -= 1
        if not got:
            raise WriteBusy(f"no room to write within {self.timeout:g} s")
        return deadline

    def release(self) -> None:
        self._free.release()
