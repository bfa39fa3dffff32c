"""The numbered event stream: every change writes its event rows in the same transaction.

The API does not show events, so these tests read the ``events`` table directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.conversations.models import Member
from jobchat.db.engine import Database
from jobchat.events.models import Event
from jobchat.events.queries import EventRecord
from jobchat.messages.models import Delivery, HiddenMessage, Message
from tests.support import Api, World, assert_error, build_world, sent, start, user_id

# --- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    id: int
    type: str
    conversation_id: int | None
    user_id: int | None
    data: dict[str, Any]
    extras: dict[str, Any] | None


def events_after(db: Database, after: int = 0) -> list[Ev]:
    """Events with an id above ``after``, in id order."""
    with db.read() as s:
        rows = s.scalars(select(Event).where(Event.id > after).order_by(Event.id))
        return [
            Ev(e.id, e.type, e.conversation_id, e.user_id, dict(e.data), e.extras) for e in rows
        ]


def last_event_id(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.max(Event.id))) or 0)


def counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {
            model.__tablename__: int(s.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Event, Message, Delivery, HiddenMessage)
        }


# --- one event per change -----------------------------------------------------------------------


def test_starting_a_conversation_adds_its_members(world: World, db: Database) -> None:
    """Creating a conversation writes member.added for each of its members, and reaching it
    again writes nothing."""
    before = last_event_id(db)
    conv_id = start(world["emp_team"], "application", application="app1")
    new = events_after(db, before)
    assert {e.type for e in new} == {"member.added"}
    assert all(e.conversation_id == conv_id for e in new)
    assert sorted(e.user_id for e in new if e.user_id is not None) == sorted(
        user_id(db, x) for x in ("emp_admin", "emp_team", "cand")
    )
    assert len(new) == 3
    before = last_event_id(db)
    r = world["emp_team"].start("application", application="app1")
    assert r.status_code == 200, r.text
    assert events_after(db, before) == []


def test_message_created(world: World, db: Database, clock: FrozenClock) -> None:
    """A send writes one message.created event carrying the message as the API shows it."""
    conv_id = start(world["emp_team"], "application", application="app1")
    before = last_event_id(db)
    message = sent(world["emp_team"].send(conv_id, "Hello there"))
    new = events_after(db, before)
    assert [e.type for e in new] == ["message.created"]
    event = new[0]
    assert event.conversation_id == conv_id
    data = event.data
    assert data["id"] == message["id"]
    assert data["conversation"] == conv_id
    assert data["body"] == "Hello there"
    assert data["channel"] == "app"
    assert data["deleted"] is False
    assert data["author"] == {"id": "emp_team", "name": "Tess Team", "kind": "staff"}
    assert data["created_at"] == message["created_at"]
    with db.read() as s:
        assert s.get_one(Event, event.id).created_at == clock.now()


def test_sending_with_unread_messages_also_writes_the_senders_read(
    world: World, db: Database
) -> None:
    """A sender who had unread messages gets a conversation.read event for their new marker,
    after the message's (on PostgreSQL both are written by one statement), with their badge."""
    conv_id = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(conv_id, "Question?"))
    before = last_event_id(db)
    reply = sent(world["cand"].send(conv_id, "Answer."))
    new = events_after(db, before)
    assert [e.type for e in new] == ["message.created", "conversation.read"]
    created, read = new
    assert created.data["id"] == reply["id"] and read.id == created.id + 1
    assert read.user_id == user_id(db, "cand")
    assert read.conversation_id == conv_id
    assert read.data["last_read_message_id"] == reply["id"]
    assert read.data["unread_count"] == 0
    cand = str(user_id(db, "cand"))
    assert read.extras == {cand: {"unread": {"conversation": 0, "conversations": 0, "messages": 0}}}
    # The message's event carries the team member's new count and badge.
    team = str(user_id(db, "emp_team"))
    assert created.extras is not None
    assert created.extras[team] == {
        "unread": {"conversation": 1, "conversations": 1, "messages": 1}
    }


def test_the_commit_hands_the_stream_each_event_as_the_table_holds_it(
    world: World, db: Database
) -> None:
    """A send's two events (written by one INSERT) reach the real-time stream with the ids,
    data and extras the table gives them, in order, without the stream reading them back."""
    conv_id = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(conv_id, "Question?"))
    handed: list[list[Any] | None] = []
    db.on_events_committed.append(handed.append)
    try:
        before = last_event_id(db)
        sent(world["cand"].send(conv_id, "Answer."))
    finally:
        db.on_events_committed.remove(handed.append)
    stored = events_after(db, before)
    assert [e.type for e in stored] == ["message.created", "conversation.read"]
    assert len(handed) == 1 and handed[0] is not None
    assert [_fields(e) for e in handed[0]] == [_fields(e) for e in stored]


