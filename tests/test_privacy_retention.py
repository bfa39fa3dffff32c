"""Retention (JOBCHAT_RETENTION_DAYS): the worker erases messages older than that, daily, the
way an erasure does, in batches; conversations stay with their read state right."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.models import Attachment, Message
from jobchat.events.models import Event
from jobchat.privacy.retention import expire
from tests.files_support import uploaded
from tests.mail_support import drain, worker_for
from tests.support import Api, As, body, sent, start

DAYS = 30


@pytest.fixture
def app_client(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    kept = settings.model_copy(update={"retention_days": DAYS})
    with TestClient(create_app(kept, db=db, clock=clock)) as client:
        yield client


@pytest.fixture
def cast(app_client: TestClient) -> dict[str, As]:
    api = Api(app_client)
    api.org("acme", "Acme Health", "employer")
    api.staff("emp", "Tess Team", "acme", role="admin")
    api.job("job1", "Registered Nurse", "acme", team=["emp"])
    api.candidate("cand", "Carla Candidate")
    api.application("app1", "job1", "cand", "interview")
    api.candidate("cand2", "Dan Candidate")
    api.application("app2", "job1", "cand2", "interview")
    return {"emp": api.as_staff("emp"), "cand": api.as_candidate("cand")}


def search(who: As, q: str) -> list[int]:
    return [hit["message"]["id"] for hit in body(who.get("/api/v1/search", q=q), 200)["items"]]


def words_in_database(db: Database, word: str) -> int:
    with db.read() as s:
        found = s.scalar(
            select(func.count()).select_from(Message).where(Message.body.contains(word))
        )
        events = s.execute(text("SELECT data, extras FROM events")).all()
    return int(found or 0) + sum(word in f"{row}" for row in events)


def test_the_worker_erases_old_messages_and_keeps_conversations_right(
    cast: dict[str, As],
    app_client: TestClient,
    db: Database,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    emp, cand = cast["emp"], cast["cand"]
    chat = start(emp, "application", application="app1")
    quiet = start(emp, "application", application="app2")
    file = uploaded(cand, chat, "oldcv.txt", b"ancient curriculum")
    sent(cand.send(chat, "antediluvian words", attachments=[file["id"]]))
    sent(emp.send(quiet, "prehistoric hello"))
    clock.advance(days=DAYS + 1)
    fresh = sent(cand.send(chat, "contemporary words"))
    root = Path(settings.storage_url.removeprefix("file://"))
    assert any(root.rglob("*"))
    assert search(emp, "antediluvian")

    drain(worker_for(app_client.app))  # type: ignore[arg-type]

    assert words_in_database(db, "antediluvian") == 0
    assert words_in_database(db, "prehistoric") == 0
    assert search(emp, "antediluvian") == []
    with db.read() as s:
        assert s.scalars(select(Message.id)).all() == [fresh["id"]]
        assert s.scalar(select(func.count()).select_from(Attachment)) == 0
    assert not [f for f in root.rglob("*") if f.is_file()]
    # The conversations stay: one with what is left, one empty; previews and counts follow.
    inbox = {c["id"]: c for c in body(emp.inbox(), 200)["items"]}
    assert inbox[chat]["last_message"]["id"] == fresh["id"]
    assert inbox[chat]["unread_count"] == 1
    assert inbox[quiet]["last_message"] is None
    assert body(emp.get("/api/v1/unread"), 200) == {"conversations": 1, "messages": 1}
    assert [m["id"] for m in body(cand.messages(chat), 200)["items"]] == [fresh["id"]]
    # Audited, by the system, with counts only.
    api = Api(app_client)
    entries = body(api.integration.get("/api/v1/audit", action="messages.expired"), 200)["items"]
    assert len(entries) == 1
    assert entries[0]["actor"]["type"] == "system"
    assert entries[0]["details"]["messages"] == 2
    assert entries[0]["details"]["attachments"] == 1


def test_a_run_goes_in_batches_until_nothing_old_is_left(
    cast: dict[str, As], app_client: TestClient, db: Database, clock: FrozenClock
) -> None:
    emp = cast["emp"]
    chat = start(emp, "application", application="app1")
    for n in range(5):
        sent(emp.send(chat, f"old {n}"))
    clock.advance(days=DAYS + 1)
    sent(emp.send(chat, "new"))
    counts = expire(db, days=DAYS, now=clock.now(), batch=2)
    assert counts["messages"] == 5
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1
    api = Api(app_client)
    entries = body(api.integration.get("/api/v1/audit", action="messages.expired"), 200)["items"]
    assert sorted(e["details"]["messages"] for e in entries) == [1, 2, 2]
    # Nothing older is left: a second run erases nothing and audits nothing.
    assert not any(expire(db, days=DAYS, now=clock.now(), batch=2).values())


def test_without_the_setting_nothing_expires(
    api: Api, client: TestClient, db: Database, clock: FrozenClock
) -> None:
    api.org("acme", "Acme Health", "employer")
    api.staff("emp", "Tess Team", "acme", role="admin")
    api.job("job1", "Registered Nurse", "acme", team=["emp"])
    api.candidate("cand", "Carla Candidate")
    api.application("app1", "job1", "cand", "interview")
    emp = api.as_staff("emp")
    sent(emp.send(start(emp, "application", application="app1"), "kept forever"))
    clock.advance(days=3650)
    drain(worker_for(client.app))  # type: ignore[arg-type]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1


def test_event_ids_keep_growing_when_the_newest_events_expire(
    cast: dict[str, As], db: Database, clock: FrozenClock
) -> None:
    """Clients resume the stream after the last id they read: a new event must come after it
    even when retention erased the newest ones (SQLite would reuse ids otherwise)."""
    emp = cast["emp"]
    chat = start(emp, "application", application="app1")
    sent(emp.send(chat, "the last word for a while"))
    with db.read() as s:
        newest = s.scalar(select(func.max(Event.id)))
    clock.advance(days=DAYS + 1)
    assert expire(db, days=DAYS, now=clock.now())["messages"] == 1
    sent(emp.send(chat, "back again"))
    with db.read() as s:
        created = s.scalars(
            select(Event.id).where(Event.type == "message.created").order_by(Event.id)
        ).all()
    assert newest is not None and created and min(created) > newest


def test_read_marks_follow_when_every_message_expired(
    cast: dict[str, As], db: Database, clock: FrozenClock
) -> None:
    """The newest messages gone, SQLite hands their ids out again: a reply after them must
    still be unread for whoever had read up to an erased one."""
    emp, cand = cast["emp"], cast["cand"]
    chat = start(emp, "application", application="app1")
    sent(emp.send(chat, "an old question"))
    clock.advance(days=DAYS + 1)
    assert expire(db, days=DAYS, now=clock.now())["messages"] == 1
    sent(cand.send(chat, "a new answer"))
    inbox = {c["id"]: c for c in body(emp.inbox(), 200)["items"]}
    assert inbox[chat]["unread_count"] == 1
    assert body(emp.get("/api/v1/unread"), 200) == {"conversations": 1, "messages": 1}
    # Reading it counts: the mark was not left above the new message's id.
    body(emp.post(f"/api/v1/conversations/{chat}/read"), 200)
    assert body(emp.get("/api/v1/unread"), 200) == {"conversations": 0, "messages": 0}
