"""Bulk messages through the API: each candidate gets their own rendered message in their own
application chat, the unreachable are skipped with a reason (decided when their turn comes),
a retried request sends nothing twice, and 1,000 recipients go through."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.directory.actions import do_upsert_application, do_upsert_candidate
from jobchat.directory.models import User
from jobchat.directory.schemas import ApplicationIn, CandidateIn
from jobchat.jobqueue.models import QueuedJob
from jobchat.jobqueue.worker import Worker
from jobchat.scheduling.bulk.models import BulkRecipient
from jobchat.templates.models import Template
from tests.mail_support import drain, worker_for
from tests.support import Api, As, World, assert_error, body

BULK = "/api/v1/bulk-messages"
HELLO = (
    "Hi {{candidate.first_name}}, about {{job.title}} at {{employer.name}} ({{application.stage}})"
)


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


def template(db: Database, author: str, text: str, subject: str | None = None) -> int:
    """A saved template (its API is another package's; here it is only something to send)."""
    with db.write() as session:
        user = session.scalars(select(User).where(User.ext_id == author)).one()
        assert user.organization_id is not None
        row = Template(
            organization_id=user.organization_id,
            author_id=user.id,
            name="Hello",
            body=text,
            subject=subject,
            shared=False,
            created_at=user_now(),
            updated_at=user_now(),
        )
        session.add(row)
        session.flush()
        return row.id


def applicants(db: Database, n: int, job: str = "job1") -> list[str]:
    """``n`` candidates who applied to ``job``, written as the integration API writes them (its
    actions, in one transaction: 2n requests would take most of a test's time)."""
    now = FrozenClock().now()
    with db.write() as session:
        for i in range(n):
            person = CandidateIn(name=f"Person {i}", email=f"c{i}@example.org")
            do_upsert_candidate(session, f"c{i}", person, region="US", now=now)
            applied = ApplicationIn(job=job, candidate=f"c{i}", stage="applied")
            do_upsert_application(session, f"x{i}", applied, now=now)
    return [f"x{i}" for i in range(n)]


def user_now() -> Any:
    return FrozenClock().now()


def thread_of(who: As, application: str) -> list[dict[str, Any]]:
    """The messages of ``who``'s application chats about ``application``."""
    convs = body(who.inbox(), 200)["items"]
    out = []
    for conv in convs:
        if conv["kind"] == "application" and conv["application"] == application:
            out += body(who.messages(conv["id"]), 200)["items"]
    return out


def post(who: As, **fields: Any) -> dict[str, Any]:
    return body(who.post(BULK, {"channel": "app", **fields}), 202)


def test_each_candidate_gets_their_own_message_and_the_rest_are_skipped_with_reasons(
    world: World, worker: Worker
) -> None:
    tess = world["emp_team"]
    queued = post(tess, applications=["app1", "app2", "nope", "app1"], body=HELLO)
    assert queued["status"] == "queued" and queued["total"] == 3 and queued["sent"] == 0
    assert queued["skipped"] == [
        {
            "application": "nope",
            "code": "unknown_application",
            "reason": "There is no application with that id that you can see.",
        }
    ]
    drain(worker)
    done = body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert done["status"] == "done" and done["sent"] == 2 and done["pending"] == 0
    assert [r["status"] for r in done["recipients"]] == ["sent", "sent", "skipped"]

    carla = thread_of(world["cand"], "app1")
    dan = thread_of(world["cand2"], "app2")
    assert [m["body"] for m in carla] == [
        "Hi Carla, about Registered Nurse at Acme Health (offer accepted)"
    ]
    assert [m["body"] for m in dan] == ["Hi Dan, about Registered Nurse at Acme Health (interview)"]
    # Nobody sees the others: each candidate is in exactly one chat, their own.
    assert [c["application"] for c in body(world["cand"].inbox(), 200)["items"]] == ["app1"]
    assert [c["application"] for c in body(world["cand2"].inbox(), 200)["items"]] == ["app2"]
    by_app = {r["application"]: r for r in done["recipients"]}
    assert by_app["app1"]["message"] == carla[0]["id"]
    assert by_app["app1"]["conversation"] != by_app["app2"]["conversation"]


def test_an_existing_chat_is_reused_and_someone_without_the_right_is_skipped(
    world: World, worker: Worker
) -> None:
    chat = body(world["emp_team"].start("application", application="app1"), 201)["id"]
    queued = post(world["emp_team"], applications=["app1"], body="Hello again")
    drain(worker)
    done = body(world["emp_team"].get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert done["recipients"][0]["conversation"] == chat
    # The source partner sees the application but may not open the hiring team's chat with
    # the candidate: skipped, never an error.
    by_partner = post(world["sp_in"], applications=["app1"], body="Hi")
    drain(worker)
    (skip,) = body(world["sp_in"].get(f"{BULK}/{by_partner['id']}"), 200)["skipped"]
    assert skip["code"] == "not_allowed" and "hiring team" in skip["reason"]


def test_access_is_decided_at_send_time(api: Api, world: World, worker: Worker) -> None:
    api.job("job2", "Porter", "acme", team=["emp_team"])
    api.application("app3", "job2", "cand2", "applied")
    tess = world["emp_team"]
    queued = post(tess, applications=["app1", "app3"], body="Hello")
    # Between queueing and sending: job1 closes, and Tess leaves job2's team.
    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], status="closed")
    api.job("job2", "Porter", "acme", team=["emp_other"])
    drain(worker)
    done = body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert done["sent"] == 0
    assert {s["application"]: s["code"] for s in done["skipped"]} == {
        "app1": "job_closed",
        "app3": "unknown_application",
    }
    assert body(world["cand"].inbox(), 200)["items"] == []