def _fields(event: Any) -> tuple[Any, ...]:
    """An event's fields (handed on as an EventRecord on SQLite, as the numbering's row on
    PostgreSQL)."""
    return tuple(getattr(event, name) for name in EventRecord.__dataclass_fields__)


def test_idempotent_replay_writes_no_event(world: World, db: Database) -> None:
    """A replayed send is not a change: it writes no second message.created."""
    conv_id = start(world["emp_team"], "application", application="app1")
    before = last_event_id(db)
    for _ in range(3):
        r = world["emp_team"].send(conv_id, "Once", idempotency_key="k")
        assert r.status_code == 201, r.text
    assert [e.type for e in events_after(db, before)] == ["message.created"]


def test_message_deleted_for_me(world: World, db: Database) -> None:
    """Deleting for me writes message.deleted naming the one user it concerns."""
    conv_id = start(world["emp_team"], "application", application="app1")
    message = sent(world["emp_team"].send(conv_id, "Hi"))
    before = last_event_id(db)
    assert world["cand"].delete(f"/api/v1/messages/{message['id']}").status_code == 204
    new = events_after(db, before)
    assert [e.type for e in new] == ["message.deleted"]
    assert new[0].conversation_id == conv_id
    assert new[0].user_id == user_id(db, "cand")
    # Only the one who hid it receives this, with what their inbox shows instead: nothing.
    assert new[0].data == {"id": message["id"], "for": "me", "last_message": None}
    # Hiding it again is no change and writes nothing.
    before = last_event_id(db)
    assert world["cand"].delete(f"/api/v1/messages/{message['id']}").status_code == 204
    assert events_after(db, before) == []


def test_message_deleted_for_everyone(world: World, db: Database) -> None:
    """Deleting for everyone writes message.deleted for the whole conversation (no user_id)."""
    conv_id = start(world["emp_team"], "application", application="app1")
    message = sent(world["emp_team"].send(conv_id, "Hi"))
    before = last_event_id(db)
    r = world["emp_team"].delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
    assert r.status_code == 204, r.text
    new = events_after(db, before)
    assert [e.type for e in new] == ["message.deleted"]
    assert new[0].conversation_id == conv_id
    assert new[0].user_id is None
    assert (new[0].data["id"], new[0].data["for"]) == (message["id"], "everyone")
    assert new[0].data["message"]["deleted"] is True
    # The body never travels in the event.
    assert "Hi" not in str(new[0].data.values())
    before = last_event_id(db)
    r = world["emp_team"].delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
    assert r.status_code == 204
    assert events_after(db, before) == []


def test_conversation_read(world: World, db: Database) -> None:
    """Marking read writes conversation.read for the reader; a read that moves nothing does not."""
    conv_id = start(world["emp_team"], "application", application="app1")
    ids = [sent(world["emp_team"].send(conv_id, f"m{i}"))["id"] for i in range(3)]
    before = last_event_id(db)
    r = world["cand"].post(f"/api/v1/conversations/{conv_id}/read", {"up_to": ids[0]})
    assert r.status_code == 200, r.text
    new = events_after(db, before)
    assert [e.type for e in new] == ["conversation.read"]
    assert new[0].conversation_id == conv_id
    assert new[0].user_id == user_id(db, "cand")
    assert new[0].data == {"last_read_message_id": ids[0], "unread_count": 2}

    before = last_event_id(db)
    world["cand"].post(f"/api/v1/conversations/{conv_id}/read", {"up_to": ids[0]})
    assert events_after(db, before) == []

    world["emp_admin"].post(f"/api/v1/conversations/{conv_id}/read")
    new = events_after(db, before)
    assert [(e.type, e.user_id) for e in new] == [("conversation.read", user_id(db, "emp_admin"))]
    assert new[0].data == {"last_read_message_id": ids[2], "unread_count": 0}


