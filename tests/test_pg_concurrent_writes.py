"""Sends into different conversations write side by side on PostgreSQL (shared write lock, the
conversation's own lock), and their events are numbered after commit (jobchat.events.sequencer).
What must hold whatever the interleaving: readers of the event stream and of a conversation's
history never see an id appear below one they already saw; every event is seen exactly once;
idempotent retries store once; no send fails. On SQLite (one writer at a time) the same tests
run and must hold just the same."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database, mark_events_written
from jobchat.events import actions as event_actions
from jobchat.events.models import Event, EventType, QueuedEvent
from jobchat.events.queries import events_after
from jobchat.events.sequencer import SEQUENCER_LOCK_KEY, sequence
from jobchat.messages.models import Message
from tests.support import (
    API_KEY,
    TEST_CLIENT_ADDRESS,
    Api,
    As,
    World,
    body,
    build_world,
    eventually,
    start,
)

SENDS_PER_THREAD = 12


@pytest.fixture
def client(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    # Two users send dozens of messages in a moment: the per-user rate limit is lifted.
    app = create_app(
        settings.model_copy(update={"send_rate_per_minute": 10**6}), db=db, clock=clock
    )
    with TestClient(app, client=(TEST_CLIENT_ADDRESS, 50000)) as test_client:
        yield test_client


@pytest.fixture
def world(client: TestClient) -> World:
    return build_world(Api(client))


def conversations(world: World) -> list[int]:
    """Four conversations, emp_admin and emp_team in all of them (their badge rows are shared)."""
    admin = world["emp_admin"]
    return [
        start(admin, "application", application="app1"),
        start(admin, "application", application="app2"),
        start(admin, "case", application="app1"),
        start(admin, "job_partners", job="job1"),
    ]


class Poller(threading.Thread):
    """Reads ``after`` its last position again and again until stopped, recording every row."""

    def __init__(self, read: Callable[[int], list[int]]) -> None:
        super().__init__(daemon=True)
        self.read = read
        self.seen: list[int] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.poll()
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def poll(self) -> None:
        after = self.seen[-1] if self.seen else 0
        self.seen += self.read(after)

    def finish(self) -> list[int]:
        self.stop.set()
        self.join(timeout=60)
        assert self.failure is None, self.failure
        self.poll()  # what committed after its last round
        return self.seen


def test_concurrent_sends_keep_the_stream_and_each_history_in_order(
    world: World, db: Database
) -> None:
    convs = conversations(world)
    senders = [world["emp_admin"], world["emp_team"]]

    def stream(after: int) -> list[int]:
        with db.read() as s:
            return [row.id for row in events_after(s, after, limit=1000)]

    def history(conv: int) -> Callable[[int], list[int]]:
        def read(after: int) -> list[int]:
            with db.read() as s:
                query = select(Message.id).where(
                    Message.conversation_id == conv, Message.id > after
                )
                return list(s.scalars(query.order_by(Message.id)))

        return read

    readers = [Poller(stream)] + [Poller(history(conv)) for conv in convs]
    statuses: list[int] = []
    stored: dict[str, set[int]] = {}
    lock = threading.Lock()

    def send(who: As, conv: int, n: int, tag: str) -> None:
        for i in range(n):
            key = f"{tag}-{i}" if i % 3 == 0 else None
            extra: dict[str, Any] = {} if key is None else {"idempotency_key": key}
            attempts = 2 if key is not None and i % 2 == 0 else 1  # some retried
            for _ in range(attempts):
                r = who.send(conv, f"{tag} message {i}", **extra)
                with lock:
                    statuses.append(r.status_code)
                    if key is not None and r.status_code in (200, 201):
                        stored.setdefault(key, set()).add(r.json()["id"])

    threads = [
        threading.Thread(target=send, args=(who, conv, SENDS_PER_THREAD, f"t{w}-{conv}"))
        for conv in convs
        for w, who in enumerate(senders)
    ]
    for reader in readers:
        reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    seen_events, *seen_histories = [reader.finish() for reader in readers]

    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    # Every event was seen once, in increasing order: none appeared below the reader's position.
    with db.read() as s:
        all_events = list(s.scalars(select(Event.id).order_by(Event.id)))
        queued = s.scalar(select(func.count()).select_from(QueuedEvent))
    assert queued == 0
    assert seen_events == sorted(set(seen_events))
    assert seen_events == all_events
    for conv, seen in zip(convs, seen_histories, strict=True):
        with db.read() as s:
            messages = list(
                s.scalars(select(Message.id).where(Message.conversation_id == conv).order_by("id"))
            )
        assert seen == messages, f"conversation {conv}: a message appeared below one seen"
    # Retries with a key were stored once, and answered with that one message.
    assert all(len(ids) == 1 for ids in stored.values()), stored
    with db.read() as s:
        keys = s.execute(
            select(Message.idempotency_key, func.count())
            .where(Message.idempotency_key.is_not(None))
            .group_by(Message.idempotency_key)
        ).all()
    assert {key for key, _ in keys} == set(stored)
    assert all(count == 1 for _, count in keys)
    # Each conversation's events are in the order of its messages.
    with db.read() as s:
        created = s.execute(
            select(Event.conversation_id, Event.message_id)
            .where(Event.type == EventType.message_created)
            .order_by(Event.id)
        ).all()
    for conv in convs:
        ids = [m for c, m in created if c == conv and m is not None]
        assert ids == sorted(ids)


def test_badges_add_up_after_concurrent_sends(world: World, db: Database) -> None:
    """Every send shifts the same staff's badge rows; none is lost or counted twice."""
    convs = conversations(world)[2:]  # the case and the job's partners: sp_in is in both
    threads = [
        threading.Thread(
            target=lambda c=conv, who=who: [
                body(who.send(c, f"hello {i}"), 201) for i in range(SENDS_PER_THREAD)
            ]
        )
        for conv in convs
        for who in (world["emp_admin"], world["sp_in"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with db.read() as s:
        wrong = s.execute(
            text(
                "SELECT u.id FROM users u LEFT JOIN (SELECT user_id, count(*) AS c, "
                "sum(unread_count) AS m FROM members WHERE unread_count > 0 GROUP BY user_id) t "
                "ON t.user_id = u.id WHERE u.unread_conversations != coalesce(t.c, 0) "
                "OR u.unread_messages != coalesce(t.m, 0)"
            )
        ).all()
    assert wrong == []
    # emp_team, in both and sending nothing, has every message unread.
    unread = body(world["emp_team"].get("/api/v1/unread"), 200)
    assert unread["messages"] == len(threads) * SENDS_PER_THREAD


# --- PostgreSQL only: the locks themselves, and events waiting for their number ----------------


def _need_postgres(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: no shared lock, no event queue")


def _waiting_for_a_lock(db: Database) -> bool | None:
    with db.engine.connect() as conn:
        waiting = conn.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )
    return True if waiting else None


def test_sends_into_other_conversations_do_not_wait_but_into_the_same_one_do(
    world: World, db: Database
) -> None:
    _need_postgres(db)
    one, other = conversations(world)[:2]
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write(concurrent_in=one):
            holding.set()
            release.wait(timeout=60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(timeout=30)
    try:
        # Another conversation: gets its turn while the first is held.
        with db.write(concurrent_in=other) as s:
            s.execute(text("SELECT 1"))
        # The same conversation, and a writer that needs the database to itself: both wait.
        done: list[str] = []
        same = threading.Thread(target=lambda: _write_then(db, one, done, "same"))
        whole = threading.Thread(target=lambda: _write_then(db, None, done, "exclusive"))
        same.start()
        eventually(lambda: _waiting_for_a_lock(db), "the send into the same conversation waits")
        whole.start()
        eventually(lambda: _count_waiting(db) >= 2 or None, "the exclusive writer waits too")
        assert done == []
    finally:
        release.set()
        holder.join(timeout=30)
    same.join(timeout=30)
    whole.join(timeout=30)
    assert sorted(done) == ["exclusive", "same"]


def _write_then(db: Database, conv: int | None, done: list[str], name: str) -> None:
    with db.write(concurrent_in=conv) as s:
        s.execute(text("SELECT 1"))
    done.append(name)


def _count_waiting(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
            or 0
        )


def _queued_only(
    session: Session, numbering: tuple[str, str], afterwards: Callable[[Engine], None]
) -> None:
    """What ``emit`` marks a transaction with, minus the numbering its commit would carry."""
    mark_events_written(session)


@pytest.fixture
def unsequenced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers commit their queued events and die before numbering them (PostgreSQL)."""
    monkeypatch.setattr(event_actions, "mark_events_queued", _queued_only)


def _queued(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(QueuedEvent)) or 0)


def test_events_a_dead_writer_left_queued_are_numbered_by_the_stream(
    world: World, db: Database, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_postgres(db)
    conv = conversations(world)[0]
    with monkeypatch.context() as patched:
        patched.setattr(event_actions, "mark_events_queued", _queued_only)
        message = body(world["emp_admin"].send(conv, "left behind"), 201)
    # The writer did not number its event (nor will any other: there are none). The hub, woken
    # by the commit or by its poll, finds nothing new to read, looks at the queue, and numbers
    # what waits there (perhaps already: it is not asserted that the queue held it).

    def numbered() -> bool | None:
        with db.read() as s:
            found = s.scalar(select(Event.id).where(Event.message_id == message["id"]))
        return True if found is not None else None

    eventually(numbered, "the hub numbers the stranded event")
    assert _queued(db) == 0


def test_delete_for_everyone_blanks_an_event_still_queued(
    world: World, db: Database, unsequenced: None
) -> None:
    conv = conversations(world)[0]
    message = body(world["emp_admin"].send(conv, "secret words"), 201)
    r = world["emp_admin"].delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
    assert r.status_code == 204, r.text
    with db.read() as s:
        copies = list(s.scalars(select(Event).where(Event.message_id == message["id"])))
        queued = list(s.scalars(select(QueuedEvent)))
    assert copies, "the message's events were numbered by the delete"
    assert all("secret words" not in str(e.data) + str(e.extras) for e in copies)
    assert all("secret words" not in str(q.data) + str(q.extras) for q in queued)


def test_erasure_removes_a_candidates_event_still_queued(
    world: World, db: Database, client: TestClient, unsequenced: None
) -> None:
    conv = start(world["emp_admin"], "application", application="app2")
    body(world["cand2"].send(conv, "my private words"), 201)
    r = client.post(
        "/api/v1/candidates/cand2/erase", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert r.status_code == 200, r.text
    with db.read() as s:
        left = [
            str(row.data) + str(row.extras)
            for row in [*s.scalars(select(Event)), *s.scalars(select(QueuedEvent))]
        ]
    assert not [row for row in left if "my private words" in row]


def test_the_sequencer_numbers_queued_events_in_queue_order(
    db: Database, clock: FrozenClock, unsequenced: None
) -> None:
    """Events wait together (writers that did not number their own); one sequencer numbers them
    all, in ``seq`` order: the order each conversation's writers, taking turns, queued them in.
    (No app here: its hub would number them as they come.)"""
    _need_postgres(db)
    for batch in range(3):
        with db.write() as s:
            for i in range(4):
                # Concerns nobody: an access.revoked without a user is acted on by no hub.
                event_actions.emit(
                    s, EventType.access_revoked, now=clock.now(), data={"n": batch * 4 + i}
                )
    assert _queued(db) == 12
    sequence(db.engine)
    with db.read() as s:
        numbered = [data["n"] for data in s.scalars(select(Event.data).order_by(Event.id))]
    assert numbered == list(range(12))
    assert _queued(db) == 0


def test_a_writer_finding_the_sequencers_lock_taken_commits_first_then_numbers(
    world: World, db: Database
) -> None:
    """A writer numbers the queue in its own transaction only if the sequencers' lock is free: it
    never waits for that lock while holding its rows. Otherwise it commits, then waits for the
    lock, then numbers (in the same round trip as its COMMIT)."""
    _need_postgres(db)
    conv = conversations(world)[0]
    sent: list[dict[str, Any]] = []

    def send() -> None:
        sent.append(body(world["emp_admin"].send(conv, "numbered after the commit"), 201))

    key = {"key": SEQUENCER_LOCK_KEY}
    with db.engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), key)
        holder.commit()
        sender = threading.Thread(target=send)
        sender.start()
        eventually(lambda: _waiting_for_a_lock(db), "the writer waits for the sequencers' lock")
        with db.read() as s:
            stored = s.scalar(select(Message.id).where(Message.body == "numbered after the commit"))
            numbered = s.scalar(select(func.count()).where(Event.message_id == stored))
        assert stored is not None, "the message was committed before the writer waited"
        assert numbered == 0
        assert _queued(db) >= 1
        holder.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        holder.commit()
    sender.join(timeout=30)
    assert [m["id"] for m in sent] == [stored]
    with db.read() as s:
        assert s.scalar(select(func.count()).where(Event.message_id == stored))
    assert _queued(db) == 0