def test_nothing_more_goes_out_for_an_author_deactivated_since(
    api: Api, world: World, worker: Worker, db: Database
) -> None:
    post(world["emp_team"], applications=["app1", "app2"], body="Hello")
    assert api.integration.delete("/api/v1/users/emp_team").status_code == 204
    drain(worker)
    with db.read() as session:  # its author can no longer sign in to look
        codes = session.scalars(select(BulkRecipient.code)).all()
    assert codes == ["author_deactivated", "author_deactivated"]
    assert body(world["cand"].inbox(), 200)["items"] == []
    assert body(world["cand2"].inbox(), 200)["items"] == []


def test_email_from_a_template_renders_its_subject_per_candidate(
    world: World, worker: Worker, db: Database
) -> None:
    tid = template(db, "emp_team", "Dear {{candidate.name}}", "{{job.title}}: next steps")
    queued = post(world["emp_team"], applications=["app1", "app2"], template=tid, channel="email")
    assert queued["template"] == tid
    drain(worker)
    (m,) = thread_of(world["cand2"], "app2")
    assert (m["subject"], m["body"], m["channel"]) == (
        "Registered Nurse: next steps",
        "Dear Dan Candidate",
        "email",
    )


def test_a_retry_with_the_same_key_sends_nothing_twice(world: World, worker: Worker) -> None:
    tess = world["emp_team"]
    request = {"applications": ["app1", "app2"], "body": "Once", "idempotency_key": "k-1"}
    first = post(tess, **request)
    drain(worker)
    again = tess.post(BULK, {"channel": "app", **request})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first["id"] and again.json()["status"] == "done"
    drain(worker)
    assert [m["body"] for m in thread_of(world["cand"], "app1")] == ["Once"]
    assert [m["body"] for m in thread_of(world["cand2"], "app2")] == ["Once"]
    other = tess.post(BULK, {"channel": "app", **request, "body": "Twice"})
    assert_error(other, 409, "idempotency_key_reused")


