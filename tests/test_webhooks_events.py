"""Each event type's body as the ATS receives it (signature checked by standardwebhooks): what
a message, a deletion, a conversation started, ended and reopened, an email or text delivered,
failed or bounced, and an SMS opt-out or opt-in say, naming context by external ids."""

from __future__ import annotations

from email.utils import make_msgid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from jobchat.webhooks.models import EventType
from tests.mail_support import SmtpSink, drain, sink, smtp_settings, worker_for
from tests.support import World, body, start
from tests.test_mail_inbound import POSTFIX_DSN, reply_to
from tests.twilio_support import (
    INBOUND_PATH,
    STATUS_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    candidate_daytime_clock,
    inbound_sms_form,
    past_intro,
    status_callback_form,
    twilio,
    twilio_settings,
    webhook,
)
from tests.webhook_receiver import Received, Receiver, receiver

__all__ = ["candidate_daytime_clock", "receiver", "sink", "twilio"]

pytestmark = TWILIO_CLIENT_WARNINGS
SECRET = "inbound-secret"
CAND_PHONE = "+14155550123"
ALL = [str(e) for e in EventType]


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, twilio: TwilioServer) -> Settings:
    return twilio_settings(
        smtp_settings(settings, sink, inbound_email_secret=SECRET), twilio
    ).model_copy(update={"webhooks_allow_insecure": True})


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


@pytest.fixture
def ats(world: World, receiver: Receiver) -> Receiver:
    made = body(
        world.api.integration.post("/api/v1/webhooks", {"url": receiver.url("ats"), "events": ALL}),
        201,
    )
    receiver.expect("ats", made["secret"])
    return receiver


def events(receiver: Receiver, worker: Worker, *types: str) -> list[Received]:
    drain(worker)
    assert not receiver.rejected
    got = receiver.delivered("ats")
    for r in got:
        assert set(r.body) == {"type", "timestamp", "data"}
    return [r for r in got if not types or r.type in types]


APPLICATION_CONV = {
    "kind": "application",
    "job": "job1",
    "candidate": "cand",
    "application": "app1",
    "partner": None,
}


def person(ext_id: str, name: str, kind: str) -> dict[str, Any]:
    return {"external_id": ext_id, "name": name, "kind": kind}