def test_conversation_updated_on_end_and_reopen(world: World, db: Database) -> None:
    """Ending writes conversation.updated (ended); a staff message reopening it writes another
    (open) along with its message.created."""
    conv_id = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(conv_id, "Hello"))
    before = last_event_id(db)
    r = world["emp_team"].post(f"/api/v1/conversations/{conv_id}/end")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ended"
    new = events_after(db, before)
    assert [e.type for e in new] == ["conversation.updated"]
    assert new[0].conversation_id == conv_id
    assert new[0].data["status"] == "ended"

    # Ending again is no change.
    before = last_event_id(db)
    world["emp_team"].post(f"/api/v1/conversations/{conv_id}/end")
    assert events_after(db, before) == []

    # The candidate may not post, and that refusal writes nothing.
    assert_error(world["cand"].send(conv_id, "Wait!"), 409, "conversation_ended")
    assert events_after(db, before) == []

    message = sent(world["emp_admin"].send(conv_id, "Reopening"))
    new = events_after(db, before)
    # (emp_admin had "Hello" unread, so sending also moves their read marker.)
    assert sorted(e.type for e in new) == [
        "conversation.read",
        "conversation.updated",
        "message.created",
    ]
    updated = next(e for e in new if e.type == "conversation.updated")
    assert updated.conversation_id == conv_id
    assert updated.data["status"] == "open"
    created = next(e for e in new if e.type == "message.created")
    assert created.data["id"] == message["id"]
    assert world["cand"].get(f"/api/v1/conversations/{conv_id}").json()["status"] == "open"


def test_member_added_and_removed_when_an_application_changes_stage(
    world: World, api: Api, db: Database
) -> None:
    """A candidate reaching offer_accepted joins the job's relocation chat (member.added), and
    leaves it again on rejection (member.removed); a repeated upsert writes nothing."""
    conv_id = start(world["emp_team"], "job_relocation", job="job1")
    cand2 = user_id(db, "cand2")
    assert_error(world["cand2"].get(f"/api/v1/conversations/{conv_id}"), 404)

    before = last_event_id(db)
    api.application("app2", "job1", "cand2", "offer_accepted")
    new = events_after(db, before)
    assert [(e.type, e.conversation_id, e.user_id) for e in new] == [
        ("member.added", conv_id, cand2)
    ]
    members = world["emp_team"].get(f"/api/v1/conversations/{conv_id}").json()["members"]
    assert "cand2" in {m["id"] for m in members}
    assert world["cand2"].get(f"/api/v1/conversations/{conv_id}").status_code == 200

    before = last_event_id(db)
    api.application("app2", "job1", "cand2", "offer_accepted")
    api.application("app2", "job1", "cand2", "hired")
    assert events_after(db, before) == []

    api.application("app2", "job1", "cand2", "rejected")
    new = events_after(db, before)
    assert [(e.type, e.conversation_id, e.user_id) for e in new] == [
        ("member.removed", conv_id, cand2)
    ]
    assert_error(world["cand2"].get(f"/api/v1/conversations/{conv_id}"), 404)
    with db.read() as s:
        assert s.get(Member, (conv_id, cand2)) is None


def test_member_added_when_a_job_team_grows(world: World, api: Api, db: Database) -> None:
    """A staff user added to a job's team joins that job's conversations, one event each."""
    partners_conv = start(world["emp_team"], "job_partners", job="job1")
    app_conv = start(world["emp_team"], "application", application="app1")
    before = last_event_id(db)
    api.job("job1", "Registered Nurse", "acme", team=["emp_team", "emp_other"])
    new = events_after(db, before)
    other = user_id(db, "emp_other")
    assert sorted((e.type, e.conversation_id, e.user_id) for e in new) == sorted(
        [("member.added", partners_conv, other), ("member.added", app_conv, other)]
    )


# --- ordering -----------------------------------------------------------------------------------


