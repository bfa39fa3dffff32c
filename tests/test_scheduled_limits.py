"""Scheduled sends against the send rate and the cap on waiting messages, a job that gives up,
retries answered from what was stored (whatever was edited since), reserved keys, and the
list's cursor."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from jobchat.app import create_app
from jobchat.background import build_worker
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import Failure, Worker
from jobchat.messages.models import Message
from jobchat.scheduling.actions import SCHEDULED_SEND_JOB
from jobchat.scheduling.models import ScheduledMessage
from jobchat.scheduling.sender import record_failure
from jobchat.templates.models import Template
from tests.support import Api, As, World, assert_error, body, build_world, user_id

LIST = "/api/v1/scheduled-messages"


def world_with(
    settings: Settings, db: Database, clock: FrozenClock, **update: Any
) -> Iterator[World]:
    app = create_app(settings.model_copy(update=update), db=db, clock=clock)
    with TestClient(app) as client:
        yield build_world(Api(client))


@pytest.fixture
def slow(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[World]:
    """One user may send 3 messages a minute."""
    yield from world_with(settings, db, clock, send_rate_per_minute=3)


@pytest.fixture
def capped(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[World]:
    """One user may have 3 messages waiting."""
    yield from world_with(settings, db, clock, max_scheduled_per_user=3)


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return build_worker(client.app.state.mail, texter=client.app.state.texter, name="test")  # type: ignore[attr-defined]


def start(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def at(clock: FrozenClock, **delta: float) -> str:
    return (clock.now() + timedelta(**delta)).isoformat()


def schedule(who: As, conv: int, when: str, text: str = "Later", **extra: Any) -> Any:
    return who.send(conv, text, send_at=when, **extra)


def count(db: Database, model: Any, *where: Any) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def state_of(db: Database, scheduled_id: int) -> tuple[str, str | None]:
    with db.read() as s:
        row = s.get_one(ScheduledMessage, scheduled_id)
        return row.status, row.reason


# --- the send rate and the cap ---------------------------------------------------------------


def test_scheduling_counts_against_the_send_rate(
    slow: World, clock: FrozenClock, db: Database
) -> None:
    tess = slow["emp_team"]
    chat = start(slow)
    body(tess.send(chat, "Now"), 201)
    when = at(clock, minutes=1)
    for i in range(2):
        body(schedule(tess, chat, when, f"Later {i}", idempotency_key=f"k{i}"), 202)
    assert_error(schedule(tess, chat, when), 429, "rate_limited")
    assert_error(tess.send(chat, "Now again"), 429, "rate_limited")
    assert count(db, ScheduledMessage) == 2
    assert count(db, QueuedJob, QueuedJob.kind == SCHEDULED_SEND_JOB) == 2
    # A retry of one stored is still answered.
    body(schedule(tess, chat, when, "Later 1", idempotency_key="k1"), 202)
    # Someone else is not limited by Tess's sends.
    body(schedule(slow["cand"], chat, at(clock, minutes=1)), 202)


def test_moving_a_scheduled_message_counts_against_the_send_rate(
    slow: World, clock: FrozenClock, db: Database
) -> None:
    tess = slow["emp_team"]
    chat = start(slow)
    s = body(schedule(tess, chat, at(clock, hours=1)), 202)
    body(tess.patch(f"{LIST}/{s['id']}", {"send_at": at(clock, hours=2)}), 200)
    # Changing only the text queues nothing and is not counted.
    body(tess.patch(f"{LIST}/{s['id']}", {"body": "Edited"}), 200)
    body(tess.patch(f"{LIST}/{s['id']}", {"send_at": at(clock, hours=3)}), 200)
    assert_error(tess.patch(f"{LIST}/{s['id']}", {"send_at": at(clock, hours=4)}), 429)
    out = body(tess.get(f"{LIST}/{s['id']}"), 200)
    assert out["body"] == "Edited"
    assert datetime.fromisoformat(out["send_at"]) == clock.now() + timedelta(hours=3)
    assert count(db, QueuedJob, QueuedJob.kind == SCHEDULED_SEND_JOB) == 3


def test_one_may_have_only_so_many_waiting(capped: World, clock: FrozenClock, db: Database) -> None:
    tess = capped["emp_team"]
    chat = start(capped)
    ids = [body(schedule(tess, chat, at(clock, hours=1), f"#{i}"), 202)["id"] for i in range(3)]
    error = assert_error(schedule(tess, chat, at(clock, hours=1)), 409, "too_many_scheduled")
    assert "3" in error["message"]
    assert count(db, ScheduledMessage) == 3
    # A cancelled one frees a place.
    assert tess.delete(f"{LIST}/{ids[0]}").status_code == 204
    body(schedule(tess, chat, at(clock, hours=1), "#3"), 202)
    assert_error(schedule(tess, chat, at(clock, hours=1)), 409, "too_many_scheduled")
    # The cap is per person: the candidate has their own.
    body(schedule(capped["cand"], chat, at(clock, hours=1)), 202)
    # Sending now is not capped.
    body(tess.send(chat, "Now"), 201)


def test_a_schedule_refused_for_the_cap_does_not_use_up_the_send_rate(
    settings: Settings, db: Database, clock: FrozenClock
) -> None:
    """The rate is counted before the cap is checked; a refused schedule stored nothing, so its
    count is taken back with its transaction (jobchat.db.undo)."""
    for world in world_with(settings, db, clock, send_rate_per_minute=3, max_scheduled_per_user=1):
        tess = world["emp_team"]
        chat = start(world)
        body(schedule(tess, chat, at(clock, hours=1)), 202)
        for _ in range(3):
            assert_error(schedule(tess, chat, at(clock, hours=1)), 409, "too_many_scheduled")
        # Two of three sends a minute are left: the refusals counted nothing.
        body(tess.send(chat, "Now"), 201)
        body(tess.send(chat, "Now again"), 201)
        assert_error(tess.send(chat, "One too many"), 429, "rate_limited")


# --- a job that gives up ---------------------------------------------------------------------


def test_a_job_that_fails_for_good_marks_the_message_failed(
    world: World, chat: int, clock: FrozenClock, db: Database, worker: Worker, settings: Settings
) -> None:
    tess = world["emp_team"]
    s = body(schedule(tess, chat, at(clock, hours=1), "Broken"), 202)
    # Something the posting cannot survive (a channel it does not know), on its last attempt.
    with db.work() as session:
        session.execute(
            update(ScheduledMessage).where(ScheduledMessage.id == s["id"]).values(channel="fax")
        )
        session.execute(
            update(QueuedJob)
            .where(QueuedJob.kind == SCHEDULED_SEND_JOB)
            .values(attempts=settings.job_max_attempts - 2)
        )
    clock.advance(hours=1)
    asyncio.run(worker.drain())
    # An attempt that will be retried leaves it waiting.
    assert state_of(db, s["id"]) == ("scheduled", None)
    clock.advance(hours=1)
    asyncio.run(worker.drain())
    with db.work() as session:
        job = session.scalars(select(QueuedJob).where(QueuedJob.kind == SCHEDULED_SEND_JOB)).one()
        assert job.status == JobStatus.failed
        session.execute(
            update(ScheduledMessage).where(ScheduledMessage.id == s["id"]).values(channel="app")
        )
    out = body(tess.get(f"{LIST}/{s['id']}"), 200)
    assert out["status"] == "failed"
    assert out["reason"] == (
        "It could not be sent because of a problem on our side; please send it again."
    )
    assert count(db, Message) == 0


def test_a_failed_job_leaves_a_message_that_was_moved_cancelled_or_sent_alone(
    world: World, chat: int, clock: FrozenClock, db: Database, worker: Worker
) -> None:
    """The failure hook as the worker calls it, for jobs that are no longer the message's."""
    tess = world["emp_team"]
    moved = body(schedule(tess, chat, at(clock, hours=1), "Moved"), 202)
    cancelled = body(schedule(tess, chat, at(clock, hours=1), "Cancelled"), 202)
    sent = body(schedule(tess, chat, at(clock, hours=1), "Sent"), 202)
    jobs = job_ids(db)
    body(tess.patch(f"{LIST}/{moved['id']}", {"send_at": at(clock, hours=5)}), 200)
    assert tess.delete(f"{LIST}/{cancelled['id']}").status_code == 204
    clock.advance(hours=1)
    asyncio.run(worker.drain())
    assert state_of(db, sent["id"]) == ("sent", None)
    gave_up = Failure("boom", final=True)
    with db.work() as session:
        for s in (moved, cancelled, sent):
            claimed = Claimed(jobs[s["id"]], SCHEDULED_SEND_JOB, {"scheduled_id": s["id"]}, 12)
            record_failure(session, claimed, gave_up, clock.now())
    assert state_of(db, moved["id"]) == ("scheduled", None)
    assert state_of(db, cancelled["id"]) == ("cancelled", None)
    assert state_of(db, sent["id"]) == ("sent", None)
    # The moved one's current job, failing but not for good, changes nothing either.
    new_job = job_ids(db)[moved["id"]]
    assert new_job != jobs[moved["id"]]
    with db.work() as session:
        claimed = Claimed(new_job, SCHEDULED_SEND_JOB, {"scheduled_id": moved["id"]}, 1)
        record_failure(session, claimed, Failure("boom", final=False), clock.now())
    assert state_of(db, moved["id"]) == ("scheduled", None)


