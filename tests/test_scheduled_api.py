"""Scheduled send through the API and the jobs worker, driven by the frozen clock."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from jobchat import access
from jobchat.background import build_worker
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import Worker
from jobchat.messages.actions import Limits, Outgoing, do_send_message
from jobchat.messages.models import Message
from jobchat.scheduling.actions import SCHEDULED_SEND_JOB, message_key
from jobchat.scheduling.models import ScheduledMessage
from jobchat.scheduling.requests import post_due
from jobchat.templates.models import Template
from tests.support import Api, As, World, assert_error, body, user_id

LIST = "/api/v1/scheduled-messages"
KEYS = {"id", "conversation", "send_at", "body", "subject", "channel", "status"}


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return build_worker(client.app.state.mail, texter=client.app.state.texter, name="test")  # type: ignore[attr-defined]


def drain(worker: Worker) -> int:
    return asyncio.run(worker.drain())


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def at(clock: FrozenClock, **delta: float) -> str:
    return (clock.now() + timedelta(**delta)).isoformat()


def schedule(who: As, conv: int, when: str, text: str = "Tomorrow then", **extra: Any) -> Any:
    return who.send(conv, text, send_at=when, **extra)


def scheduled(who: As, conv: int, when: str, text: str = "Tomorrow then", **extra: Any) -> Any:
    return body(schedule(who, conv, when, text, **extra), 202)


def history(who: As, conv: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body(who.messages(conv), 200)["items"]
    return items


def mine(who: As, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body(who.get(LIST, **params), 200)["items"]
    return items


def count(db: Database, model: Any, *where: Any) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- scheduling ------------------------------------------------------------------------------


def test_a_scheduled_message_answers_202_and_is_only_its_authors(
    world: World, chat: int, clock: FrozenClock
) -> None:
    tess = world["emp_team"]
    out = scheduled(tess, chat, at(clock, days=1), "  See you tomorrow  ")
    assert set(out) >= KEYS
    assert out["conversation"] == chat
    assert out["status"] == "scheduled"
    assert out["body"] == "See you tomorrow"
    assert out["subject"] is None and out["channel"] == "app"
    assert out["message"] is None and out["reason"] is None
    assert datetime.fromisoformat(out["send_at"]) == clock.now() + timedelta(days=1)
    # Nothing is in the conversation yet, for anyone.
    assert history(tess, chat) == []
    assert history(world["cand"], chat) == []
    assert body(tess.get(f"{LIST}/{out['id']}"), 200) == out
    assert mine(tess) == [out]
    for other in ("cand", "emp_admin", "sp_in"):
        assert_error(world[other].get(f"{LIST}/{out['id']}"), 404)
        assert mine(world[other]) == []
        assert_error(world[other].patch(f"{LIST}/{out['id']}", {"body": "x"}), 404)
        assert_error(world[other].delete(f"{LIST}/{out['id']}"), 404)
    assert_error(tess.get(f"{LIST}/999999"), 404)


def test_a_time_without_an_offset_is_utc(world: World, chat: int, clock: FrozenClock) -> None:
    naive = (clock.now() + timedelta(hours=3)).replace(tzinfo=None).isoformat()
    out = scheduled(world["emp_team"], chat, naive)
    assert datetime.fromisoformat(out["send_at"]) == clock.now() + timedelta(hours=3)
    zoned = "2026-01-06T08:00:00+01:00"
    out = scheduled(world["emp_team"], chat, zoned)
    assert datetime.fromisoformat(out["send_at"]) == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)


def test_bad_requests_are_refused_and_leave_nothing(
    world: World, chat: int, clock: FrozenClock, db: Database, settings: Settings
) -> None:
    tess = world["emp_team"]
    for when in (at(clock), at(clock, seconds=-1), at(clock, days=366), "tomorrow"):
        assert_error(schedule(tess, chat, when), 422, fields={"send_at"})
    assert_error(schedule(tess, chat, at(clock, days=1), "   "), 422, fields={"body"})
    assert_error(schedule(tess, chat, at(clock, days=1), channel="email"), 422, fields={"subject"})
    too_long = "x" * (settings.max_sms_chars + 1)
    assert_error(
        schedule(tess, chat, at(clock, days=1), too_long, channel="sms"), 422, fields={"body"}
    )
    # cand2 has no phone: a text cannot reach them.
    other = int(body(tess.start("application", application="app2"), 201)["id"])
    assert_error(schedule(tess, other, at(clock, days=1), channel="sms"), 422, fields={"channel"})
    # Not a member, or no such conversation: 404 alike.
    assert_error(schedule(world["sp_out"], chat, at(clock, days=1)), 404)
    assert_error(schedule(tess, 987654, at(clock, days=1)), 404)
    assert_error(tess.get(LIST, status="pending"), 422, fields={"status"})
    assert count(db, ScheduledMessage) == 0
    assert count(db, QueuedJob, QueuedJob.kind == SCHEDULED_SEND_JOB) == 0
    # A year ahead is still fine.
    scheduled(tess, chat, at(clock, days=365))


def test_a_candidate_cannot_schedule_into_an_ended_conversation(
    world: World, chat: int, clock: FrozenClock
) -> None:
    body(world["emp_team"].send(chat, "Hello"), 201)
    scheduled(world["cand"], chat, at(clock, hours=1), "Thanks!")
    assert body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    assert_error(schedule(world["cand"], chat, at(clock, hours=1)), 409, "conversation_ended")
    # Staff may: their message will reopen it, as a send now would.
    scheduled(world["emp_team"], chat, at(clock, hours=1))


def test_a_retry_with_the_same_key_is_stored_once(
    world: World, chat: int, clock: FrozenClock, db: Database, worker: Worker
) -> None:
    tess = world["emp_team"]
    when = at(clock, days=1)
    first = scheduled(tess, chat, when, idempotency_key="k-1")
    again = scheduled(tess, chat, when, idempotency_key="k-1")
    assert again == first
    assert_error(
        schedule(tess, chat, when, "Something else", idempotency_key="k-1"),
        409,
        "idempotency_key_reused",
    )
    assert count(db, ScheduledMessage) == 1
    assert count(db, QueuedJob, QueuedJob.kind == SCHEDULED_SEND_JOB) == 1
    # Even after it was sent, the retry answers with it (202 again), and nothing more is sent.
    clock.advance(days=2)
    drain(worker)
    replay = scheduled(tess, chat, when, idempotency_key="k-1")
    assert replay["id"] == first["id"] and replay["status"] == "sent"
    assert len(history(tess, chat)) == 1


# --- the list, changes and cancelling ----------------------------------------------------------


def test_the_list_is_soonest_first_and_filters_by_status(
    world: World, chat: int, clock: FrozenClock
) -> None:
    tess = world["emp_team"]
    late = scheduled(tess, chat, at(clock, days=3), "third")
    soon = scheduled(tess, chat, at(clock, hours=1), "first")
    mid = scheduled(tess, chat, at(clock, days=1), "second")
    assert [s["body"] for s in mine(tess)] == ["first", "second", "third"]
    assert tess.delete(f"{LIST}/{mid['id']}").status_code == 204
    assert [s["id"] for s in mine(tess, status="cancelled")] == [mid["id"]]
    assert [s["id"] for s in mine(tess, status="scheduled")] == [soon["id"], late["id"]]
    assert mine(tess, status="sent") == [] and mine(tess, status="failed") == []
    page = body(tess.get(LIST, limit=2), 200)
    assert [s["body"] for s in page["items"]] == ["first", "second"]
    rest = body(tess.get(LIST, limit=2, after=page["next_cursor"]), 200)
    assert [s["body"] for s in rest["items"]] == ["third"] and rest["next_cursor"] is None


def test_patch_changes_text_subject_and_time_with_the_same_checks(
    world: World, chat: int, clock: FrozenClock
) -> None:
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, days=1), "Hi", channel="email", subject="Interview")
    path = f"{LIST}/{s['id']}"
    clock.advance(minutes=5)
    out = body(tess.patch(path, {"body": "Hi again", "subject": "Your interview"}), 200)
    assert (out["body"], out["subject"], out["send_at"]) == (
        "Hi again",
        "Your interview",
        s["send_at"],
    )
    assert out["updated_at"] != s["updated_at"]
    out = body(tess.patch(path, {"send_at": at(clock, days=2)}), 200)
    assert datetime.fromisoformat(out["send_at"]) == clock.now() + timedelta(days=2)
    assert_error(tess.patch(path, {"send_at": at(clock, minutes=-1)}), 422, fields={"send_at"})
    assert_error(tess.patch(path, {"send_at": at(clock, days=400)}), 422, fields={"send_at"})
    assert_error(tess.patch(path, {"body": "  "}), 422, fields={"body"})
    assert_error(tess.patch(path, {"subject": ""}), 422, fields={"subject"})
    assert_error(tess.patch(path, {"channel": "app"}), 422, fields={"channel"})
    assert body(tess.get(path), 200) == out


def test_delete_cancels_and_nothing_changes_after(
    world: World, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, hours=1))
    path = f"{LIST}/{s['id']}"
    response = tess.delete(path)
    assert response.status_code == 204 and response.content == b""
    assert body(tess.get(path), 200)["status"] == "cancelled"
    assert_error(tess.delete(path), 409, "scheduled_cancelled")
    assert_error(tess.patch(path, {"body": "x"}), 409, "scheduled_cancelled")
    clock.advance(hours=2)
    drain(worker)
    assert history(tess, chat) == []


# --- the worker ----------------------------------------------------------------------------------


def test_it_is_posted_by_its_author_at_its_time_and_not_before(
    world: World, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, hours=1), "On time")
    clock.advance(minutes=59)
    drain(worker)
    assert history(tess, chat) == []
    clock.advance(minutes=1)
    drain(worker)
    [message] = history(world["cand"], chat)
    assert message["body"] == "On time" and message["author"]["id"] == "emp_team"
    assert datetime.fromisoformat(message["created_at"]) == clock.now()
    out = body(tess.get(f"{LIST}/{s['id']}"), 200)
    assert out["status"] == "sent" and out["message"] == message["id"]
    assert_error(tess.patch(f"{LIST}/{s['id']}", {"body": "late"}), 409, "scheduled_sent")
    assert_error(tess.delete(f"{LIST}/{s['id']}"), 409, "scheduled_sent")
    # The candidate has it unread, as any message.
    convo = body(world["cand"].get(f"/api/v1/conversations/{chat}"), 200)
    assert convo["unread_count"] == 1


def test_a_moved_message_is_sent_once_at_its_new_time(
    world: World, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    later = scheduled(tess, chat, at(clock, hours=1), "moved later")
    earlier = scheduled(tess, chat, at(clock, hours=3), "moved earlier")
    body(tess.patch(f"{LIST}/{later['id']}", {"send_at": at(clock, hours=4)}), 200)
    body(tess.patch(f"{LIST}/{earlier['id']}", {"send_at": at(clock, hours=2)}), 200)
    clock.advance(hours=1)
    drain(worker)  # the old job of "moved later" does nothing
    assert history(tess, chat) == []
    clock.advance(hours=1)
    drain(worker)
    assert [m["body"] for m in history(tess, chat)] == ["moved earlier"]
    clock.advance(hours=1)
    drain(worker)  # the old job of "moved earlier" does nothing
    assert [m["body"] for m in history(tess, chat)] == ["moved earlier"]
    clock.advance(hours=1)
    drain(worker)
    assert [m["body"] for m in history(tess, chat)] == ["moved earlier", "moved later"]


def test_never_twice_when_a_worker_dies_mid_way_or_its_job_runs_again(
    world: World, chat: int, clock: FrozenClock, worker: Worker, db: Database, settings: Settings
) -> None:
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, hours=1), "Exactly once")
    clock.advance(hours=1)
    limits = Limits.of(settings)
    with db.read() as session:
        job_id = session.scalars(
            select(QueuedJob.id).where(QueuedJob.kind == SCHEDULED_SEND_JOB)
        ).one()

    # A worker dies after posting, before its transaction commits: nothing of it remains.
    class Died(Exception):
        pass

    def post_and_die() -> None:
        with db.write() as session:
            assert post_due(session, s["id"], job_id, limits=limits, now=clock.now()) is not None
            assert session.scalar(select(func.count()).select_from(Message)) == 1
            raise Died

    with pytest.raises(Died):
        post_and_die()
    assert history(tess, chat) == []
    assert body(tess.get(f"{LIST}/{s['id']}"), 200)["status"] == "scheduled"

    drain(worker)
    assert len(history(tess, chat)) == 1
    # The job runs again (say its lease ran out before it was recorded): nothing more.
    with db.work() as session:
        session.execute(
            update(QueuedJob)
            .where(QueuedJob.id == job_id)
            .values(status=JobStatus.queued, run_at=clock.now())
        )
    drain(worker)
    with db.write() as session:
        assert post_due(session, s["id"], job_id, limits=limits, now=clock.now()) is None
    assert len(history(tess, chat)) == 1
    assert count(db, Message) == 1


def test_a_message_posted_but_not_marked_sent_is_not_posted_again(
    world: World, chat: int, clock: FrozenClock, worker: Worker, db: Database, settings: Settings
) -> None:
    """Should the message ever be stored without its status (the two are written together, but
    the key guards this too), the job finds the message by its key and marks it sent."""
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, hours=1), "Exactly once")
    clock.advance(hours=1)
    limits = Limits.of(settings)
    with db.write() as session:
        author = session.get_one(User, user_id(db, "emp_team"))
        conv, member = access.access_conversation(session, author, chat)
        message, _ = do_send_message(
            session,
            actor=author,
            conv=conv,
            member=member,
            out=Outgoing(body="Exactly once", idempotency_key=message_key(s["id"])),
            limits=limits,
            now=clock.now(),
        )
        first = message.id
    drain(worker)
    assert [m["id"] for m in history(tess, chat)] == [first]
    out = body(tess.get(f"{LIST}/{s['id']}"), 200)
    assert out["status"] == "sent" and out["message"] == first


def test_cancel_and_send_race_whoever_commits_first_wins(
    world: World, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    cancelled = scheduled(tess, chat, at(clock, hours=1), "cancelled in time")
    sent = scheduled(tess, chat, at(clock, hours=1), "sent first")
    clock.advance(hours=1)
    # Due, but the worker has not run yet: the cancel wins.
    assert tess.delete(f"{LIST}/{cancelled['id']}").status_code == 204
    drain(worker)
    assert [m["body"] for m in history(tess, chat)] == ["sent first"]
    # The send committed first: a cancel now is too late.
    assert_error(tess.delete(f"{LIST}/{sent['id']}"), 409, "scheduled_sent")


# --- failing once the author lost the right to post ------------------------------------------


def reason_of(who: As, scheduled_id: int) -> str:
    out = body(who.get(f"{LIST}/{scheduled_id}"), 200)
    assert out["status"] == "failed" and out["message"] is None, out
    reason: str = out["reason"]
    return reason


def test_it_fails_when_the_author_left_the_job_team(
    world: World, api: Api, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, hours=1))
    api.job("job1", "Registered Nurse", "acme", team=["emp_other"], partners=["tbb", "hireco"])
    clock.advance(hours=1)
    drain(worker)
    assert reason_of(tess, s["id"]) == "You are no longer a member of this conversation."
    assert history(world["cand"], chat) == []


def test_it_fails_when_the_author_was_deactivated(
    world: World, api: Api, chat: int, clock: FrozenClock, worker: Worker, db: Database
) -> None:
    s = scheduled(world["emp_team"], chat, at(clock, hours=1))
    assert api.integration.delete("/api/v1/users/emp_team").status_code == 204
    clock.advance(hours=1)
    drain(worker)
    with db.read() as session:
        row = session.get_one(ScheduledMessage, s["id"])
        assert (row.status, row.reason) == (
            "failed",
            "Your account was deactivated before it was due.",
        )
    assert history(world["cand"], chat) == []


def test_a_candidates_fails_when_the_conversation_was_ended(
    world: World, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    cand = world["cand"]
    body(world["emp_team"].send(chat, "Hello"), 201)
    s = scheduled(cand, chat, at(clock, hours=1), "Thank you!")
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    clock.advance(hours=1)
    drain(worker)
    assert "ended" in reason_of(cand, s["id"])
    assert [m["body"] for m in history(cand, chat)] == ["Hello"]


def test_it_fails_when_the_job_was_closed(
    world: World, api: Api, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, hours=1))
    api.job(
        "job1",
        "Registered Nurse",
        "acme",
        team=["emp_team"],
        partners=["tbb", "hireco"],
        status="closed",
    )
    clock.advance(hours=1)
    drain(worker)
    assert "job is closed" in reason_of(tess, s["id"])


def test_a_text_fails_when_the_candidate_withdrew_consent(
    world: World, api: Api, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    s = scheduled(tess, chat, at(clock, hours=1), "Are you free?", channel="sms")
    api.candidate("cand", "Carla Candidate", sms_consent=False)
    clock.advance(hours=1)
    drain(worker)
    assert reason_of(tess, s["id"]).startswith("It could not be sent: ")
    assert history(tess, chat) == []


# --- channels and templates --------------------------------------------------------------------


def test_email_and_sms_are_posted_with_their_deliveries(
    world: World, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    tess = world["emp_team"]
    scheduled(tess, chat, at(clock, hours=1), "By email", channel="email", subject="Interview")
    scheduled(tess, chat, at(clock, hours=2), "By text", channel="sms")
    clock.advance(hours=2)
    drain(worker)
    email, text = history(tess, chat)
    assert (email["body"], email["channel"], email["subject"]) == ("By email", "email", "Interview")
    assert [d["channel"] for d in email["deliveries"]] == ["email"]
    assert (text["body"], text["channel"]) == ("By text", "sms")
    assert [d["channel"] for d in text["deliveries"]] == ["sms"]
    assert [s["status"] for s in mine(tess)] == ["sent", "sent"]


def test_a_template_is_filled_in_when_scheduled(
    world: World, chat: int, clock: FrozenClock, worker: Worker, db: Database
) -> None:
    tess = world["emp_team"]
    with db.work() as session:
        author = user_id(db, "emp_team")
        org = session.get_one(User, author).organization_id
        assert org is not None
        template = Template(
            organization_id=org,
            author_id=author,
            name="Follow-up",
            body="Hi {{candidate.first_name}}, about {{job.title}}",
            subject="{{job.title}}",
            shared=False,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(template)
        session.flush()
        template_id = template.id
    out = body(
        tess.post(
            f"/api/v1/conversations/{chat}/messages",
            {"template": template_id, "channel": "email", "send_at": at(clock, hours=1)},
        ),
        202,
    )
    assert out["body"] == "Hi Carla, about Registered Nurse"
    assert out["subject"] == "Registered Nurse"
    clock.advance(hours=1)
    drain(worker)
    [message] = history(tess, chat)
    assert message["body"] == "Hi Carla, about Registered Nurse"


def test_cancels_racing_the_worker_each_have_one_outcome(
    world: World, chat: int, clock: FrozenClock, worker: Worker
) -> None:
    """Cancels sent while the worker posts the same messages: each message is either sent
    (once) and its cancel refused, or cancelled and never sent, whichever committed first."""
    tess = world["emp_team"]
    ids = [scheduled(tess, chat, at(clock, hours=1), f"race {i}")["id"] for i in range(8)]
    clock.advance(hours=1)
    answers: dict[int, int] = {}

    def cancel_all() -> None:
        for scheduled_id in ids:
            answers[scheduled_id] = tess.delete(f"{LIST}/{scheduled_id}").status_code

    canceller = threading.Thread(target=cancel_all)
    canceller.start()
    drain(worker)
    canceller.join()
    drain(worker)
    posted = [m["body"] for m in history(tess, chat)]
    assert len(posted) == len(set(posted))
    for scheduled_id in ids:
        out = body(tess.get(f"{LIST}/{scheduled_id}"), 200)
        if out["status"] == "sent":
            assert answers[scheduled_id] == 409 and out["body"] in posted
        else:
            assert out["status"] == "cancelled" and answers[scheduled_id] == 204
            assert out["body"] not in posted
