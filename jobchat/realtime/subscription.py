"""One socket's place in the stream: what it follows, and the frames waiting to go out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jobchat.realtime import codes
from jobchat.realtime.frames import StreamEvent, Viewer

BEHIND_REASON = "fell behind: reconnect with ?after=<the last id you received>"


class Subscription:
    """Frames for one socket, in a bounded queue.

    The dispatcher never waits for a socket: it appends and moves on. A socket whose queue is
    full is closed with ``codes.BEHIND`` (the client resumes with ``after``), so one slow
    reader never holds back the others, and memory stays bounded.

    Kept small, since a server holds thousands for hours: plain lists rather than deques (an
    empty deque is 760 bytes), and a future made only while the writer waits rather than an
    ``asyncio.Event`` (another deque). The writer takes the waiting frames in one go.
    """

    __slots__ = (
        "_frames",
        "_in_hand",
        "_limit",
        "_waiter",
        "backlog",
        "beat",
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
        self.backlog: list[str] = []
        self.closing: tuple[int, str] | None = None
        # Client frames: a count per one-second window, and when typing was last passed on.
        self.frames_in = 0
        self.window_start = 0.0
        self.typing_sent: dict[int, tuple[float, bool]] = {}
        # Called once when the subscription starts closing (the hub lets go of it then: a client
        # too slow to take even the close frame must not stay "online" or keep being routed to).
        self.on_close: Callable[[], None] | None = None
        # The hub's heartbeat slot for this socket.
        self.beat = 0
        self._frames: list[str] = []
        # Live frames the writer has taken (``next_frames``) but not yet begun to send: they
        # still count against the limit, as if they were waiting in the queue.
        self._in_hand = 0
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None

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
        if len(self._frames) + self._in_hand >= self._limit:
            self.close(codes.BEHIND, BEHIND_REASON)
            return
        self._frames.append(frame)
        self._wake()

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
            self._frames = []
            self.backlog = []
            self._wake()
            if self.on_close is not None:
                self.on_close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_frames(self) -> list[str] | None:
        """The frames to send next, in order (the backlog first), or None once the
        subscription is closing."""
        while True:
            if self.closing is not None:
                return None
            if self.backlog:
                frames, self.backlog = self.backlog, []
                self._in_hand = 0  # the backlog is not held to the limit
                return frames
            if self._frames:
                frames, self._frames = self._frames, []
                self._in_hand = len(frames)
                return frames
            # Waited for here, not in a coroutine of its own: the writer idles here for hours.
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def sending(self) -> None:
        """The writer begins to send one more of the frames it took (it leaves the queue)."""
        if self._in_hand:
            self._in_hand -= 1

    async def next_frame(self) -> str | None:
        """One frame at a time, as ``next_frames`` gives them (the socket's writer takes them
        in batches; this is for callers that read the stream in process)."""
        while True:
            if self.closing is not None:
                return None
            if self.backlog:
                return self.backlog.pop(0)
            if self._frames:
                return self._frames.pop(0)
            await self._wait()

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    @property
    def queued(self) -> int:
        return len(self._frames)
