"""Unread-message notifications: one email per conversation holding everything still unread,
JOBCHAT_NOTIFY_DELAY_SECONDS after the first unread message, never for what was read in time,
never to someone who turned them off; in the recipient's timezone, with a sign-in link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from tests.mail_support import Delivered, SmtpSink, drain, sink, smtp_settings, worker_for
from tests.support import World, body

CANDIDATE = "cand@example.org"
TEAM = "emp_team@example.com"
LINK = re.compile(r"http://testserver/login/(jcl_[\w-]+)\?next=/conversations/(\d+)")


__all__ = ["sink"]  # the SMTP sink fixture, from tests/mail_support.py


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return smtp_settings(settings, sink, notify_delay_seconds=120)


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


@pytest.fixture
def chat(world: World) -> int:
    world.api.candidate(
        "cand",
        "Carla Candidate",
        source_partner="tbb",
        phone="+14155550123",
        sms_consent=True,
        timezone="Europe/Berlin",
    )
    world.api.application(
        "app1",
        "job1",
        "cand",
        "offer_accepted",
        stage_owner="emp_team",
        agency_user="agency_user",
        applied_at="2025-12-30T23:30:00Z",  # already 31 December in Berlin
    )
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def only(mails: list[Delivered]) -> Delivered:
    assert len(mails) == 1, [m.message["Subject"] for m in mails]
    return mails[0]


def test_a_candidate_gets_one_email_with_every_unread_message_after_the_delay(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    body(world["emp_team"].send(chat, "Thanks for applying!"), 201)
    clock.advance(seconds=30)
    body(world["emp_team"].send(chat, "Are you free on <Tuesday>?"), 201)

    clock.advance(seconds=89)  # 119 s after the first message
    drain(worker)
    assert sink.to(CANDIDATE) == []

    clock.advance(seconds=2)
    drain(worker)
    mail = only(sink.to(CANDIDATE))
    message = mail.message
    assert message["Subject"] == "2 unread messages: Registered Nurse · Acme Health"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["From"] == "Acme Hiring <hiring@example.com>"
    assert re.match(r"r-\d+-\d+-[a-z2-7]+@reply\.example\.com", message["Reply-To"])
    text = mail.text()
    assert "Hello Carla Candidate," in text
    # The sender's name, previews, the job, the date applied: in the candidate's timezone.
    assert "Tess Team (Acme Health), Mon 5 Jan 2026, 10:00 CET:\nThanks for applying!" in text
    assert "Tess Team (Acme Health), Mon 5 Jan 2026, 10:00 CET:\nAre you free on <Tuesday>?" in text
    assert "Job: Registered Nurse" in text
    assert "You applied on 31 December 2025." in text
    link = LINK.search(text)
    assert link is not None and int(link[2]) == chat
    assert "Are you free on &lt;Tuesday&gt;?" in mail.html()

    # Nothing new: no second email, however long it stays unread.
    clock.advance(hours=5)
    drain(worker)
    assert len(sink.to(CANDIDATE)) == 1

    # A new message starts a new clock, and the next email holds only what is new.
    body(world["emp_team"].send(chat, "Reminder: the interview is tomorrow."), 201)
    clock.advance(seconds=121)
    drain(worker)
    second = sink.to(CANDIDATE)[1]
    assert second.message["Subject"] == "1 unread message: Registered Nurse · Acme Health"
    assert "Reminder: the interview is tomorrow." in second.text()
    assert "Thanks for applying!" not in second.text()
    # Both notifications thread together in the mail client.
    assert second.message["In-Reply-To"] == mail.message["Message-ID"]


def test_the_link_signs_the_candidate_straight_into_the_chat(
    world: World, client: TestClient, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    body(world["emp_team"].send(chat, "Hello"), 201)
    clock.advance(seconds=121)
    drain(worker)
    link = LINK.search(only(sink.to(CANDIDATE)).text())
    assert link is not None

    response = client.get(link[0].removeprefix("http://testserver"), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/conversations/{chat}"
    page = client.get(f"/conversations/{chat}")
    assert page.status_code == 200
    assert "Hello" in page.text and "Carla Candidate" in page.text


def test_no_email_for_messages_read_in_time(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    body(world["emp_team"].send(chat, "Hello"), 201)
    clock.advance(seconds=60)
    body(world["cand"].post(f"/api/v1/conversations/{chat}/read"), 200)
    clock.advance(seconds=600)
    drain(worker)
    assert sink.to(CANDIDATE) == []


def test_no_email_for_someone_who_turned_notifications_off(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    body(world["cand"].patch("/api/v1/me", {"email_notifications": False}), 200)
    body(world["emp_team"].send(chat, "Hello"), 201)
    clock.advance(seconds=600)
    drain(worker)
    assert sink.to(CANDIDATE) == []


def test_no_email_for_a_message_deleted_before_it_was_due(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    sent = body(world["emp_team"].send(chat, "Oops, wrong person"), 201)
    clock.advance(seconds=30)
    response = world["emp_team"].delete(f"/api/v1/messages/{sent['id']}", **{"for": "everyone"})
    assert response.status_code == 204
    clock.advance(seconds=600)
    drain(worker)
    assert sink.to(CANDIDATE) == []


def test_an_email_message_is_not_followed_by_a_notification_of_itself(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    body(world["emp_team"].send(chat, "Our offer", channel="email", subject="Offer"), 201)
    clock.advance(seconds=600)
    drain(worker)
    mail = only(sink.to(CANDIDATE))
    assert mail.message["Subject"] == "Offer"


def test_staff_are_told_which_candidate_and_job_it_is_about_in_their_timezone(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    body(world["emp_team"].patch("/api/v1/me", {"timezone": "America/New_York"}), 200)
    body(world["cand"].send(chat, "Yes, Tuesday works."), 201)
    clock.advance(seconds=121)
    drain(worker)
    mail = only(sink.to(TEAM))
    assert mail.message["Subject"] == "1 unread message: Carla Candidate · Registered Nurse"
    text = mail.text()
    assert "Carla Candidate, Mon 5 Jan 2026, 04:00 EST:\nYes, Tuesday works." in text
    assert "Candidate: Carla Candidate" in text and "Job: Registered Nurse" in text
    # The other employer member got their own, with their own reply address.
    admin = only(sink.to("emp_admin@example.com"))
    assert admin.message["Reply-To"] != mail.message["Reply-To"]
    # The author is never told of their own message.
    assert sink.to(CANDIDATE) == []


def test_a_long_unread_run_lists_the_newest_ten_and_counts_the_rest(
    world: World, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    """Staff in a case: the partner named, each author with their organization, a message
    they hid for themselves left out of the list and the count, the older rest counted."""
    case = int(body(world["emp_team"].start("case", application="app1"), 201)["id"])
    sent = [body(world["cand"].send(case, f"Note {n}"), 201)["id"] for n in range(1, 12)]
    body(world["sp_in"].send(case, "From the partner"), 201)
    r = world["emp_team"].delete(f"/api/v1/messages/{sent[-1]}", **{"for": "me"})
    assert r.status_code == 204, r.text
    clock.advance(seconds=121)
    drain(worker)
    mail = only(sink.to(TEAM))
    assert mail.message["Subject"] == "11 unread messages: Carla Candidate · Registered Nurse"
    text = mail.text()
    listed = "".join(
        f"Carla Candidate, Mon 5 Jan 2026, 09:00 UTC:\nNote {n}\n\n" for n in range(2, 11)
    )
    assert (
        "You have 11 unread messages in Carla Candidate · Registered Nurse.\n"
        "Candidate: Carla Candidate\nJob: Registered Nurse\n\n"
        f"{listed}"
        "Sam Partner (Talent Beyond Boundaries), Mon 5 Jan 2026, 09:00 UTC:\nFrom the partner\n\n"
        "... and 1 more.\n"
    ) in text


def test_a_candidate_in_a_job_wide_chat_is_told_when_they_applied_to_that_job(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    """A relocation chat is about a job, not an application: the date comes from the
    candidate's application to that job."""
    relocation = int(body(world["emp_team"].start("job_relocation", job="job1"), 201)["id"])
    body(world["emp_team"].send(relocation, "Flights are booked."), 201)
    clock.advance(seconds=121)
    drain(worker)
    text = only(sink.to(CANDIDATE)).text()
    assert "Job: Registered Nurse\nYou applied on 31 December 2025.\n" in text


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL every engine runs in this block, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def test_a_notification_reads_the_same_few_statements_however_many_messages_it_lists(
    world: World, chat: int, worker: Worker, sink: SmtpSink, clock: FrozenClock
) -> None:
    """Inside ``jobchat serve`` the worker's Python is time a send waits for: what an email
    lists is read in a fixed number of statements, not one more per message or author."""
    counts = []
    for messages in (1, 8):
        for n in range(messages):
            body(world["emp_team"].send(chat, f"Message {n}"), 201)
        clock.advance(seconds=121)
        with statements() as seen:
            drain(worker)
        # The worker's own reads of the job queue (how many times it looks for the next due
        # job depends on its threads' timing) are not what the email reads, nor are the
        # real-time stream's of the events (its once-a-second poll, which a drain slowed by a
        # busy machine may span).
        counts.append(
            sum(
                s.startswith("SELECT") and "job_queue" not in s and "FROM events" not in s
                for s in seen
            )
        )
        listed = f"{messages} unread message"
        assert only(sink.to(CANDIDATE)).message["Subject"].startswith(listed)
        sink.received.clear()
    assert counts[0] == counts[1], counts
