"""Behaviours a code review found missing, each pinned by the request sequence that broke it."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from sqlalchemy import select

from jobchat.auth.csrf import csrf_token
from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.events.models import Event, EventType
from jobchat.messages.models import Delivery
from tests.support import Api, World, assert_error, body, sent, start


def cursor_of(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def test_unknown_refs_do_not_tell_an_outsider_whether_the_context_exists(world: World) -> None:
    """An outsider naming an unknown partner or user beside a real job or application gets the
    very answer they get for a job or application that does not exist."""
    outsider = world["other_emp"]
    pairs = [
        (
            outsider.start("agency_private", application="app1", with_user="nobody"),
            outsider.start("agency_private", application="no_such_app", with_user="nobody"),
        ),
        (
            outsider.start("job_partner", job="job1", partner="nobody"),
            outsider.start("job_partner", job="no_such_job", partner="nobody"),
        ),
    ]
    for real, missing in pairs:
        assert_error(real, 404, "not_found")
        assert real.content == missing.content


def test_a_send_that_waited_for_the_writer_lock_is_stamped_after_the_one_before(
    world: World, db: Database, clock: FrozenClock
) -> None:
    """Times follow commit order: a send that waited while another write held the lock gets
    the time it was written, not the time it arrived, so activity never moves back."""
    conv_id = start(world["emp_team"], "application", application="app1")
    arrived = clock.now()
    answers: list[dict[str, object]] = []

    def send() -> None:
        answers.append(sent(world["cand"].send(conv_id, "Waiting my turn")))

    with db.write():
        waiting = threading.Thread(target=send)
        waiting.start()
        time.sleep(0.5)  # the request is now blocked on the writer lock
        clock.advance(minutes=5)
    waiting.join(timeout=30)
    assert answers, "the send did not finish"
    assert answers[0]["created_at"] != arrived.isoformat().replace("+00:00", "Z")
    conv = body(world["cand"].get(f"/api/v1/conversations/{conv_id}"), 200)
    assert conv["updated_at"] == answers[0]["created_at"]
    stamped = conv["updated_at"].replace("Z", "+00:00")
    assert stamped.startswith(clock.now().isoformat()[:16])


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of("2026-01-05T09:00:00+00:00", str(2**64)),
        cursor_of("0001-01-01T00:30:00+01:00", "1"),
        cursor_of("9999-12-31T23:30:00-01:00", "1"),
        cursor_of("2026-01-05T09:00:00+00:00", "0"),
    ],
)
def test_inbox_cursors_out_of_range_are_422(world: World, cursor: str) -> None:
    """A cursor naming an id or a time no database can hold is refused, not a 500."""
    assert_error(world["emp_team"].inbox(cursor=cursor), 422, fields={"cursor"})


@pytest.mark.parametrize(
    "cursor", [cursor_of("A", str(2**70)), cursor_of("\ud800", "1"), cursor_of("a\x00", "1")]
)
def test_candidate_manager_cursors_that_cannot_be_stored_are_422(world: World, cursor: str) -> None:
    """The candidate manager's cursor is checked like any other input."""
    r = world["emp_team"].get("/api/v1/candidates", cursor=cursor)
    assert_error(r, 422, fields={"cursor"})


@pytest.mark.parametrize("when", ["9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00+01:00"])
def test_applied_at_out_of_range_is_422(api: Api, world: World, when: str) -> None:
    """A date that has no UTC equivalent is refused, naming the field."""
    r = api.integration.put(
        "/api/v1/applications/app9",
        {"job": "job1", "candidate": "cand2", "stage": "applied", "applied_at": when},
    )
    assert_error(r, 422, fields={"applied_at"})


