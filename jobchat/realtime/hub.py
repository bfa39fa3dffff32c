"""The hub: one per server process. It follows the event table and routes each event to the
sockets of the users who may see it.

Why it reads the table instead of passing events around: the table is the one ordered,
durable copy. A process that learns late (a lost Redis message, a restart) reads what it
missed, and a client that resumes reads exactly what it would have got. The bus only says
*when* to read. One shortcut: the events a commit in this process just wrote are handed over
as they were stored, and routed without a read when they follow straight on from what the hub
has routed; anything else between, and it reads.

All routing happens on the event loop, one event at a time, in id order; the database is read
on worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from jobchat.access import may_receive
from jobchat.auth.cache import TokenCache
from jobchat.auth.queries import credential_live
from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.conversations.queries import member_refs
from jobchat.db.engine import Database
from jobchat.db.failures import describe, is_outage, retry_wait
from jobchat.events.actions import do_prune_events
from jobchat.events.models import EventType
from jobchat.events.queries import EventRecord, EventRow, events_after, latest_event_id
from jobchat.events.sequencer import sequence_stranded
from jobchat.realtime import codes
from jobchat.realtime.bus import Bus
from jobchat.realtime.frames import StreamEvent, Viewer, ephemeral, error_frame
from jobchat.realtime.presence import Presence
from jobchat.realtime.start import Start, follow, start_stream, stream_event
from jobchat.realtime.subscription import Subscription
from jobchat.stopping import stop_tasks

log = logging.getLogger(__name__)

BATCH = 500
RESTART_REASON = "server restarting: reconnect with ?after=<the last id you received>"
# Typing is passed on at most this often per conversation, unless it stops.
TYPING_EVERY_SECONDS = 2.0
# More client frames than this in a second closes the socket.
CLIENT_FRAMES_PER_SECOND = 20
# How long a presence question waits for the presence store before it is answered from this
# process's own sockets.
PRESENCE_ANSWER_SECONDS = 2.0
# While the database is away the table is read again after a growing wait, up to this (or the
# poll interval, if longer); a commit in this process, or a nudge from another, cuts it short.
MAX_BACKOFF_SECONDS = 10.0
# How often a slot of sockets gets its heartbeat (see Hub.__init__).
HEARTBEAT_TICK_SECONDS = 0.1
ACCESS_ENDED_REASON = "your access ended (token revoked or account deactivated): sign in again"


class Hub:
    def __init__(
        self,
        *,
        db: Database,
        bus: Bus,
        presence: Presence,
        settings: Settings,
        clock: Clock,
        tokens: TokenCache | None = None,
    ) -> None:
        self.db = db
        # This process's memory of user tokens, which a revocation must clear at once.
        self.tokens = tokens
        self.bus = bus
        self.presence = presence
        self.settings = settings
        self.clock = clock
        self.position = 0
        self.running = False
        # The sockets following each conversation. Lists, not sets: a conversation has a few
        # sockets, and a set of eleven takes 1.3 KB against a list's 150 bytes; with a
        # conversation per candidate that was most of what the hub kept per socket.
        self._by_conv: dict[int, list[Subscription]] = {}
        self._by_user: dict[int, set[Subscription]] = {}
        self._pending: set[Subscription] = set()
        # Heartbeats go out a slot at a time, every HEARTBEAT_TICK_SECONDS, each socket in one
        # slot (taken in turn as they join), so that each still gets one every
        # JOBCHAT_STREAM_HEARTBEAT_SECONDS. All at once, 10,000 sockets woke and wrote together:
        # the event loop was busy for a third of a second every 25 s, and every frame of every
        # message waited behind them.
        slots = max(1, round(settings.stream_heartbeat_seconds / HEARTBEAT_TICK_SECONDS))
        self._beats: list[list[Subscription]] = [[] for _ in range(slots)]
        self._beat_next = 0  # the slot the next socket to join takes
        self._beat_due = 0  # the slot whose heartbeats go next
        self._wake = asyncio.Event()
        self._catching_up = asyncio.Lock()
        self._reader: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Users this process could not mark offline in the presence store (it was away): done
        # at the next refresh, unless they are back by then.
        self._offline_pending: set[int] = set()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # One thread reads the table, so reads happen in order and never queue behind requests.
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="jobchat-stream")
        self.position = await self._on_reader(self._read_head)
        await self.bus.start(self.wake, self._on_ephemeral, self._bus_back)
        self.db.on_events_committed.append(self._committed)
        self._tasks = [
            self._spawn(self._follow_table(), "follow"),
            self._spawn(
                self._every(
                    self.settings.stream_heartbeat_seconds / len(self._beats), self._heartbeat
                ),
                "hb",
            ),
            self._spawn(
                self._every(self.settings.presence_ttl_seconds / 3, self._refresh_presence), "pr"
            ),
            self._spawn(self._every(600, self._prune), "prune"),
        ]
        self.running = True

    async def stop(self) -> None:
        """Close every socket with "server restarting", then stop following the table."""
        if not self.running:
            return
        self.running = False
        await self.close_all()
        with contextlib.suppress(ValueError):
            self.db.on_events_committed.remove(self._committed)
        await stop_tasks(self._tasks)
        await self.bus.stop()
        if self._reader is not None:
            # Waits for a read in progress: once stop returns, the hub holds no connection.
            self._reader.shutdown(wait=True, cancel_futures=True)
            self._reader = None

    async def close_all(self, timeout: float = 2.0) -> None:
        subs = self._all_subscriptions()
        for sub in subs:
            sub.close(codes.SERVER_RESTART, RESTART_REASON)
        deadline = time.monotonic() + timeout
        while self._all_subscriptions() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _all_subscriptions(self) -> set[Subscription]:
        subs = set(self._pending)
        for user_subs in self._by_user.values():
            subs |= user_subs
        return subs

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"jobchat-hub-{name}")
        # The loop keeps only a weak reference to a task: hold it until it is done.
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _every(self, seconds: float, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception as exc:
                if is_outage(exc):
                    log.warning("periodic stream job failed (%s)", describe(exc))
                else:
                    log.exception("periodic stream job failed")

    async def _on_reader(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._reader is not None, "the hub is not running"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, fn, *args)

    # --- following the event table ------------------------------------------------------------

    def _committed(self, written: Sequence[EventRecord | EventRow] | None) -> None:
        """A transaction with events committed (called on the writing thread), with its events
        when they are known: on SQLite as ``emit`` wrote them, on PostgreSQL as the writer
        numbered them."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._local_commit, written)

    def _local_commit(self, written: Sequence[EventRecord | EventRow] | None) -> None:
        self.bus.wake_others()
        if written is None or not self._take(written):
            self._wake.set()

    def _take(self, written: Sequence[EventRecord | EventRow]) -> bool:
        """Dispatch the events this process just committed, as the table would have given them,
        if they follow on from ``position``; False if something else came between (another
        process's events, or some not yet read), which only a read of the table can fill.

        Reading back what was just written was a fifth of a send's CPU (bench/bench_send.py).
        On SQLite commits call this in their order, and ids follow commit order; on PostgreSQL
        ids become visible in order (``jobchat.events.sequencer``), so an event that follows
        on from ``position`` has nothing before it still to come, whichever commit told first.
        """
        for row in written:
            if row.id <= self.position:
                continue  # read from the table already
            if row.id != self.position + 1:
                return False
            self._dispatch(stream_event(row))
        return True

    def wake(self) -> None:
        self._wake.set()

    async def _follow_table(self) -> None:
        poll = self.settings.stream_poll_seconds
        wait, failures = poll, 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            try:
                await self.catch_up()
            except Exception as exc:
                # The database is away (or busy): keep trying, less and less often, and carry
                # on from ``position`` when it answers, so no event is skipped.
                failures += 1
                wait = retry_wait(poll, failures, MAX_BACKOFF_SECONDS)
                if not is_outage(exc):
                    log.exception("reading new events failed; retrying in %.1f s", wait)
                elif failures == 1:
                    log.warning("reading new events failed (%s); retrying", describe(exc))
                continue
            if failures:
                log.info("reading new events again after %d failed attempts", failures)
            wait, failures = poll, 0

    async def catch_up(self) -> None:
        """Dispatch every event committed after ``position``, each exactly once."""
        async with self._catching_up:
            while True:
                rows = await self._on_reader(self._read_after, self.position)
                for row in rows:
                    # Those a commit handed over while the table was read are there already.
                    if row.id > self.position:
                        self._dispatch(stream_event(row))
                if len(rows) < BATCH:
                    return

    def _read_head(self) -> int:
        with self.db.read() as session:
            return latest_event_id(session)

    def _read_after(self, position: int) -> Any:
        with self.db.read() as session:
            rows = events_after(session, position, limit=BATCH)
        if not rows and not self.db.is_sqlite and sequence_stranded(self.db.engine):
            # A writer died between its commit and numbering its events (PostgreSQL): numbered
            # now; this hub and the others read them as after any commit.
            self._committed(None)
        return rows

    def _dispatch(self, event: StreamEvent) -> None:
        self.position = event.id
        for sub in self._pending:
            sub.park(event)
        if event.type == EventType.access_revoked and event.user_id is not None:
            # Usually known already from the bus; this is the copy that cannot get lost.
            self.revoke(event.user_id, event.data.get("credential"))
        conv = event.conversation_id
        if conv is None:
            return
        if event.type == EventType.member_added and event.user_id is not None:
            for sub in self._by_user.get(event.user_id, ()):
                self._join(sub, conv)
        for sub in self._by_conv.get(conv, ()):
            if event.id > sub.cursor and may_receive(event.type, event.user_id, sub.user_id):
                sub.push(event.frame_for(sub.viewer))
        if event.type == EventType.member_removed and event.user_id is not None:
            for sub in list(self._by_user.get(event.user_id, ())):
                self._leave(sub, conv)

    def _join(self, sub: Subscription, conv: int) -> None:
        sub.conversations.add(conv)
        self._follow(sub, conv)

    def _follow(self, sub: Subscription, conv: int) -> None:
        subs = self._by_conv.get(conv)
        if subs is None:
            self._by_conv[conv] = [sub]
        elif sub not in subs:
            subs.append(sub)

    def _leave(self, sub: Subscription, conv: int) -> None:
        sub.conversations.discard(conv)
        subs = self._by_conv.get(conv)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._by_conv[conv]

    # --- sockets ----------------------------------------------------------------------------

    async def subscribe(self, viewer: Viewer, after: int | None) -> Subscription:
        """Join the stream; raises ``start.ResyncNeeded`` when ``after`` cannot be resumed.

        The subscription is registered before the snapshot is read, and the dispatcher parks
        every event for it meanwhile; the snapshot (taken later) covers what was dispatched
        before registration, and the parked events after it are applied on top. Nothing falls
        between the two, and nothing is sent twice.
        """
        sub = Subscription(viewer, limit=self.settings.stream_queue_frames)
        loop = asyncio.get_running_loop()
        # Deferred: a close can happen in the middle of routing an event to this very set.
        sub.on_close = lambda: self._release_soon(loop, sub)
        self._pending.add(sub)
        try:
            start, live = await asyncio.to_thread(self._start, viewer, after)
        except BaseException:
            self._pending.discard(sub)
            raise
        self._pending.discard(sub)
        if not live:
            # Revoked between the handshake's check and joining: no access.revoked event
            # could reach this subscription, so the check is made again now that it is in.
            sub.close(codes.ACCESS_ENDED, ACCESS_ENDED_REASON)
        if sub.closing is not None:
            return sub
        parked, sub.pending = sub.pending or [], None
        sub.cursor = start.head
        sub.conversations = set(start.conversations)
        sub.backlog.extend(event.frame_for(viewer) for event in start.backlog)
        sub.backlog.append(
            ephemeral(
                "ready",
                None,
                {"head": start.head, "resumed_after": after, "replayed": len(start.backlog)},
            )
        )
        for event in parked:
            if event.id > start.head and follow(event, viewer.user_id, sub.conversations):
                sub.push(event.frame_for(viewer))
        for conv in sub.conversations:
            self._follow(sub, conv)
        first = viewer.user_id not in self._by_user
        self._by_user.setdefault(viewer.user_id, set()).add(sub)
        sub.beat = self._beat_next
        self._beat_next = (self._beat_next + 1) % len(self._beats)
        self._beats[sub.beat].append(sub)
        if first:
            self._spawn(self._announce(viewer, sorted(sub.conversations), online=True), "presence")
        return sub

    def _start(self, viewer: Viewer, after: int | None) -> tuple[Start, bool]:
        start = start_stream(
            self.db, viewer.user_id, after, max_backlog=self.settings.stream_max_backlog
        )
        if viewer.credential_id is None:
            return start, True
        with self.db.read() as session:
            return start, credential_live(session, viewer.credential_id, self.clock.now())

    # --- revocations ----------------------------------------------------------------------------

    async def announce_revoked(self, user_id: int, credential_id: int | None) -> None:
        """Tell every process (this one first) that a credential of ``user_id`` was revoked
        (``credential_id``), or all of them (None: the person was deactivated). Returns once
        the others have been sent the news."""
        await self.bus.broadcast(
            {"kind": "revoked", "user_id": user_id, "credential": credential_id}
        )

    def revoke(self, user_id: int, credential_id: int | None) -> None:
        """Forget the user's cached tokens and close their sockets opened with that credential
        (all of them for None). Harmless when repeated: the bus and the event both say it."""
        if self.tokens is not None:
            self.tokens.forget_user(user_id)
        subs = self._pending | self._by_user.get(user_id, set())
        for sub in list(subs):
            if sub.user_id == user_id and credential_id in (None, sub.viewer.credential_id):
                sub.close(codes.ACCESS_ENDED, ACCESS_ENDED_REASON)

    def _release_soon(self, loop: asyncio.AbstractEventLoop, sub: Subscription) -> None:
        loop.call_soon(self.unsubscribe, sub)

    def unsubscribe(self, sub: Subscription) -> None:
        self._pending.discard(sub)
        conversations = sorted(sub.conversations)
        for conv in conversations:
            self._leave(sub, conv)
        user_subs = self._by_user.get(sub.user_id)
        if user_subs is None or sub not in user_subs:
            return
        user_subs.discard(sub)
        self._beats[sub.beat].remove(sub)
        if not user_subs:
            del self._by_user[sub.user_id]
            if self.running:
                self._spawn(self._announce(sub.viewer, conversations, online=False), "presence")

    @property
    def socket_count(self) -> int:
        return sum(len(subs) for subs in self._by_user.values())

    # --- what clients send ------------------------------------------------------------------

    def receive(self, sub: Subscription, text: str) -> None:
        """One frame from the client: typing, a presence question, or a ping."""
        now = time.monotonic()
        if now - sub.window_start >= 1.0:
            sub.window_start, sub.frames_in = now, 0
        sub.frames_in += 1
        if sub.frames_in > CLIENT_FRAMES_PER_SECOND:
            sub.close(codes.TOO_MANY_FRAMES, "too many frames")
            return
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            sub.push(error_frame("invalid_frame", 'Send a JSON object with a "type".'))
            return
        kind = frame["type"]
        if kind == "ping":
            sub.push(ephemeral("pong", None, {"head": self.position}))
            return
        if kind not in ("typing", "presence"):
            sub.push(error_frame("unknown_type", 'The type is "typing", "presence" or "ping".'))
            return
        conv = frame.get("conversation")
        if type(conv) is not int or conv not in sub.conversations:
            sub.push(error_frame("not_found", "There is no conversation with that id."))
            return
        if kind == "presence":
            self._spawn(self._answer_presence(sub, conv), "presence-q")
            return
        typing = frame.get("typing", True)
        if not isinstance(typing, bool):
            sub.push(error_frame("invalid_frame", '"typing" is true or false.'))
            return
        last_at, last_state = sub.typing_sent.get(conv, (0.0, False))
        if typing == last_state and (not typing or now - last_at < TYPING_EVERY_SECONDS):
            return
        sub.typing_sent[conv] = (now, typing)
        self.bus.send_ephemeral(
            {
                "kind": "typing",
                "conversation": conv,
                "user_id": sub.user_id,
                "user": sub.viewer.public(),
                "typing": typing,
            }
        )

    async def _answer_presence(self, sub: Subscription, conv: int) -> None:
        try:
            members = await asyncio.to_thread(self._members, conv)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("presence question not answered: %s", describe(exc))
            sub.push(error_frame("unavailable", "The database cannot be reached; ask again."))
            return
        online = await self._online([uid for uid, _ in members])
        ext_ids = sorted(ext for uid, ext in members if uid in online)
        sub.push(ephemeral("presence", conv, {"online": ext_ids}))

    async def _online(self, user_ids: list[int]) -> set[int]:
        """Who of these is online anywhere; while the presence store is away (a Redis outage),
        who is online here: a partial answer beats none."""
        # Whoever has a socket on this process is online, whether or not the store has heard
        # yet: their announcement is a task of its own, which may still be on its way.
        here = {uid for uid in user_ids if uid in self._by_user}
        try:
            anywhere = await asyncio.wait_for(
                self.presence.online(user_ids), PRESENCE_ANSWER_SECONDS
            )
        except Exception as exc:
            log.warning("presence store unavailable (%s): answering from this process", exc)
            return here
        return anywhere | here

    def _members(self, conv: int) -> list[tuple[int, str]]:
        with self.db.read() as session:
            return member_refs(session, conv)

    # --- ephemeral messages from any process --------------------------------------------------

    async def _announce(self, viewer: Viewer, conversations: list[int], *, online: bool) -> None:
        """Tell the user's fellow members, on every process, that they came or went."""
        uid = viewer.user_id
        try:
            if online:
                self._offline_pending.discard(uid)
                elsewhere = await self.presence.online([uid])
                await self.presence.mark_online([uid])
                if elsewhere:
                    return  # already online on another process: nothing new to tell
            else:
                try:
                    await self.presence.mark_offline(uid)
                except Exception:
                    self._offline_pending.add(uid)
                    raise
                if uid in self._by_user or await self.presence.online([uid]):
                    return  # back already, or still on another process
        except Exception as exc:
            # The presence store is away (a Redis outage): tell what this process knows. The
            # store is brought up to date by the next refresh once it is back.
            log.warning("presence store unavailable (%s): announcing from this process", exc)
            if not online and uid in self._by_user:
                return
        self.bus.send_ephemeral(
            {
                "kind": "presence",
                "user_id": uid,
                "user": viewer.public(),
                "online": online,
                "conversations": conversations,
            }
        )

    def _on_ephemeral(self, message: dict[str, Any]) -> None:
        try:
            kind = message["kind"]
            uid = message["user_id"]
            if kind == "typing":
                conv = message["conversation"]
                frame = ephemeral(
                    "typing", conv, {"user": message["user"], "typing": message["typing"]}
                )
                for sub in self._by_conv.get(conv, ()):
                    if sub.user_id != uid:
                        sub.push(frame)
            elif kind == "revoked":
                credential = message["credential"]
                self.revoke(uid, credential if isinstance(credential, int) else None)
            elif kind == "presence":
                frame = ephemeral(
                    "presence", None, {"user": message["user"], "online": message["online"]}
                )
                targets: set[Subscription] = set()
                for conv in message["conversations"]:
                    targets.update(self._by_conv.get(conv, ()))
                for sub in targets:
                    if sub.user_id != uid:
                        sub.push(frame)
        except (KeyError, TypeError):
            log.warning("ignoring a malformed ephemeral message")

    # --- periodic jobs ------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """The heartbeats of the slot that is due (see ``__init__``)."""
        due = self._beats[self._beat_due]
        self._beat_due = (self._beat_due + 1) % len(self._beats)
        if due:
            frame = ephemeral("heartbeat", None, {"head": self.position})
            for sub in due:
                if sub.pending is None:
                    sub.push(frame)  # a close it causes is handled later (_release_soon)

    def _bus_back(self) -> None:
        """Redis is back after an outage, perhaps restarted empty: restate presence at once
        rather than at the next refresh. The first try may meet a connection the outage left
        dead in the pool (which it then drops): try a few times."""
        self._spawn(self._refresh_presence(attempts=3), "presence-back")

    async def _refresh_presence(self, attempts: int = 1) -> None:
        """Restate who is online here (entries expire), and catch up on what an outage of the
        presence store kept from it: after Redis restarts empty, this puts everyone back."""
        for attempt in range(1, attempts + 1):
            try:
                if self._by_user:
                    await self.presence.mark_online(list(self._by_user))
                for uid in list(self._offline_pending):
                    if uid not in self._by_user:
                        await self.presence.mark_offline(uid)
                    self._offline_pending.discard(uid)
                return
            except Exception as exc:
                if attempt == attempts:
                    log.warning("presence store unavailable (%s); refreshing again later", exc)
                    return
                await asyncio.sleep(0.5)

    async def _prune(self) -> None:
        before = self.clock.now() - timedelta(hours=self.settings.event_retention_hours)
        await asyncio.to_thread(self.prune, before)

    def prune(self, before: Any) -> int:
        total = 0
        while True:
            with self.db.write() as session:
                deleted = do_prune_events(session, before=before)
            total += deleted
            if deleted == 0:
                return total
