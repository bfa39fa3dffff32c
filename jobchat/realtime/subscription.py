"""One socket's place in the stream: what it follows, and the frames waiting to go out."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from jobchat.realtime import codes
from jobchat.realtime.frames import StreamEvent, Viewer

BEHIND_REASON = "fell behind: reconnect with ?after=<the last id you received>"


class Subscription:
    """Frames for one socket, in a bounded queue.

    The dispatcher never waits for a socket: it appends and moves on. A socket whose queue is
    full is closed with ``codes.BEHIND`` (the client resumes with ``after``), so one slow
    reader never holds back the others, and memory stays bounded.
    """

    __slots__ = (
        "_frames",
        "_limit",
        "_wake",
        "backlog",
        "closing",
        "conversations",
        "cursor",
        "frames_in",
        "on_close",
        "pending",
        "typing_sent",
        "viewer",
        "window_start",
    )

    def __init__(self, viewer: Viewer, *, limit: int) -> None:
        self.viewer = viewer
        self.conversations: set[int] = set()
        # Events up to this id reached the client another way (the snapshot or the backlog).
        self.cursor = 0
        # Until the snapshot is read, the dispatcher parks every event here.
        self.pending: list[StreamEvent] | None = []
        # Sent before anything live: what a resuming client missed.
        self.backlog: deque[str] = deque()
        self.closing: tuple[int, str] | None = None
        # Client frames: a count per one-second window, and when typing was last passed on.
        self.frames_in = 0
        self.window_start = 0.0
        self.typing_sent: dict[int, tuple[float, bool]] = {}
        # Called once when the subscription starts closing (the hub lets go of it then: a client
        # too slow to take even the close frame must not stay "online" or keep being routed to).
        self.on_close: Callable[[], None] | None = None
        self._frames: deque[str] = deque()
        self._limit = limit
        self._wake = asyncio.Event()

    @property
    def user_id(self) -> int:
        return self.viewer.user_id

    def park(self, event: StreamEvent) -> None:
        assert self.pending is not None
        if len(self.pending) >= self._limit:
            self.close(codes.BEHIND, BEHIND_REASON)
        else:
            self.pending.append(event)

    def push(self, frame: str) -> None:
        if self.closing is not None:
            return
        if len(self._frames) >= self._limit:
            self.close(codes.BEHIND, BEHIND_REASON)
            return
        self._frames.append(frame)
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
            self._frames.clear()
            self.backlog.clear()
            self._wake.set()
            if self.on_close is not None:
                self.on_close()

    async def next_frame(self) -> str | None:
        """The next frame to send, or None once the subscription is closing."""
        while True:
            if self.closing is not None:
                return None
            if self.backlog:
                return self.backlog.popleft()
            if self._frames:
                return self._frames.popleft()
            self._wake.clear()
            await self._wake.wait()

    @property
    def queued(self) -> int:
        return len(self._frames)
