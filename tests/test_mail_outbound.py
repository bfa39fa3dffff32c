"""Email-channel messages go out through the jobs worker to a real SMTP server on loopback:
the right headers, threading, delivery status in the API, retries through an outage, exactly
once, and failures that end visibly."""

from __future__ import annotations

import re
import socket
from email.utils import parseaddr
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.background import build_worker
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import RetryPolicy, claim_due, finish
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.mail.service import MailService
from tests.mail_support import SmtpSink, drain, sink, smtp_settings, worker_for
from tests.support import World, body

CANDIDATE = "cand@example.org"
REPLY_ADDRESS = re.compile(r"^r-\d+-\d+-[a-z2-7]{21}@reply\.example\.com$")


__all__ = ["sink"]  # the SMTP sink fixture, from tests/mail_support.py


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return smtp_settings(
        settings, sink, job_backoff_seconds=10, job_backoff_max_seconds=600, job_max_attempts=6
    )


def application_chat(world: World) -> int:
    conv = body(world["emp_team"].start("application", application="app1"), 201)
    return int(conv["id"])


def send_email(
    world: World, conv_id: int, text: str = "Can you do Tuesday at 10?", **extra: Any
) -> dict[str, Any]:
    return body(
        world["emp_team"].send(conv_id, text, channel="email", subject="Interview", **extra), 201
    )


def delivery_of(world: World, conv_id: int, message_id: int) -> dict[str, Any]:
    items = body(world["emp_team"].messages(conv_id), 200)["items"]
    (message,) = [m for m in items if m["id"] == message_id]
    (delivery,) = message["deliveries"]
    return dict(delivery)


def test_an_email_message_reaches_the_candidate_as_a_proper_email(
    world: World, client: TestClient, sink: SmtpSink
) -> None:
    conv = application_chat(world)
    sent = send_email(world, conv, "Can you do Tuesday at 10?\nBring your <passport>.")
    assert sent["deliveries"][0]["status"] == "queued"

    assert drain(worker_for(client.app)) >= 1  # type: ignore[arg-type]

    (mail,) = sink.received
    assert mail.rcpt_tos == ["cand@example.org"]
    # VERP: the envelope sender is this email's own bounce address.
    assert re.fullmatch(r"b-m-\d+-[a-z2-7]+@reply\.example\.com", mail.mail_from), mail.mail_from
    message = mail.message
    assert parseaddr(message["From"]) == ("Tess Team", "hiring@example.com")
    assert parseaddr(message["To"]) == ("Carla Candidate", "cand@example.org")
    assert message["Subject"] == "Interview"
    reply_to = parseaddr(message["Reply-To"])[1]
    assert REPLY_ADDRESS.match(reply_to), reply_to
    assert re.fullmatch(r"<m-\d+-[a-z2-7]+@reply\.example\.com>", message["Message-ID"])
    assert message["Date"]
    assert "Can you do Tuesday at 10?\nBring your <passport>." in mail.text()
    html = mail.html()
    assert "Bring your &lt;passport&gt;." in html and "<passport>" not in html
    assert message["Auto-Submitted"] is None  # a person wrote it

    delivery = delivery_of(world, conv, sent["id"])
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 1
    assert delivery["last_error"] is None


def test_later_emails_of_a_conversation_thread_under_the_first(
    world: World, client: TestClient, sink: SmtpSink
) -> None:
    conv = application_chat(world)
    worker = worker_for(client.app)  # type: ignore[arg-type]
    send_email(world, conv, "First")
    drain(worker)
    send_email(world, conv, "Second")
    drain(worker)
    send_email(world, conv, "Third")
    drain(worker)

    first, second, third = (d.message for d in sink.received)
    assert first["In-Reply-To"] is None and first["References"] is None
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert third["In-Reply-To"] == second["Message-ID"]
    assert third["References"] == f"{first['Message-ID']} {second['Message-ID']}"
    # One reply address per recipient and conversation, whatever the email.
    assert first["Reply-To"] == second["Reply-To"] == third["Reply-To"]
    assert len({m["Message-ID"] for m in (first, second, third)}) == 3
    # Each connection greets the server with this host's name (looked up once, not per email).
    assert [d.helo for d in sink.received] == [socket.getfqdn()] * 3


def test_reply_addresses_differ_by_conversation_and_cannot_be_made_up(
    world: World, client: TestClient
) -> None:
    mail: MailService = client.app.state.mail  # type: ignore[attr-defined]
    keys = mail.keys
    address = keys.reply_address(7, 9)
    assert keys.parse_reply_address(address) == (7, 9)
    assert keys.parse_reply_address(address.upper()) == (7, 9)  # case folded on the way
    assert keys.reply_address(7, 10) != address
    forged = address.replace("r-7-9-", "r-7-10-")
    assert keys.parse_reply_address(forged) is None
    assert keys.parse_reply_address(address.replace("reply.example.com", "evil.example")) is None


def test_mail_sent_while_the_server_is_down_goes_out_once_when_it_is_back(
    world: World, client: TestClient, sink: SmtpSink, clock: FrozenClock
) -> None:
    conv = application_chat(world)
    sent = send_email(world, conv)
    sink.stop()
    worker = worker_for(client.app)  # type: ignore[arg-type]

    # Down for minutes: each attempt fails and the next one waits longer.
    waits = []
    for attempt in (1, 2, 3):
        drain(worker)
        delivery = delivery_of(world, conv, sent["id"])
        assert delivery["status"] == "queued"
        assert delivery["attempts"] == attempt
        assert delivery["last_error"]
        job = _only_job(client)
        assert job.status == JobStatus.queued
        waits.append((job.run_at - clock.now()).total_seconds())
        assert drain(worker) == 0  # not due yet: nothing runs
        clock.advance(seconds=waits[-1] + 1)
    assert 8 <= waits[0] <= 10 and 16 <= waits[1] <= 20 and 32 <= waits[2] <= 40

    sink.start()
    drain(worker)
    drain(worker)
    clock.advance(hours=1)
    drain(worker)

    assert len(sink.to(CANDIDATE)) == 1
    delivery = delivery_of(world, conv, sent["id"])
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 4
    assert _only_job(client).status == JobStatus.done