def test_event_ids_strictly_increase_in_the_order_of_the_changes(
    world: World, api: Api, db: Database
) -> None:
    """Event ids are strictly increasing, and reading them in id order replays the changes in
    the order they happened."""
    before = last_event_id(db)
    conv_id = start(world["emp_team"], "application", application="app1")
    m1 = sent(world["emp_team"].send(conv_id, "one"))["id"]
    world["cand"].post(f"/api/v1/conversations/{conv_id}/read")
    m2 = sent(world["cand"].send(conv_id, "two"))["id"]
    world["emp_team"].delete(f"/api/v1/messages/{m1}", **{"for": "everyone"})
    world["emp_admin"].delete(f"/api/v1/messages/{m2}")
    world["emp_team"].post(f"/api/v1/conversations/{conv_id}/end")
    sent(world["emp_team"].send(conv_id, "three"))
    new = events_after(db, before)
    ids = [e.id for e in new]
    assert ids == sorted(set(ids))
    assert all(b > a for a, b in itertools.pairwise(ids))
    assert ids[0] > before
    # member.added x3, then the changes in order. The last send is one request with three
    # events (the reopen, the message, the sender's read), in any order among themselves.
    types = [e.type for e in new]
    assert types[:3] == ["member.added"] * 3
    assert types[3:9] == [
        "message.created",  # one
        "conversation.read",  # cand reads
        "message.created",  # two
        "message.deleted",  # one, for everyone
        "message.deleted",  # two, for emp_admin
        "conversation.updated",  # ended
    ]
    assert new[3].data["id"] == m1
    assert new[4].user_id == user_id(db, "cand")
    assert new[5].data["id"] == m2
    assert (new[6].data["id"], new[6].data["for"]) == (m1, "everyone")
    assert (new[7].user_id, new[7].data["id"], new[7].data["for"]) == (
        user_id(db, "emp_admin"),
        m2,
        "me",
    )
    assert new[8].data["status"] == "ended"
    assert sorted(types[9:]) == ["conversation.read", "conversation.updated", "message.created"]


# --- nothing half-written -----------------------------------------------------------------------


def test_failed_validation_writes_no_message_and_no_event(
    world: World, api: Api, db: Database
) -> None:
    """A request refused for bad input leaves the messages, deliveries and events unchanged."""
    conv_id = start(world["emp_team"], "application", application="app2")
    app1_conv = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    message = sent(emp.send(app1_conv, "Kept"))
    before = counts(db)

    assert_error(emp.send(conv_id, "Body", channel="email"), 422, fields={"subject"})
    assert_error(emp.send(conv_id, "Body", channel="sms"), 422, fields={"channel"})
    assert_error(emp.send(conv_id, "   "), 422, fields={"body"})
    assert_error(emp.send(conv_id, "x" * 10_001), 422, fields={"body"})
    assert_error(world["cand2"].send(conv_id, "Hi", channel="email", subject="S"), 422)
    assert_error(emp.post(f"/api/v1/conversations/{app1_conv}/read", {"up_to": 10**9}), 422)
    assert_error(world["cand"].delete(f"/api/v1/messages/{message['id']}",
                                      **{"for": "everyone"}), 403)  # fmt: skip
    assert_error(world["other_emp"].send(app1_conv, "Intruder"), 404)
    assert_error(
        api.integration.put("/api/v1/applications/app2",
                            {"job": "job1", "candidate": "cand2", "stage": "nope"}),
        422,
    )  # fmt: skip
    assert_error(
        api.integration.put("/api/v1/jobs/job1", {"title": "T", "employer": "acme",
                                                  "team": ["emp_team", "sp_in"]}),
        422,
    )  # fmt: skip

    assert counts(db) == before
    with db.read() as s:
        unread = dict(
            s.execute(
                select(Member.user_id, Member.unread_count).where(Member.conversation_id == conv_id)
            ).all()
        )
    assert set(unread.values()) == {0}


@pytest.fixture
def fragile_client(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[TestClient]:
    """The app, answering an unexpected failure as a 500 instead of raising it into the test."""
    app = create_app(settings, db=db, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_send_that_fails_while_writing_its_event_leaves_nothing(
    fragile_client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message, its delivery, the unread counts and the event commit together or not at all:
    if writing the event fails, the send is rolled back whole."""
    world = build_world(Api(fragile_client))
    conv_id = start(world["emp_team"], "application", application="app1")
    before = counts(db)

    def broken_emit(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("event store unavailable")

    monkeypatch.setattr("jobchat.messages.actions.emit_all", broken_emit)
    r = world["emp_team"].send(conv_id, "Half-written?", channel="email", subject="S")
    assert r.status_code == 500
    monkeypatch.undo()

    assert counts(db) == before
    assert world["cand"].messages(conv_id).json()["items"] == []
    assert world["cand"].get(f"/api/v1/conversations/{conv_id}").json()["unread_count"] == 0
    assert world["cand"].get("/api/v1/unread").json() == {"conversations": 0, "messages": 0}
    # The same send succeeds once the event store is back.
    sent(world["emp_team"].send(conv_id, "Half-written?", channel="email", subject="S"))
