"""Push and email together: a person reached by push is still emailed, but only if the message
stays unread past the email delay; email keeps its batching and ignores quiet hours."""

from __future__ import annotations

import pytest

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.worker import Worker
from tests.mail_support import SmtpSink, drain, sink, smtp_settings
from tests.notify_support import chat_fixture, pushes, subscribe, worker_fixture  # noqa: F401 (fixtures)
from tests.support import World, body

__all__ = ["sink"]  # the SMTP sink fixture, from tests/mail_support.py

CANDIDATE = "cand@example.org"


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return smtp_settings(settings, sink, notify_delay_seconds=120)


def test_pushed_and_read_within_the_delay_means_no_email(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker, sink: SmtpSink
) -> None:
    phone = subscribe(db, clock, "cand")
    message = int(body(world["emp_team"].send(chat, "Hello"), 201)["id"])
    drain(worker)
    assert pushes(db) == [(phone, message)]
    clock.advance(seconds=60)
    body(world["cand"].post(f"/api/v1/conversations/{chat}/read"), 200)
    clock.advance(seconds=600)
    drain(worker)
    assert sink.to(CANDIDATE) == []


def test_pushed_but_unread_past_the_delay_means_one_email(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker, sink: SmtpSink
) -> None:
    subscribe(db, clock, "cand")
    body(world["emp_team"].send(chat, "Hello"), 201)
    drain(worker)
    clock.advance(seconds=30)
    body(world["emp_team"].send(chat, "Are you there?"), 201)
    drain(worker)
    assert len(pushes(db)) == 2
    clock.advance(seconds=91)
    drain(worker)
    (mail,) = sink.to(CANDIDATE)
    assert mail.message["Subject"].startswith("2 unread messages")
    clock.advance(hours=2)
    drain(worker)
    assert len(sink.to(CANDIDATE)) == 1


def test_email_ignores_quiet_hours(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker, sink: SmtpSink
) -> None:
    subscribe(db, clock, "cand")
    clock.advance(hours=13)  # 22:00 UTC, inside the candidate's quiet hours
    body(world["emp_team"].send(chat, "Hello"), 201)
    drain(worker)
    clock.advance(seconds=121)
    drain(worker)
    assert pushes(db) == []  # the push waits for the morning
    assert len(sink.to(CANDIDATE)) == 1  # the email does not