def test_a_restart_loses_nothing_and_a_dead_workers_job_is_taken_up_again(
    world: World, settings: Settings, db: Database, clock: FrozenClock, sink: SmtpSink
) -> None:
    conv = application_chat(world)
    sent = send_email(world, conv)
    # A worker takes the job (the first queued; the notification ladder's comes next) and dies
    # before it sends anything.
    with db.work() as session:
        (taken,) = claim_due(
            session, now=clock.now(), worker="dead", policy=RetryPolicy.of(settings), limit=1
        )
    assert taken.kind == "email.delivery"
    assert sink.received == []

    # Another process: its own mail service and worker, on the same database.
    worker = build_worker(MailService.create(db, clock, settings), name="new")
    drain(worker)
    assert sink.received == []  # the dead worker's lease has not run out yet
    clock.advance(seconds=settings.job_lease_seconds + 1)
    drain(worker)
    assert len(sink.to(CANDIDATE)) == 1
    assert delivery_of(world, conv, sent["id"])["status"] == "sent"
    # The dead worker, were it to come back, cannot record anything over it.
    with db.work() as session:
        assert not finish(session, taken.id, worker="dead", attempt=taken.attempt, now=clock.now())


def test_a_refused_address_fails_at_once_with_the_servers_reason(
    world: World, client: TestClient, sink: SmtpSink
) -> None:
    sink.refuse.add("cand@example.org")
    conv = application_chat(world)
    sent = send_email(world, conv)
    drain(worker_for(client.app))  # type: ignore[arg-type]

    delivery = delivery_of(world, conv, sent["id"])
    assert delivery["status"] == "failed"
    assert "550" in delivery["last_error"] and "No such user" in delivery["last_error"]
    job = _only_job(client)
    assert job.status == JobStatus.failed and job.attempts == 1
    assert sink.received == []
    # The integration sees what failed and why.
    failed = body(world.api.integration.get("/api/v1/background-jobs", status="failed"), 200)
    assert failed["counts"]["failed"] == 1  # (the notification ladder's job is done)
    (listed,) = failed["items"]
    assert listed["kind"] == "email.delivery" and listed["attempts"] == 1
    assert "550" in listed["last_error"]
    assert world["emp_admin"].get("/api/v1/background-jobs").status_code == 403


def test_a_job_that_keeps_failing_ends_failed_with_its_reason(
    world: World, client: TestClient, sink: SmtpSink, clock: FrozenClock
) -> None:
    sink.busy = True  # 451 on every attempt: temporary, so retried, until attempts run out
    conv = application_chat(world)
    sent = send_email(world, conv)
    worker = worker_for(client.app)  # type: ignore[arg-type]
    for _ in range(6):
        drain(worker)
        clock.advance(minutes=15)
    job = _only_job(client)
    assert job.status == JobStatus.failed
    assert job.attempts == 6
    assert "451" in (job.last_error or "")
    delivery = delivery_of(world, conv, sent["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 6
    assert "451" in delivery["last_error"]


def test_a_message_deleted_for_everyone_before_it_went_out_is_never_sent(
    world: World, client: TestClient, sink: SmtpSink
) -> None:
    conv = application_chat(world)
    sent = send_email(world, conv)
    assert (
        world["emp_team"]
        .delete(f"/api/v1/messages/{sent['id']}", **{"for": "everyone"})
        .status_code
        == 204
    )
    drain(worker_for(client.app))  # type: ignore[arg-type]
    assert sink.received == []
    assert delivery_of(world, conv, sent["id"])["status"] == "cancelled"
    assert _only_job(client).status == JobStatus.done


def test_a_retried_send_queues_one_email(world: World, client: TestClient, sink: SmtpSink) -> None:
    conv = application_chat(world)
    first = send_email(world, conv, idempotency_key="k-1")
    again = world["emp_team"].send(
        conv,
        "Can you do Tuesday at 10?",
        channel="email",
        subject="Interview",
        idempotency_key="k-1",
    )
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    drain(worker_for(client.app))  # type: ignore[arg-type]
    assert len(sink.received) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_credentials_from_the_url_are_used(
    world: World, settings: Settings, db: Database, clock: FrozenClock
) -> None:
    from jobchat.app import create_app

    sink = SmtpSink(credentials=("mailer", "p@ss word")).start()
    try:
        url = f"smtp://mailer:p%40ss%20word@127.0.0.1:{sink.port}"
        app = create_app(settings.model_copy(update={"smtp_url": url}), db=db, clock=clock)
        with TestClient(app):
            conv = application_chat(world)
            send_email(world, conv)
            drain(worker_for(app))
        assert sink.logins == ["mailer"]
        assert len(sink.received) == 1
    finally:
        sink.stop()


def _only_job(client: TestClient) -> QueuedJob:
    db: Database = client.app.state.jobchat.db  # type: ignore[attr-defined]
    with db.read() as session:
        (job,) = session.scalars(select(QueuedJob).where(QueuedJob.kind == "email.delivery"))
        return job
