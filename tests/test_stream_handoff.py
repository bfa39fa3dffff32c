"""A commit hands its events to this process's hub (on SQLite as written, on PostgreSQL as the
writer numbered them), which routes them without reading them back when they follow straight on
from what it has routed, and reads the table whenever anything else came between: another
process's events, events it has not read yet, events written inside a savepoint (SQLite)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.events.actions import emit
from jobchat.events.models import EventType
from jobchat.events.queries import events_after, latest_event_id
from jobchat.realtime.hub import Hub
from tests.support import Api, World, build_world, sent, start

HOUR = 3600.0


@pytest.fixture
def quiet(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    """The app with a hub that reads the table only when woken (no poll during the test)."""
    app = create_app(settings.model_copy(update={"stream_poll_seconds": HOUR}), db=db, clock=clock)
    with TestClient(app) as client:
        yield client


def _hub(client: TestClient) -> Hub:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    return hub


def _connect(client: TestClient, who: Any, query: str = "") -> Any:
    token = who.headers["Authorization"].removeprefix("Bearer ")
    return client.websocket_connect(f"/api/v1/events?token={token}{query}")


def _stored_frames(ws: Any) -> list[dict[str, Any]]:
    """The numbered frames a socket received before the answer to a ping."""
    ws.send_text(json.dumps({"type": "ping"}))
    frames = []
    while (frame := json.loads(ws.receive_text()))["type"] != "pong":
        if frame["id"] is not None:
            frames.append(frame)
    return frames


def _columns(event: Any) -> tuple[Any, ...]:
    """An event's columns as the stream reads them, from a row read or an event handed over."""
    return (
        event.id,
        event.type,
        event.conversation_id,
        event.user_id,
        event.data,
        event.extras,
    )


def _head(db: Database) -> int:
    with db.read() as session:
        return latest_event_id(session)


def _caught_up(client: TestClient, db: Database) -> None:
    assert _hub(client).position == _head(db)


def _catches_up(client: TestClient, db: Database) -> None:
    """Wait for the hub to have read (on its reader thread) and routed every stored event."""
    head, deadline = _head(db), time.monotonic() + 10
    while _hub(client).position < head:
        assert time.monotonic() < deadline, "the hub did not catch up"
        time.sleep(0.002)


class _HubReads:
    """Statements the hub's reader thread runs on this database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements: list[str] = []

    def __call__(self, _c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if threading.current_thread().name.startswith("jobchat-stream"):
            self.statements.append(statement)

    def __enter__(self) -> _HubReads:
        event.listen(self.db.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self)


def test_a_commit_hands_over_its_events_as_the_table_holds_them(
    client: TestClient, world: World, db: Database
) -> None:
    handed: list[list[Any] | None] = []
    db.on_events_committed.append(handed.append)
    conv = start(world["emp_team"], "application", application="app1")
    before = _head(db)
    handed.clear()
    # A send (the message, its recipients' counts in extras) and a read marker by the candidate.
    message = sent(world["emp_team"].send(conv, 'Hello "Carla" \u2013 über {"json"}'))
    read = world["cand"].post(f"/api/v1/conversations/{conv}/read", json={"up_to": message["id"]})
    assert read.status_code == 200, read.text
    db.on_events_committed.remove(handed.append)

    with db.read() as session:
        stored = [_columns(row) for row in events_after(session, before, limit=100)]
    assert [_columns(e) for events in handed for e in events or []] == stored
    assert {row[1] for row in stored} >= {EventType.message_created, EventType.conversation_read}
    assert any(row[5] for row in stored), "no event with per-user extras was exercised"


def test_the_hub_routes_a_send_without_reading_it_back_and_as_a_replay_would(
    quiet: TestClient, db: Database
) -> None:
    world = build_world(Api(quiet))
    conv = start(world["emp_team"], "application", application="app1")
    with _connect(quiet, world["cand"]) as cand, _connect(quiet, world["emp_team"]) as team:
        for ws in (cand, team):
            assert json.loads(ws.receive_text())["type"] == "ready"
        before = _head(db)
        with _HubReads(db) as reads:
            first = sent(world["emp_team"].send(conv, "first"))
            sent(world["cand"].send(conv, "an answer"))
            live = {"cand": _stored_frames(cand), "emp_team": _stored_frames(team)}
        assert reads.statements == []
        # A delete for everyone rewrites events already written: the hub reads (see below).
        gone = world["emp_team"].delete(f"/api/v1/messages/{first['id']}", **{"for": "everyone"})
        assert gone.status_code == 204, gone.text
        _catches_up(quiet, db)
        live = {
            name: frames + _stored_frames(ws)
            for (name, frames), ws in zip(live.items(), (cand, team), strict=True)
        }
        _caught_up(quiet, db)
    assert [f["type"] for f in live["emp_team"]].count("message.created") == 2
    # What each got live is what resuming from before the sends replays from the table.
    for name in ("cand", "emp_team"):
        with _connect(quiet, world[name], f"&after={before}") as ws:
            replay = []
            while (frame := json.loads(ws.receive_text()))["type"] != "ready":
                replay.append(frame)
        # The replay shows the first message as deleted; live, it was sent then deleted.
        assert [f["id"] for f in replay] == [f["id"] for f in live[name]]
        assert replay[1:] == live[name][1:]


def test_another_processs_events_in_between_are_read_and_routed_in_order(
    quiet: TestClient, db: Database, settings: Settings, clock: FrozenClock
) -> None:
    """Another server on the same SQLite file writes an event this hub has not read; this
    process's next commit cannot be routed on its own (a hole before it): the hub reads."""
    world = build_world(Api(quiet))
    conv = start(world["emp_team"], "application", application="app1")
    other_db = Database(db.url)
    try:
        app = create_app(
            settings.model_copy(update={"stream_poll_seconds": HOUR}), db=other_db, clock=clock
        )
        with TestClient(app) as other, _connect(quiet, world["cand"]) as cand:
            assert json.loads(cand.receive_text())["type"] == "ready"
            there = sent(
                other.post(
                    f"/api/v1/conversations/{conv}/messages",
                    json={"body": "from the other server"},
                    headers=world["emp_team"].headers,
                )
            )
            assert _hub(quiet).position < _head(db)  # nobody told this hub
            here = sent(world["emp_team"].send(conv, "from this one"))
            _catches_up(quiet, db)
            frames = _stored_frames(cand)
    finally:
        other_db.dispose()
    created = [f["data"]["id"] for f in frames if f["type"] == "message.created"]
    assert created == [there["id"], here["id"]]
    assert [f["id"] for f in frames] == sorted({f["id"] for f in frames})
    _caught_up(quiet, db)