def job_ids(db: Database) -> dict[int, int]:
    """Each scheduled message's current job."""
    with db.read() as s:
        return {r.id: r.job_id for r in s.scalars(select(ScheduledMessage)) if r.job_id}


# --- retries ---------------------------------------------------------------------------------


def make_template(db: Database, clock: FrozenClock, text: str) -> int:
    with db.work() as session:
        author = user_id(db, "emp_team")
        org = session.get_one(User, author).organization_id
        assert org is not None
        template = Template(
            organization_id=org,
            author_id=author,
            name="Follow-up",
            body=text,
            subject=None,
            shared=False,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(template)
        session.flush()
        return template.id


def test_a_retry_is_answered_after_its_template_was_edited_or_deleted(
    world: World, chat: int, clock: FrozenClock, db: Database
) -> None:
    tess = world["emp_team"]
    template = make_template(db, clock, "Hi {{candidate.first_name}}")
    url = f"/api/v1/conversations/{chat}/messages"
    sent = tess.post(url, {"template": template, "idempotency_key": "t-now"})
    first = body(sent, 201)
    later = {"template": template, "idempotency_key": "t-later", "send_at": at(clock, hours=1)}
    first_later = body(tess.post(url, later), 202)
    with db.work() as session:
        session.get_one(Template, template).body = "Hello {{candidate.first_name}}!"
    again = tess.post(url, {"template": template, "idempotency_key": "t-now"})
    assert body(again, 201) == first and again.headers["Idempotent-Replayed"] == "true"
    again = tess.post(url, later)
    assert body(again, 202) == first_later and again.headers["Idempotent-Replayed"] == "true"
    with db.work() as session:
        session.delete(session.get_one(Template, template))
    assert body(tess.post(url, {"template": template, "idempotency_key": "t-now"}), 201) == first
    assert body(tess.post(url, later), 202) == first_later
    # A different request with a used key is still a conflict.
    assert_error(tess.send(chat, "Other", idempotency_key="t-now"), 409, "idempotency_key_reused")
    assert_error(
        schedule(tess, chat, at(clock, hours=1), idempotency_key="t-now"),
        409,
        "idempotency_key_reused",
    )
    assert_error(tess.send(chat, "Other", idempotency_key="t-later"), 409, "idempotency_key_reused")
    assert count(db, Message) == 1 and count(db, ScheduledMessage) == 1


def test_a_retry_of_a_schedule_is_answered_after_the_message_was_edited(
    world: World, chat: int, clock: FrozenClock, db: Database
) -> None:
    tess = world["emp_team"]
    when = at(clock, hours=1)
    first = body(schedule(tess, chat, when, "Draft", idempotency_key="s-1"), 202)
    edited = body(
        tess.patch(f"{LIST}/{first['id']}", {"body": "Final", "send_at": at(clock, hours=2)}),
        200,
    )
    again = schedule(tess, chat, when, "Draft", idempotency_key="s-1")
    assert body(again, 202) == edited and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in schedule(tess, chat, when, "New").headers
    # The request as first made is what counts: the edited text is not it.
    assert_error(
        schedule(tess, chat, when, "Final", idempotency_key="s-1"), 409, "idempotency_key_reused"
    )
    assert_error(
        schedule(tess, chat, at(clock, hours=2), "Draft", idempotency_key="s-1"),
        409,
        "idempotency_key_reused",
    )
    assert count(db, ScheduledMessage) == 2


@pytest.mark.parametrize("key", ["scheduled-message:1", "jobchat-bulk:7:3"])
def test_the_services_own_key_prefixes_are_refused(
    world: World, chat: int, clock: FrozenClock, db: Database, key: str
) -> None:
    tess = world["emp_team"]
    assert_error(tess.send(chat, "Hi", idempotency_key=key), 422, fields={"idempotency_key"})
    assert_error(
        schedule(tess, chat, at(clock, hours=1), idempotency_key=key),
        422,
        fields={"idempotency_key"},
    )
    assert count(db, Message) == 0 and count(db, ScheduledMessage) == 0


# --- the list --------------------------------------------------------------------------------


def test_a_cursor_that_is_not_ones_own_is_422(world: World, chat: int, clock: FrozenClock) -> None:
    tess = world["emp_team"]
    mine = body(schedule(tess, chat, at(clock, hours=1)), 202)
    body(schedule(tess, chat, at(clock, hours=2)), 202)
    page = body(tess.get(LIST, after=mine["id"]), 200)
    assert [datetime.fromisoformat(i["send_at"]) for i in page["items"]] == [
        clock.now() + timedelta(hours=2)
    ]
    theirs = body(schedule(world["cand"], chat, at(clock, hours=1)), 202)
    for after in (theirs["id"], 999_999):
        assert_error(tess.get(LIST, after=after), 422, fields={"after"})