def test_a_retried_send_after_the_conversation_ended_is_replayed(world: World) -> None:
    """The candidate's message was stored before the recruiter ended the conversation; its
    retry learns that it went out instead of being told the conversation is ended."""
    conv_id = start(world["emp_team"], "application", application="app1")
    first = sent(world["cand"].send(conv_id, "Here is my CV", idempotency_key="k1"))
    body(world["emp_team"].post(f"/api/v1/conversations/{conv_id}/end"), 200)
    retry = world["cand"].send(conv_id, "Here is my CV", idempotency_key="k1")
    assert retry.status_code == 201
    assert retry.json()["id"] == first["id"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    fresh = world["cand"].send(conv_id, "Hello?", idempotency_key="k2")
    assert_error(fresh, 409, "conversation_ended")


def test_hiding_the_newest_message_shows_the_one_before_as_last(world: World) -> None:
    """Deleting the newest message for me leaves the conversation's preview on the message
    before it, not empty."""
    conv_id = start(world["emp_team"], "application", application="app1")
    first = sent(world["emp_team"].send(conv_id, "first"))
    second = sent(world["cand"].send(conv_id, "second"))
    emp = world["emp_team"]
    assert emp.delete(f"/api/v1/messages/{second['id']}", **{"for": "me"}).status_code == 204
    conv = body(emp.get(f"/api/v1/conversations/{conv_id}"), 200)
    assert conv["last_message"]["id"] == first["id"]
    assert body(emp.inbox(), 200)["items"][0]["last_message"]["id"] == first["id"]
    # Others still see the newest one.
    cand_view = body(world["cand"].get(f"/api/v1/conversations/{conv_id}"), 200)
    assert cand_view["last_message"]["id"] == second["id"]


def test_deleting_for_everyone_blanks_the_content_in_the_event_log(
    world: World, db: Database
) -> None:
    """Clients replay the event log, so a message deleted for everyone keeps its content only on
    its own row (for audit): the message.created event shows the tombstone."""
    conv_id = start(world["emp_team"], "application", application="app1")
    message = sent(world["emp_team"].send(conv_id, "Salary band is 90-95k", subject=None))
    r = world["emp_team"].delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
    assert r.status_code == 204
    with db.read() as s:
        created = s.scalars(
            select(Event).where(
                Event.type == EventType.message_created, Event.message_id == message["id"]
            )
        ).one()
        assert created.data["body"] == ""
        assert created.data["deleted"] is True
        assert "90-95k" not in json.dumps([e.data for e in s.scalars(select(Event))])


def test_signing_out_from_another_site_is_refused(api: Api, world: World) -> None:
    """A cross-site form cannot sign a user out; our own page can."""
    client = api.client
    url = body(api.integration.post("/api/v1/users/emp_team/login-links"), 201)["url"]
    r = client.get(url.removeprefix("http://testserver"), follow_redirects=False)
    assert r.status_code == 303
    token = csrf_token(client.cookies["jobchat_session"])
    refused = client.post(
        "/logout", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert "Cross-site request refused" in refused.text
    assert client.get("/api/v1/me").status_code == 200
    r = client.post("/logout", data={"csrf": token}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    assert client.get("/api/v1/me").status_code == 401


def test_deleting_an_unsent_email_for_everyone_cancels_its_delivery(
    world: World, db: Database
) -> None:
    """An email deleted for everyone before it went out is never sent: its delivery is
    cancelled, and staff see that in the message's delivery state."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    message = sent(emp.send(conv_id, "Offer details", channel="email", subject="Your offer"))
    assert [d["status"] for d in message["deliveries"]] == ["queued"]
    assert emp.delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"}).status_code == 204
    history = body(emp.messages(conv_id), 200)["items"]
    assert [d["status"] for d in history[-1]["deliveries"]] == ["cancelled"]
    with db.read() as s:
        statuses = s.scalars(select(Delivery.status).where(Delivery.message_id == message["id"]))
        assert list(statuses) == ["cancelled"]


def test_member_events_carry_the_member_as_the_api_shows_it(
    world: World, api: Api, db: Database
) -> None:
    """member.added and member.removed name the member by external id, like every other part
    of the API, never by an internal row id."""
    conv_id = start(world["emp_team"], "job_relocation", job="job1")
    api.application("app2", "job1", "cand2", "offer_accepted")
    api.application("app2", "job1", "cand2", "withdrawn")
    with db.read() as s:
        events = s.scalars(
            select(Event)
            .where(Event.conversation_id == conv_id, Event.type.like("member.%"))
            .order_by(Event.id.desc())
            .limit(2)
        ).all()
    dan = {"id": "cand2", "name": "Dan Candidate", "kind": "candidate", "organization": None}
    assert [(e.type, e.data) for e in reversed(events)] == [
        ("member.added", {"member": dan}),
        ("member.removed", {"member": dan}),
    ]