def who(data: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else {k: data[k] for k in ("external_id", "name", "kind")}


def test_conversation_created_ended_and_reopened(
    world: World, ats: Receiver, worker: Worker, clock: Any
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    assert body(world["emp_team"].post(f"/api/v1/conversations/{conv}/end"), 200)
    body(world["emp_team"].send(conv, "Back to you"), 201)
    got = events(ats, worker)
    assert [g.type for g in got] == [
        "conversation.created",
        "conversation.ended",
        "conversation.reopened",
        "message.created",
    ]
    created, ended, reopened, _ = got
    assert created.data["conversation"] == {"id": conv, "status": "open", **APPLICATION_CONV}
    assert who(created.data["created_by"]) == person("emp_team", "Tess Team", "staff")
    assert ended.data["conversation"]["status"] == "ended"
    assert who(ended.data["ended_by"]) == person("emp_team", "Tess Team", "staff")
    assert reopened.data["conversation"]["id"] == conv
    assert who(reopened.data["reopened_by"]) == person("emp_team", "Tess Team", "staff")
    assert created.body["timestamp"] == clock.now().isoformat().replace("+00:00", "Z")


def test_a_candidates_reply_in_the_app_names_everything_an_ats_logs(
    world: World, ats: Receiver, worker: Worker
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    sent = body(world["cand"].send(conv, "Yes, Tuesday works."), 201)
    [got] = events(ats, worker, "message.created")
    message = got.data["message"]
    assert got.data["conversation"] == {"id": conv, "status": "open", **APPLICATION_CONV}
    assert message["id"] == sent["id"]
    assert message["body"] == "Yes, Tuesday works."
    assert message["subject"] is None
    assert message["channel"] == "app"
    assert message["created_at"] == sent["created_at"]
    assert message["attachments"] == []
    assert who(message["author"]) == person("cand", "Carla Candidate", "candidate")
    assert message["author"]["id"] == sent["author"]["id"]


def test_a_message_with_files_lists_them(world: World, ats: Receiver, worker: Worker) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    upload = world["cand"].client.post(
        f"/api/v1/conversations/{conv}/attachments",
        files={"file": ("cv.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        headers=world["cand"].headers,
    )
    attachment = body(upload, 201)
    body(world["cand"].send(conv, "My CV", attachments=[attachment["id"]]), 201)
    [got] = events(ats, worker, "message.created")
    [listed] = got.data["message"]["attachments"]
    assert listed["id"] == attachment["id"]
    assert listed["filename"] == "cv.pdf"
    assert listed["content_type"] == "application/pdf"
    assert listed["size"] == len(b"%PDF-1.4\n%%EOF\n")


def test_a_message_deleted_for_everyone_without_its_words(
    world: World, ats: Receiver, worker: Worker
) -> None:
    conv = start(world["emp_team"], "agency", application="app1")
    sent = body(world["emp_team"].send(conv, "Wrong thread, sorry"), 201)
    world["emp_team"].delete(f"/api/v1/messages/{sent['id']}", **{"for": "me"})
    r = world["emp_team"].delete(f"/api/v1/messages/{sent['id']}", **{"for": "everyone"})
    assert r.status_code == 204
    [got] = events(ats, worker, "message.deleted")  # not for "me": nobody else saw that
    assert got.data["message"]["id"] == sent["id"]
    assert "body" not in got.data["message"] and "subject" not in got.data["message"]
    assert who(got.data["deleted_by"]) == person("emp_team", "Tess Team", "staff")
    assert got.data["conversation"]["kind"] == "agency"
    assert got.data["conversation"]["application"] == "app1"


def test_an_email_sent_then_bounced_and_a_reply_by_email(
    world: World, client: TestClient, ats: Receiver, worker: Worker, sink: SmtpSink
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    sent = body(
        world["emp_team"].send(conv, "Can you do Tuesday?", channel="email", subject="Interview"),
        201,
    )
    drain(worker)
    [mail] = sink.to("cand@example.org")
    reply = reply_to(mail, "Tuesday is fine.")
    answer = client.post(
        "/api/v1/inbound/email",
        content=reply.as_bytes(),
        headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"},
    )
    assert answer.status_code == 200, answer.text
    original = mail.message
    dsn = POSTFIX_DSN.format(
        original_from=original["From"],
        original_message_id=original["Message-ID"],
        message_id=make_msgid(domain="mx.example.org"),
    ).encode()
    # To the email's own bounce address (VERP), where a bounce counts.
    bounced = client.post(
        "/api/v1/inbound/email",
        params={"recipient": mail.mail_from},
        content=dsn,
        headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"},
    )
    assert bounced.status_code == 200, bounced.text
    got = events(ats, worker, "message.delivery", "message.created")
    assert [g.type for g in got] == [
        "message.created",
        "message.delivery",
        "message.created",
        "message.delivery",
    ]
    first, went, replied, failed = got
    assert first.data["message"]["subject"] == "Interview"
    assert first.data["message"]["channel"] == "email"
    assert went.data["delivery"]["status"] == "sent"
    assert went.data["delivery"]["channel"] == "email"
    assert went.data["message"] == {"id": sent["id"], "channel": "email"}
    assert who(went.data["recipient"]) == person("cand", "Carla Candidate", "candidate")
    assert replied.data["message"]["channel"] == "email"
    assert replied.data["message"]["body"] == "Tuesday is fine."
    assert who(replied.data["message"]["author"]) == person("cand", "Carla Candidate", "candidate")
    assert failed.data["delivery"]["status"] == "failed"
    assert failed.data["delivery"]["bounced"] is True
    assert failed.data["message"]["id"] == sent["id"]


def test_a_text_sent_delivered_or_not_and_a_reply_by_text(
    world: World,
    client: TestClient,
    ats: Receiver,
    worker: Worker,
    twilio: TwilioServer,
    clock: FrozenClock,
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    first = body(world["emp_team"].send(conv, "Call me?", channel="sms"), 201)
    second = body(world["emp_team"].send(conv, "Or text.", channel="sms"), 201)
    drain(worker)
    # The first text to a newly consented number carries the intro: the other waits for it.
    clock.advance(seconds=1)
    drain(worker)
    # They went out together, in any order (the intro on whichever went first).
    by_body = {past_intro(str(m["body"])): m for m in twilio.messages}
    one, two = by_body["Call me?"], by_body["Or text."]
    assert webhook(client, STATUS_PATH, status_callback_form(one, "delivered")).status_code == 204
    undelivered = status_callback_form(two, "undelivered", error_code=30003)
    assert webhook(client, STATUS_PATH, undelivered).status_code == 204
    reply = inbound_sms_form(from_number=CAND_PHONE, body="Yes please")
    assert webhook(client, INBOUND_PATH, reply).status_code == 200
    got = events(ats, worker, "message.delivery")
    statuses = [(g.data["message"]["id"], g.data["delivery"]["status"]) for g in got]
    # The two texts went out together (either may be recorded sent first); then the carrier.
    assert sorted(statuses[:2]) == [(first["id"], "sent"), (second["id"], "sent")]
    assert statuses[2:] == [(first["id"], "delivered"), (second["id"], "undelivered")]
    assert got[3].data["delivery"]["error_code"] == "30003"
    assert got[3].data["delivery"]["channel"] == "sms"
    [texted] = [
        g
        for g in events(ats, worker, "message.created")
        if g.data["message"]["channel"] == "sms" and g.data["message"]["body"] == "Yes please"
    ]
    assert who(texted.data["message"]["author"]) == person("cand", "Carla Candidate", "candidate")
    assert texted.data["conversation"]["id"] == conv


def test_sms_consent_opted_out_and_in_and_how(
    world: World, client: TestClient, ats: Receiver, worker: Worker
) -> None:
    stop = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body="STOP"))
    assert stop.status_code == 200
    webhook(client, INBOUND_PATH, inbound_sms_form(from_number=CAND_PHONE, body="START"))
    world.api.candidate("cand2", "Dan Candidate", phone="+14155550199", sms_consent=True)
    got = events(ats, worker, "candidate.sms_consent")
    said = [
        (who(g.data["candidate"]), g.data["sms_consent"], g.data["source"], g.data["detail"])
        for g in got
    ]
    carla, dan = (
        person("cand", "Carla Candidate", "candidate"),
        person("cand2", "Dan Candidate", "candidate"),
    )
    # One candidate's changes arrive in order (another's may come between them).
    assert [s for s in said if s[0] == carla] == [
        (carla, False, "keyword", "STOP"),
        (carla, True, "keyword", "START"),
    ]
    assert [s for s in said if s[0] == dan] == [(dan, True, "ats", None)]
    assert all(g.data["changed_by"] is None for g in got)
