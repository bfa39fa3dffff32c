"""Twilio's webhooks as they really arrive: delivery statuses out of order (a final status is
never replaced, nothing moves back), and an incoming text or status that meets a busy SQLite,
which Twilio would never send again: kept in the spool and stored, exactly once, as soon as the
database takes it, even across a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.worker import Worker
from jobchat.messages.deliveries import record_delivery_sent
from jobchat.messages.models import Delivery
from jobchat.sms.inbound import apply_sms_status_reports, do_record_sms_status
from jobchat.sms.spool import MAX_FILE_ATTEMPTS, Spool, spool_ingester
from tests.mail_support import drain
from tests.support import World, assert_error, body, eventually, sent, start
from tests.twilio_support import (
    INBOUND_PATH,
    STATUS_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    candidate_daytime_clock,
    inbound_sms_form,
    status_callback_form,
    twilio,
    twilio_app_settings,
    webhook,
    worker,
)

CAND_PHONE = "+14155550123"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'

pytestmark = TWILIO_CLIENT_WARNINGS
# The fixtures: a Twilio stand-in, the app's settings pointing at it, the app's worker, and a
# clock at daytime for the candidate (texts at night are held: tests/test_sms_quiet_hours.py).
__all__ = ["candidate_daytime_clock", "twilio", "twilio_app_settings", "worker"]


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def text_out(world: World, chat: int, worker: Worker, twilio: TwilioServer) -> tuple[int, Any]:
    """A text that went out: its message id and the Message resource Twilio made for it."""
    message_id = int(sent(world["emp_team"].send(chat, "Interview at 10?", channel="sms"))["id"])
    drain(worker)
    return message_id, twilio.messages[-1]


def delivery(world: World, chat: int, message_id: int) -> dict[str, Any]:
    items = body(world["emp_team"].messages(chat), 200)["items"]
    (only,) = next(m for m in items if m["id"] == message_id)["deliveries"]
    return dict(only)


def status(client: TestClient, message: Any, value: str, error_code: int | None = None) -> None:
    form = status_callback_form(message, value, error_code=error_code)
    assert webhook(client, STATUS_PATH, form).status_code == 204


# --- statuses only move forward -------------------------------------------------------------------


def test_a_late_failure_does_not_undo_delivered(
    client: TestClient, world: World, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    message_id, message = text_out(world, chat, worker, twilio)
    status(client, message, "delivered")
    status(client, message, "failed", error_code=30008)
    status(client, message, "sent")
    shown = delivery(world, chat, message_id)
    assert (shown["status"], shown["error_code"]) == ("delivered", None)


def test_a_failure_stays_failed_when_a_stale_delivered_or_sending_arrives(
    client: TestClient, world: World, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    message_id, message = text_out(world, chat, worker, twilio)
    status(client, message, "undelivered", error_code=30003)
    status(client, message, "delivered")
    status(client, message, "sending")
    shown = delivery(world, chat, message_id)
    assert (shown["status"], shown["error_code"]) == ("undelivered", "30003")


def test_reports_before_the_send_was_recorded_keep_the_first_final_status(
    world: World, chat: int, db: Database, clock: FrozenClock
) -> None:
    """Twilio answers the send and calls back at once, before the worker has recorded the send:
    the reports are kept, and applied in arrival order once it is, forward only."""
    message_id = int(sent(world["emp_team"].send(chat, "Hello", channel="sms"))["id"])
    sid = "SM" + "cd" * 16
    with db.write() as session:
        for value in ("delivered", "failed", "sent"):
            report = {"MessageSid": sid, "MessageStatus": value, "ErrorCode": "30008"}
            assert do_record_sms_status(session, report, now=clock.now()) is None
    with db.read() as session:
        delivery_id = session.scalars(
            select(Delivery.id).where(Delivery.message_id == message_id)
        ).one()
    with db.work() as session:
        job = Claimed(id=1, kind="sms.delivery", payload={"delivery_id": delivery_id}, attempt=1)
        recorded = record_delivery_sent(session, delivery_id, job, sid, clock.now())
        assert recorded is not None
        apply_sms_status_reports(session, recorded, clock.now())
    assert delivery(world, chat, message_id)["status"] == "delivered"


# --- nothing lost to a busy database --------------------------------------------------------------


class Holder:
    """Another connection to the SQLite file, holding the write lock (BEGIN IMMEDIATE)."""

    def __init__(self, db: Database) -> None:
        path = make_url(db.url).database
        assert path
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        self.connection.close()


def short_busy_timeout(db: Database) -> None:
    """The app's writes give up on a held write lock after 200 ms instead of 10 s."""
    db.write_turn.timeout = 0.2


def replies(world: World, chat: int, text: str) -> list[dict[str, Any]]:
    items = body(world["emp_team"].messages(chat), 200)["items"]
    return [m for m in items if m["body"] == text]


