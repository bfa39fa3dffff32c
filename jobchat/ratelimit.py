"""A sliding-window rate limiter kept in memory, one window per key.

It guards against a runaway client in one process; it is not a quota shared across processes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from jobchat.errors import RateLimited


class RateLimiter:
    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._hits: dict[object, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: object) -> float:
        """Counts a hit for ``key`` and returns 0.0, or, past the limit, counts nothing and
        returns the seconds until the oldest hit in the window leaves it."""
        return self._hit(key)[0]

    def take(self, key: object) -> Callable[[], None]:
        """Counts a hit for ``key``, or raises ``RateLimited`` (429) with the whole seconds to
        wait as its Retry-After. Returns what takes this hit back (for a send whose transaction
        rolls back: jobchat.db.undo)."""
        seconds, stamp = self._hit(key)
        if seconds:
            error = RateLimited("You are sending too fast; wait a moment and try again.")
            error.retry_after = max(1, math.ceil(seconds))
            raise error
        return lambda: self._give_back(key, stamp)

    def _hit(self, key: object) -> tuple[float, float]:
        """(the wait, 0.0 when counted; the time the hit was counted at)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return hits[0] + self.window - now, now
            hits.append(now)
            return 0.0, now

    def _give_back(self, key: object, stamp: float) -> None:
        with self._lock:
            hits = self._hits.get(key)
            if hits is not None and stamp in hits:  # not left the window meanwhile
                hits.remove(stamp)