def test_send_at_delays_the_start(world: World, worker: Worker, clock: FrozenClock) -> None:
    at = clock.now() + timedelta(hours=2)
    queued = post(world["emp_team"], applications=["app1"], body="Later", send_at=at.isoformat())
    drain(worker)
    assert body(world["emp_team"].get(f"{BULK}/{queued['id']}"), 200)["status"] == "queued"
    assert thread_of(world["cand"], "app1") == []
    clock.advance(hours=2)
    drain(worker)
    assert body(world["emp_team"].get(f"{BULK}/{queued['id']}"), 200)["status"] == "done"
    assert [m["body"] for m in thread_of(world["cand"], "app1")] == ["Later"]


def test_bad_requests_are_refused_whole_and_nothing_is_queued(
    world: World, db: Database, clock: FrozenClock
) -> None:
    tess = world["emp_team"]

    def refused(status: int, fields: set[str] | None, **given: Any) -> None:
        assert_error(tess.post(BULK, given), status, fields=fields)

    one = ["app1"]
    refused(
        422, {"applications"}, applications=[f"a{i}" for i in range(1001)], body="x", channel="app"
    )
    refused(422, {"applications"}, applications=[], body="x", channel="app")
    refused(422, {"body"}, applications=one, channel="app")
    refused(422, {"body"}, applications=one, body="x", template=1, channel="app")
    refused(422, {"template"}, applications=one, template=999, channel="app")
    refused(422, {"body"}, applications=one, body="Hi {{candidate.age}}", channel="app")
    refused(422, {"body"}, applications=one, body="x" * 1601, channel="sms")
    refused(422, {"subject"}, applications=one, body="x", channel="email")
    refused(422, {"channel"}, applications=one, body="x", channel="fax")
    refused(422, {"channel"}, applications=one, body="x")
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    refused(422, {"send_at"}, applications=one, body="x", channel="app", send_at=past)
    far = (clock.now() + timedelta(days=400)).isoformat()
    refused(422, {"send_at"}, applications=one, body="x", channel="app", send_at=far)
    # Someone else's template reads as unknown.
    theirs = template(db, "emp_other", "Hi")
    refused(422, {"template"}, applications=one, template=theirs, channel="app")
    assert_error(
        world["cand"].post(BULK, {"applications": one, "body": "x", "channel": "app"}), 403
    )
    with db.read() as session:
        assert session.scalars(select(QueuedJob)).all() == []


def test_progress_is_light_to_poll_and_lists_every_recipient_on_request(
    world: World, worker: Worker
) -> None:
    queued = post(world["emp_team"], applications=["app1", "nope"], body="Hi")
    drain(worker)
    light = body(world["emp_team"].get(f"{BULK}/{queued['id']}"), 200)
    assert light["recipients"] is None and light["sent"] == 1
    assert [s["application"] for s in light["skipped"]] == ["nope"]
    full = body(world["emp_team"].get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert [r["application"] for r in full["recipients"]] == ["app1", "nope"]


def test_only_the_author_sees_a_bulk_message(world: World) -> None:
    queued = post(world["emp_team"], applications=["app1"], body="Mine")
    assert_error(world["emp_admin"].get(f"{BULK}/{queued['id']}", recipients="true"), 404)
    assert_error(world["emp_team"].get(f"{BULK}/{queued['id'] + 1}"), 404)


@pytest.mark.slow  # a thousand sends through the worker: ~25 s on the 2-core machine
def test_a_thousand_recipients(world: World, worker: Worker, db: Database) -> None:
    apps = applicants(db, 1000)
    tess = world["emp_team"]
    queued = post(tess, applications=apps, body="Hello {{candidate.name}}")
    assert queued["total"] == 1000 and queued["skipped"] == []
    drain(worker)
    done = body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert (done["status"], done["sent"], done["skipped"]) == ("done", 1000, [])
    messages = {r["message"] for r in done["recipients"]}
    conversations = {r["conversation"] for r in done["recipients"]}
    assert len(messages) == 1000 and len(conversations) == 1000
    last = thread_of(world.api.as_candidate("c999"), "x999")
    assert [m["body"] for m in last] == ["Hello Person 999"]