@pytest.mark.slow  # waits out the write timeout, twice
def test_a_text_and_a_status_that_meet_a_busy_database_land_once_it_is_free(
    client: TestClient,
    world: World,
    chat: int,
    worker: Worker,
    twilio: TwilioServer,
    db: Database,
    settings: Settings,
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's write lock, held by another connection")
    message_id, message = text_out(world, chat, worker, twilio)
    short_busy_timeout(db)
    form = inbound_sms_form(from_number=CAND_PHONE, body="Yes, Tuesday works.")

    holder = Holder(db)
    try:
        answer = webhook(client, INBOUND_PATH, form)
        # Twilio does not retry a 5xx: the text is answered as taken, because it is (on disk).
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/xml")
        assert answer.text == EMPTY_TWIML
        assert webhook(client, INBOUND_PATH, form).status_code == 200  # Twilio repeats itself
        status(client, message, "delivered")
        # Reads go on meanwhile (WAL); the text is not in yet.
        assert replies(world, chat, "Yes, Tuesday works.") == []
        assert delivery(world, chat, message_id)["status"] == "sent"
        assert len(Spool(Path(settings.spool_dir)).pending()) == 3
    finally:
        holder.release()

    (reply,) = eventually(
        lambda: replies(world, chat, "Yes, Tuesday works.") or None, "the text in its thread"
    )
    assert (reply["author"]["id"], reply["channel"]) == ("cand", "sms")
    eventually(
        lambda: delivery(world, chat, message_id)["status"] == "delivered" or None,
        "the delivered status applied",
    )
    eventually(lambda: Spool(Path(settings.spool_dir)).pending() == [] or None, "an empty spool")
    # The same webhook once more, now that the database is free: still stored once.
    assert webhook(client, INBOUND_PATH, form).text == EMPTY_TWIML
    assert len(replies(world, chat, "Yes, Tuesday works.")) == 1


def test_a_webhook_a_stopped_server_left_in_the_spool_is_taken_at_the_next_start(
    world: World, chat: int, db: Database, settings: Settings, clock: FrozenClock
) -> None:
    """A process that wrote the file and died before storing it (kill -9, power loss): the next
    process to start takes it."""
    form = inbound_sms_form(from_number=CAND_PHONE, body="Sorry, I was offline.")
    Spool(Path(settings.spool_dir)).put("inbound", form)
    Spool(Path(settings.spool_dir)).put("inbound", form)  # and Twilio's repeat of it
    with TestClient(create_app(settings, db=db, clock=clock)):
        eventually(
            lambda: replies(world, chat, "Sorry, I was offline.") or None, "the text in its thread"
        )
        eventually(lambda: Spool(Path(settings.spool_dir)).pending() == [] or None, "empty spool")
    assert len(replies(world, chat, "Sorry, I was offline.")) == 1


def test_a_text_that_cannot_be_spooled_is_stored_straight(
    client: TestClient, world: World, chat: int, settings: Settings
) -> None:
    """A spool folder that cannot be written (here: a file is in its way) does not lose texts
    while the database takes them."""
    Path(settings.spool_dir).write_text("not a folder")
    form = inbound_sms_form(from_number=CAND_PHONE, body="Still there?")
    assert webhook(client, INBOUND_PATH, form).text == EMPTY_TWIML
    assert len(replies(world, chat, "Still there?")) == 1


def test_a_spooled_webhook_the_database_refuses_is_set_aside_without_holding_up_the_rest(
    world: World, chat: int, db: Database, settings: Settings, clock: FrozenClock
) -> None:
    """A file whose webhook fails for a reason of its own (here: a MessageSid longer than the
    column, which PostgreSQL refuses; the route itself answers 422 for one) must not hold up
    the texts spooled after it, and is set aside for an admin after a few tries."""
    if db.is_sqlite:
        pytest.skip("SQLite does not enforce a column's length")
    spool = Spool(Path(settings.spool_dir))
    bad = spool.put(
        "inbound",
        inbound_sms_form(from_number=CAND_PHONE, body="x") | {"MessageSid": "SM" + "0" * 98},
    )
    spool.put("inbound", inbound_sms_form(from_number=CAND_PHONE, body="Behind the bad one"))
    ingester = spool_ingester(db, clock, settings)
    assert ingester.take_pending() == 1  # the good one went in; the bad one waits
    assert len(replies(world, chat, "Behind the bad one")) == 1
    for _ in range(MAX_FILE_ATTEMPTS - 1):
        ingester.take_pending()
    assert spool.pending() == []
    assert (Path(settings.spool_dir) / "failed" / bad.name).exists()


def test_the_webhook_refuses_a_message_sid_no_twilio_id_could_be(client: TestClient) -> None:
    form = inbound_sms_form(from_number=CAND_PHONE, body="x") | {"MessageSid": "SM" + "0" * 98}
    assert_error(webhook(client, INBOUND_PATH, form), 422, fields={"MessageSid"})
