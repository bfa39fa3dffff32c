"""The notification text: a candidate who chose texts gets one, through the SMS provider, for a
message still unread JOBCHAT_NOTIFY_SMS_DELAY_SECONDS after it arrived: who wrote, the job and a
sign-in link; at most one per conversation per delay, never for what was read, never without
consent and a number, never in quiet hours (sent when they end); retried on a 5xx, never twice."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat.auth.models import Credential, CredentialKind
from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.jobqueue.worker import Worker
from jobchat.sms.segments import count_segments
from tests.mail_support import drain
from tests.notify_support import worker_fixture  # noqa: F401 (fixtures)
from tests.support import World, body, user_id
from tests.twilio_support import (
    INBOUND_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    inbound_sms_form,
    past_intro,
    twilio,
    twilio_app_settings,
    webhook,
)

pytestmark = TWILIO_CLIENT_WARNINGS
__all__ = ["twilio", "twilio_app_settings"]  # the Twilio stand-in and the settings using it

CAND_PHONE = "+14155550123"
LINK = re.compile(r"http://testserver/login/(jcl_[\w-]+)\?next=/conversations/(\d+)")
DELAY = 900  # JOBCHAT_NOTIFY_SMS_DELAY_SECONDS' default


@pytest.fixture
def chat(world: World) -> int:
    # London, where January is UTC: the clock's 09:00 is their morning, their quiet hours are
    # 21:00-08:00 UTC, and their US number's night does not hold texts (their zone decides).
    me = {"notifications": {"sms": True}, "timezone": "Europe/London"}
    body(world["cand"].patch("/api/v1/me", me), 200)
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def texts(twilio: TwilioServer, to: str = CAND_PHONE) -> list[str]:
    return [past_intro(str(m["body"])) for m in twilio.messages if m["to"] == to]


def test_one_text_with_the_sender_the_job_and_a_link_after_the_delay(
    world: World,
    client: TestClient,
    chat: int,
    worker: Worker,
    twilio: TwilioServer,
    clock: FrozenClock,
) -> None:
    body(world["emp_team"].send(chat, "Thanks for applying!"), 201)
    clock.advance(seconds=60)
    body(world["emp_team"].send(chat, "Are you free on Tuesday?"), 201)
    clock.advance(seconds=DELAY - 61)
    drain(worker)
    assert texts(twilio) == []
    clock.advance(seconds=1)
    drain(worker)
    (text,) = texts(twilio)
    assert text.startswith("Tess Team sent you a message about Registered Nurse.")
    assert count_segments(text).segments <= 2
    link = LINK.search(text)
    assert link is not None and int(link[2]) == chat
    # The link signs the candidate straight into the conversation.
    response = client.get(link[0].removeprefix("http://testserver"), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/conversations/{chat}"

    # Nothing new: no second text however long it stays unread; something new: one more.
    clock.advance(hours=3)
    drain(worker)
    assert len(texts(twilio)) == 1
    body(world["emp_admin"].send(chat, "Reminder: the interview is tomorrow."), 201)
    drain(worker)  # the ladder runs as soon as the message is stored
    clock.advance(seconds=DELAY)
    drain(worker)
    assert len(texts(twilio)) == 2
    assert texts(twilio)[1].startswith("Ada Admin sent you a message about Registered Nurse.")


def test_no_text_for_what_was_read_in_time(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    body(world["emp_team"].send(chat, "Hello"), 201)
    clock.advance(seconds=DELAY - 60)
    body(world["cand"].post(f"/api/v1/conversations/{chat}/read"), 200)
    clock.advance(seconds=3600)
    drain(worker)
    assert texts(twilio) == []


def test_no_text_without_the_choice_consent_or_a_number(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    # cand2 chose texts but has no phone number and no consent.
    body(world["cand2"].patch("/api/v1/me", {"notifications": {"sms": True}}), 200)
    other = int(body(world["emp_team"].start("application", application="app2"), 201)["id"])
    body(world["emp_team"].send(other, "Hello Dan"), 201)
    # cand turns texts off again.
    body(world["cand"].patch("/api/v1/me", {"notifications": {"sms": False}}), 200)
    body(world["emp_team"].send(chat, "Hello Carla"), 201)
    clock.advance(seconds=DELAY * 2)
    drain(worker)
    assert twilio.messages == []


def test_a_stop_after_the_message_means_no_text(
    world: World,
    client: TestClient,
    chat: int,
    worker: Worker,
    twilio: TwilioServer,
    clock: FrozenClock,
) -> None:
    body(world["emp_team"].send(chat, "Hello"), 201)
    drain(worker)
    webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body="STOP"))
    clock.advance(seconds=DELAY)
    drain(worker)
    assert texts(twilio) == []


def test_a_text_message_is_not_announced_by_another_text(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    body(world["emp_team"].send(chat, "Our offer is on its way", channel="sms"), 201)
    clock.advance(seconds=DELAY * 2)
    drain(worker)
    assert texts(twilio) == ["Our offer is on its way"]


def test_texts_wait_for_the_end_of_quiet_hours(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    clock.advance(hours=12)  # 21:00 UTC: the candidate's quiet hours (21:00-08:00) begin
    body(world["emp_team"].send(chat, "Late news"), 201)
    clock.advance(seconds=DELAY)
    drain(worker)
    clock.advance(hours=10)  # 07:15
    drain(worker)
    assert texts(twilio) == []
    clock.advance(minutes=45)  # 08:00
    drain(worker)
    assert len(texts(twilio)) == 1
    clock.advance(minutes=30)
    drain(worker)
    assert len(texts(twilio)) == 1


def test_removing_quiet_hours_sends_a_held_text_at_once(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    # Their own evening hours, not the night: at night the SMS window would hold it still.
    quiet = {"quiet_hours": {"start": "18:00", "end": "20:00"}}
    body(world["cand"].patch("/api/v1/me", quiet), 200)
    clock.advance(hours=9, minutes=30)  # 18:30 UTC
    body(world["emp_team"].send(chat, "Late news"), 201)
    clock.advance(seconds=DELAY)
    drain(worker)
    assert texts(twilio) == []
    body(world["cand"].patch("/api/v1/me", {"quiet_hours": None}), 200)
    drain(worker)
    assert len(texts(twilio)) == 1


def test_a_provider_5xx_is_retried_and_the_text_goes_once(
    world: World, db: Database, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    twilio.fail_next(2, status=503)
    # No notification email (which has a sign-in link of its own) for the count below.
    body(world["cand"].patch("/api/v1/me", {"notifications": {"email": False}}), 200)
    body(world["emp_team"].send(chat, "Hello"), 201)
    drain(worker)
    clock.advance(seconds=DELAY)
    drain(worker)
    assert texts(twilio) == []
    clock.advance(seconds=60)  # past the retry's backoff
    drain(worker)
    clock.advance(seconds=120)  # and the next one's
    drain(worker)
    assert len(texts(twilio)) == 1
    clock.advance(seconds=600)
    drain(worker)
    assert len(texts(twilio)) == 1
    # One sign-in link for the one text, not one per attempt; and it is the one that works.
    with db.read() as session:
        links = session.scalar(
            select(func.count()).where(
                Credential.kind == CredentialKind.login_link,
                Credential.user_id == user_id(db, "cand"),
            )
        )
    assert links == 1
    link = LINK.search(texts(twilio)[0])
    assert link is not None
    signed_in = world["cand"].client.get(f"/login/{link[1]}", follow_redirects=False)
    assert signed_in.status_code == 303


def test_a_provider_refusal_ends_it(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    twilio.fail_next(1, status=400, code=21614, message="not a mobile number")
    body(world["emp_team"].send(chat, "Hello"), 201)
    drain(worker)
    clock.advance(seconds=DELAY)
    drain(worker)
    clock.advance(hours=1)
    drain(worker)
    assert texts(twilio) == []
