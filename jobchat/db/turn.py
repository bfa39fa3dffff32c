"""This process's queue for the write turn: bounded in time and in length.

Request handlers run on a fixed pool of worker threads, and a writer waiting for its turn holds
one. Left unbounded, a stalled database (another process holding SQLite's write lock, a long
PostgreSQL transaction) let waiting writers take every thread, and plain reads, which need no
turn, stalled behind them. So a writer waits at most ``timeout`` seconds, and at most
``max_waiting`` writers wait at once; past either it gets ``WriteBusy`` (503 ``busy``) at once,
having changed nothing.
"""

from __future__ import annotations

import threading
import time


class WriteBusy(Exception):
    """The write could not get its turn in time (or too many were already waiting)."""


class WriteTurn:
    def __init__(self, *, timeout: float, max_waiting: int) -> None:
        self.timeout = timeout
        self.max_waiting = max_waiting
        # Reentrant: a writer that already holds the turn may open another write inside it.
        self._lock = threading.RLock()
        self._count = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    def acquire(self) -> float:
        """Take the turn; returns the deadline (``time.monotonic()``) by which the database's
        own lock must be had too, so that the whole wait stays within ``timeout``."""
        deadline = time.monotonic() + self.timeout
        if self._lock.acquire(blocking=False):
            return deadline  # free (the usual case), or already ours
        with self._count:
            if self._waiting >= self.max_waiting:
                raise WriteBusy(f"{self._waiting} writes are already waiting for their turn")
            self._waiting += 1
        try:
            got = self._lock.acquire(timeout=self.timeout)
        finally:
            with self._count:
                self._waiting -= 1
        if not got:
            raise WriteBusy(f"no turn to write within {self.timeout:g} s")
        return deadline

    def release(self) -> None:
        self._lock.release()
