"""SMS in-process: sending checks with their codes, phone numbers kept and flagged, the consent
ledger, the jobs against a loopback Twilio, and the signed webhooks."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.worker import Worker
from tests.mail_support import drain
from tests.support import World, body
from tests.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    INBOUND_PATH,
    STATUS_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    candidate_daytime_clock,
    inbound_sms_form,
    past_intro,
    sign,
    status_callback_form,
    twilio,
    twilio_app_settings,
    webhook,
    worker,
)

CAND_PHONE = "+14155550123"

pytestmark = TWILIO_CLIENT_WARNINGS
# The fixtures: a Twilio stand-in, the app's settings pointing at it, the app's worker, and a
# clock at daytime for the candidate (texts at night are held: tests/test_sms_quiet_hours.py).
__all__ = ["candidate_daytime_clock", "twilio", "twilio_app_settings", "worker"]


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def text(world: World, chat: int, words: str = "Can you call me?") -> Any:
    return world["emp_team"].send(chat, words, channel="sms")


def delivery(world: World, chat: int, message_id: int) -> dict[str, Any]:
    items = body(world["emp_team"].messages(chat), 200)["items"]
    (message,) = [m for m in items if m["id"] == message_id]
    (only,) = message["deliveries"]
    return dict(only)


def test_a_text_reaches_twilio_with_the_right_number_sender_and_auth(
    world: World, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    sent = body(text(world, chat), 201)
    assert sent["deliveries"][0]["status"] == "queued"
    drain(worker)
    (request,) = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form["To"] == CAND_PHONE
    assert request.form["From"] == FROM_NUMBER
    assert past_intro(request.form["Body"]) == "Can you call me?"
    assert request.form["StatusCallback"] == f"http://testserver{STATUS_PATH}"
    shown = delivery(world, chat, sent["id"])
    assert (shown["status"], shown["attempts"], shown["error_code"]) == ("sent", 1, None)


def test_a_provider_failing_twice_sends_the_text_once(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    twilio.fail_next(2, status=500)
    sent = body(text(world, chat), 201)
    for _ in range(3):
        drain(worker)
        clock.advance(minutes=5)
    drain(worker)
    assert len(twilio.requests) == 3 and len(twilio.messages) == 1
    shown = delivery(world, chat, sent["id"])
    assert (shown["status"], shown["attempts"], shown["last_error"]) == ("sent", 3, None)


def test_a_refused_number_fails_with_twilios_code_and_is_not_retried(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    twilio.fail_next(1, status=400, code=21211, message="The 'To' number is not valid.")
    sent = body(text(world, chat), 201)
    drain(worker)
    clock.advance(hours=1)
    drain(worker)
    assert len(twilio.requests) == 1
    shown = delivery(world, chat, sent["id"])
    assert (shown["status"], shown["error_code"]) == ("failed", "21211")


def test_sending_checks_consent_number_and_length_with_clear_codes(world: World, chat: int) -> None:
    world.api.candidate("cand", "Carla Candidate", source_partner="tbb", phone="555-0199 (home)")
    response = text(world, chat)
    assert body(response, 422)["error"]["code"] == "sms_invalid_phone"
    assert "555-0199 (home)" in response.json()["error"]["fields"]["channel"]

    world.api.candidate("cand", "Carla Candidate", phone=CAND_PHONE, sms_consent=False)
    assert body(text(world, chat), 422)["error"]["code"] == "sms_opted_out"

    world.api.candidate("cand", "Carla Candidate", sms_consent=True)
    too_long = text(world, chat, "x" * 1601)
    assert body(too_long, 422)["error"]["fields"]["body"] == "an SMS may be at most 1600 characters"
    assert text(world, chat, "x" * 1600).status_code == 201


def test_an_invalid_number_from_the_ats_is_kept_and_flagged(world: World) -> None:
    stored = world.api.candidate("cand", "Carla Candidate", phone="not a number")
    assert stored["phone"] == "not a number"
    consent = body(world["emp_team"].get("/api/v1/candidates/cand/sms-consent"), 200)
    assert consent["phone"] == "not a number" and consent["phone_valid"] is False
    assert consent["phone_problem"].startswith("is not a valid phone number")
    fixed = world.api.candidate("cand", "Carla Candidate", phone="(415) 555-0123")
    assert fixed["phone"] == CAND_PHONE  # E.164, in the default region (US)
    consent = body(world["emp_team"].get("/api/v1/candidates/cand/sms-consent"), 200)
    assert consent["phone_valid"] is True and consent["phone_problem"] is None


def test_stop_blocks_texts_and_start_allows_them_all_in_the_ledger(
    world: World, client: TestClient, chat: int, worker: Worker
) -> None:
    body(text(world, chat, "First"), 201)
    drain(worker)
    stop = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body=" stop "))
    assert stop.status_code == 200
    assert "you are opted out" in stop.text  # confirmed once (Twilio blocks it after its own)
    assert body(text(world, chat), 422)["error"]["code"] == "sms_opted_out"

    webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body="START"))
    assert text(world, chat).status_code == 201

    history = body(world["emp_team"].get("/api/v1/candidates/cand/sms-consent"), 200)["history"]
    assert [(h["consented"], h["source"], h["detail"]) for h in history] == [
        (True, "keyword", "START"),
        (False, "keyword", "stop"),
        (True, "ats", None),
    ]
    # Staff record what the candidate said on the phone; the ledger names them.
    put = world["emp_team"].put(
        "/api/v1/candidates/cand/sms-consent", {"consent": False, "note": "asked on a call"}
    )
    latest = body(put, 200)["history"][0]
    assert (latest["source"], latest["by"], latest["detail"]) == (
        "staff",
        "emp_team",
        "asked on a call",
    )
    # Someone who cannot see the candidate cannot see or change their consent.
    assert world["other_emp"].get("/api/v1/candidates/cand/sms-consent").status_code == 404
    assert world["cand"].get("/api/v1/candidates/cand/sms-consent").status_code == 403


def test_a_signed_reply_lands_where_the_candidate_was_texted_and_only_once(
    world: World, client: TestClient, chat: int, worker: Worker
) -> None:
    body(text(world, chat, "Are you free Tuesday?"), 201)
    drain(worker)
    form = inbound_sms_form(from_number=CAND_PHONE, body="Yes, Tuesday works.")
    first = webhook(client, INBOUND_PATH, form)
    again = webhook(client, INBOUND_PATH, form)
    assert first.status_code == again.status_code == 200
    assert first.headers["content-type"].startswith("text/xml")
    items = body(world["emp_team"].messages(chat), 200)["items"]
    replies = [m for m in items if m["body"] == "Yes, Tuesday works."]
    assert len(replies) == 1
    assert replies[0]["author"]["id"] == "cand" and replies[0]["channel"] == "sms"


def test_forged_and_unsigned_webhooks_are_refused_and_nothing_is_posted(
    world: World, client: TestClient, chat: int
) -> None:
    form = inbound_sms_form(from_number=CAND_PHONE, body="Withdraw my application")
    unsigned = webhook(client, INBOUND_PATH, form, signed=False)
    assert body(unsigned, 403)["error"]["code"] == "bad_signature"
    forged = client.post(
        INBOUND_PATH,
        data=form,
        headers={
            "X-Twilio-Signature": sign("http://testserver" + INBOUND_PATH, form, "wrong-token")
        },
    )
    assert forged.status_code == 403
    tampered = dict(form, Body="Something else")
    signature = sign("http://testserver" + INBOUND_PATH, form)
    assert (
        client.post(
            INBOUND_PATH, data=tampered, headers={"X-Twilio-Signature": signature}
        ).status_code
        == 403
    )
    assert (
        webhook(
            client,
            STATUS_PATH,
            status_callback_form(
                {
                    "account_sid": ACCOUNT_SID,
                    "from": FROM_NUMBER,
                    "sid": "SM" + "0" * 32,
                    "to": CAND_PHONE,
                },
                "delivered",
            ),
            signed=False,
        ).status_code
        == 403
    )
    bodies = [m["body"] for m in body(world["emp_team"].messages(chat), 200)["items"]]
    assert "Withdraw my application" not in bodies and "Something else" not in bodies


def test_delivery_statuses_reach_the_message_and_never_go_back(
    world: World, client: TestClient, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    sent = body(text(world, chat), 201)
    drain(worker)
    (message,) = twilio.messages
    assert (
        webhook(client, STATUS_PATH, status_callback_form(message, "delivered")).status_code == 204
    )
    assert delivery(world, chat, sent["id"])["status"] == "delivered"
    webhook(client, STATUS_PATH, status_callback_form(message, "sent"))  # late, out of order
    assert delivery(world, chat, sent["id"])["status"] == "delivered"

    other = body(text(world, chat, "Second"), 201)
    drain(worker)
    second = twilio.messages[1]
    webhook(client, STATUS_PATH, status_callback_form(second, "undelivered", error_code=30003))
    shown = delivery(world, chat, other["id"])
    assert (shown["status"], shown["error_code"]) == ("undelivered", "30003")


def test_a_text_from_an_unknown_number_is_kept_for_an_admin(
    world: World, client: TestClient
) -> None:
    response = webhook(
        client, INBOUND_PATH, inbound_sms_form(from_number="+14155559999", body="Hi?")
    )
    assert response.status_code == 200 and "<Message>" not in response.text
    page = body(world.api.integration.get("/api/v1/inbound/sms", outcome="unknown_sender"), 200)
    (kept,) = page["items"]
    assert (kept["from_number"], kept["body"], kept["candidate"]) == ("+14155559999", "Hi?", None)


def test_a_text_into_an_ended_conversation_is_answered_once(
    world: World, client: TestClient, chat: int, worker: Worker
) -> None:
    body(text(world, chat), 201)
    drain(worker)
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    before = body(world["emp_team"].messages(chat), 200)["items"]
    first = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body="Hello?"))
    second = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body="Anyone?"))
    assert "has been closed" in first.text
    assert "<Message>" not in second.text
    assert body(world["emp_team"].messages(chat), 200)["items"] == before


def test_help_gets_a_short_help_reply(client: TestClient, world: World) -> None:
    response = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body="help"))
    assert "Reply STOP" in response.text


def test_the_segment_count_is_shown_before_sending(world: World) -> None:
    def count(words: str) -> dict[str, Any]:
        return body(world["emp_team"].post("/api/v1/sms/segments", {"body": words}), 200)

    assert count("a" * 160) | {"max_characters": 1600} == {
        "encoding": "GSM-7", "characters": 160, "segments": 1, "per_segment": 160,
        "max_characters": 1600, "too_long": False,
    }  # fmt: skip
    assert count("a" * 161)["segments"] == 2
    assert count("Grüße 👋")["encoding"] == "UCS-2"
    assert count("x" * 1601)["too_long"] is True


def test_without_a_provider_sms_answers_a_clear_422(
    world: World, settings: Settings, db: Database, clock: FrozenClock, chat: int
) -> None:
    from jobchat.app import create_app
    from tests.support import Api

    app = create_app(settings.model_copy(update={"sms_provider": None}), db=db, clock=clock)
    with TestClient(app) as other:
        token = body(Api(other).integration.post("/api/v1/users/emp_team/tokens"), 201)["token"]
        response = other.post(
            f"/api/v1/conversations/{chat}/messages",
            json={"body": "hi", "channel": "sms"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert body(response, 422)["error"]["code"] == "sms_not_configured"


def test_a_status_reported_before_the_send_was_recorded_is_applied_then(
    world: World, chat: int, db: Database, clock: FrozenClock
) -> None:
    """Twilio answers the send and calls back at once: the callback can beat the worker's
    commit of the send. It is kept and applied when the send is recorded."""
    from jobchat.jobqueue.actions import Claimed
    from jobchat.messages.deliveries import record_delivery_sent
    from jobchat.sms.inbound import apply_sms_status_reports, do_record_sms_status

    sent = body(text(world, chat), 201)
    sid = "SM" + "ab" * 16
    with db.write() as session:
        early = {"MessageSid": sid, "MessageStatus": "delivered"}
        assert do_record_sms_status(session, early, now=clock.now()) is None
    delivery_id = _delivery_id(db, sent["id"])
    with db.work() as session:
        job = Claimed(id=1, kind="sms.delivery", payload={"delivery_id": delivery_id}, attempt=1)
        recorded = record_delivery_sent(session, delivery_id, job, sid, clock.now())
        assert recorded is not None
        apply_sms_status_reports(session, recorded, clock.now())
    assert delivery(world, chat, sent["id"])["status"] == "delivered"


def _delivery_id(db: Database, message_id: int) -> int:
    from sqlalchemy import select

    from jobchat.messages.models import Delivery

    with db.read() as session:
        found = session.scalar(select(Delivery.id).where(Delivery.message_id == message_id))
        assert found is not None
        return int(found)