def test_events_written_in_a_savepoint_are_read_not_handed_over(
    client: TestClient, world: World, db: Database, clock: FrozenClock
) -> None:
    """On SQLite a savepoint may be rolled back and its event's id given to another: only the
    table knows which one was kept. On PostgreSQL what is handed over is what was numbered,
    after the fact: the event of the savepoint rolled back is not among it."""
    conv = start(world["emp_team"], "application", application="app1")
    before = _head(db)
    handed: list[list[Any] | None] = []
    db.on_events_committed.append(handed.append)
    with db.write() as session:
        emit(session, EventType.conversation_updated, now=clock.now(), conversation_id=conv)
        with session.begin_nested():
            emit(session, EventType.conversation_updated, now=clock.now(), conversation_id=conv)
        try:
            with session.begin_nested():
                emit(session, EventType.member_added, now=clock.now(), conversation_id=conv)
                raise LookupError
        except LookupError:
            pass
    db.on_events_committed.remove(handed.append)
    with db.read() as session:
        stored = [_columns(row) for row in events_after(session, before, limit=100)]
    assert [row[1] for row in stored] == [EventType.conversation_updated] * 2
    if db.is_sqlite:
        assert handed == [None]
    else:
        assert [[_columns(e) for e in events or []] for events in handed] == [stored]


def test_a_commit_that_rewrites_events_hands_none_over(
    client: TestClient, world: World, db: Database
) -> None:
    """A delete for everyone blanks the message in events already written (and an erasure or
    retention deletes some): the hub is told only that something changed, and reads."""
    conv = start(world["emp_team"], "application", application="app1")
    message = sent(world["emp_team"].send(conv, "soon gone"))
    handed: list[list[Any] | None] = []
    db.on_events_committed.append(handed.append)
    gone = world["emp_team"].delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
    db.on_events_committed.remove(handed.append)
    assert gone.status_code == 204, gone.text
    assert handed == [None]


def test_an_event_handed_over_while_the_hub_reads_goes_out_once(
    quiet: TestClient, db: Database
) -> None:
    """The hub starts reading from where it was; meanwhile a commit hands it the next event,
    which it routes; the read then brings that event back, and it is not routed again."""
    world = build_world(Api(quiet))
    conv = start(world["emp_team"], "application", application="app1")
    hub = _hub(quiet)
    assert quiet.portal is not None and hub._reader is not None
    with _connect(quiet, world["cand"]) as cand:
        assert json.loads(cand.receive_text())["type"] == "ready"
        _caught_up(quiet, db)
        # The hub's one reader thread is held, so the read it starts now waits behind it.
        hold = threading.Event()
        held = hub._reader.submit(hold.wait, 10)
        quiet.portal.call(hub.wake)
        message = sent(world["emp_team"].send(conv, "once"))
        hold.set()
        held.result(timeout=10)
        hub._reader.submit(lambda: None).result(timeout=10)  # the read queued behind it is done
        frames = _stored_frames(cand)
        _caught_up(quiet, db)
    assert [f["data"]["id"] for f in frames if f["type"] == "message.created"] == [message["id"]]
    assert len(frames) == len({f["id"] for f in frames})
