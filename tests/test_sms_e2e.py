"""SMS end to end: a real ``jobchat serve`` process texting through Twilio's Messages API (the
loopback TwilioServer of tests/twilio_support.py) and receiving Twilio's signed webhooks, spoken
to over HTTP (httpx) as a deployment and Twilio would.

One server runs per module, on a temporary SQLite file, or, when the suite runs on PostgreSQL
(JOBCHAT_TEST_DATABASE_URL), on that database, migrated and emptied first. Every test seeds its
own cast through the integration API: ids carry a fresh tag and the candidate a phone number of
their own, so tests do not see each other's texts.

Waiting is by polling with a deadline. "Nothing more will be sent" is checked with a barrier
read from the database: no job queued or running.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pytest
from sqlalchemy import func, select, text

from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.db.models import Base
from jobchat.jobqueue.models import UNFINISHED, QueuedJob
from jobchat.messages.models import Delivery
from tests.support import (
    API_KEY,
    ServedProcess,
    assert_error,
    eventually,
    free_port,
    spawn_serve,
    wait_until,
    wait_until_serving,
)
from tests.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    RecordedRequest,
    TwilioServer,
    inbound_sms_form,
    past_intro,
    sign,
    status_callback_form,
)

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")

INBOUND_PATH = "/api/v1/inbound/sms/twilio"
STATUS_PATH = "/api/v1/inbound/sms/twilio/status"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
# Nobody has texted the number yet in these tests: the deployment's name (JOBCHAT_SMS_SENDER_NAME,
# unset: jobchat) and no contact (JOBCHAT_SMS_HELP_CONTACT). Named senders and contacts:
# tests/test_sms_consent_replies.py.
HELP_TEXT = (
    "jobchat: texts about your job applications. Reply STOP to opt out, START to opt back in."
)
OPT_OUT_TEXT = (
    "jobchat: you are opted out and will get no more texts from us. Reply START to get them again."
)
OPT_IN_TEXT = "jobchat: you will get our texts again. Reply STOP to opt out, HELP for help."
CLOSED_TEXT = (
    "This conversation has been closed, so your message was not delivered. "
    "Please use the contact details you were given if you need the team."
)


def twiml(reply: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{reply}</Message></Response>'


_numbers: set[str] = set()


def fresh_number() -> str:
    """A valid US number in E.164 that no other cast of this run has."""
    while True:
        number = f"+1415{2_000_000 + secrets.randbelow(8_000_000)}"
        if number not in _numbers and phonenumbers.is_valid_number(phonenumbers.parse(number)):
            _numbers.add(number)
            return number


# --- the server ---------------------------------------------------------------------------------


@dataclass
class SmsServer(ServedProcess):
    """The module's ``jobchat serve`` (SMS through the TwilioServer), its database and log."""

    db: Database
    twilio: TwilioServer

    def unfinished_jobs(self) -> int:
        with self.db.read() as session:
            jobs = session.scalar(select(func.count()).select_from(QueuedJob).where(UNFINISHED))
        return int(jobs or 0)

    def settled(self) -> None:
        """Wait until the worker has nothing left that could send a text."""
        wait_until(lambda: self.unfinished_jobs() == 0, "the job queue to empty", log=self.output)

    def webhook(
        self, path: str, form: dict[str, str], *, signature: str | None = ""
    ) -> httpx.Response:
        """POST ``form`` to a Twilio webhook as Twilio does: form-encoded and signed over the
        public URL and the path ("" signs it properly; None sends no signature)."""
        if signature == "":
            signature = sign(self.base + path, form)
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        return self.http.post(path, data=form, headers=headers)

    def inbound(self, **params: Any) -> list[dict[str, Any]]:
        """``GET /api/v1/inbound/sms`` with the integration key: the texts, newest first."""
        response = self.http.get(
            "/api/v1/inbound/sms",
            params={"limit": 200, **params},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not PG_URL:
        return f"sqlite:///{tmp_path_factory.mktemp('sms-e2e') / 'jobchat.db'}"
    db = Database(Settings(database_url=PG_URL, _env_file=None).sqlalchemy_url)
    try:
        upgrade(db.engine)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        db.dispose()
    return PG_URL


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmsServer]:
    workdir: Path = tmp_path_factory.mktemp("sms-server")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOBCHAT_", "TWILIO_")) and k not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    with TwilioServer() as twilio:
        env |= {
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "JOBCHAT_DATABASE_URL": database_url,
            "JOBCHAT_API_KEY": API_KEY,
            "JOBCHAT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "JOBCHAT_SEND_RATE_PER_MINUTE": "100000",
            "JOBCHAT_SMS_PROVIDER": "twilio",
            # The server runs on the real clock, at whatever hour this suite does: texts go at
            # once (the quiet-hours hold is tested on a frozen clock in test_sms_quiet_hours).
            "JOBCHAT_SMS_QUIET_HOURS": "off",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "JOBCHAT_TWILIO_API_URL": twilio.url,
            "JOBCHAT_SMS_TIMEOUT_SECONDS": "5",
            "JOBCHAT_WORKER_POLL_SECONDS": "0.2",
            "JOBCHAT_JOB_BACKOFF_SECONDS": "0.3",
            "JOBCHAT_JOB_BACKOFF_MAX_SECONDS": "1",
        }
        process, log = spawn_serve(port, env, workdir)
        db = Database(Settings(database_url=database_url, _env_file=None).sqlalchemy_url)
        running = SmsServer(port, process, log, db, twilio)
        try:
            response = wait_until_serving(process, running.base, running.output)
            assert response.status_code == 200, response.text
            yield running
        finally:
            running.terminate()
            db.dispose()


# --- a cast -------------------------------------------------------------------------------------


class Cast:
    """An employer (Acme Health) with a hiring-team member (Tess Team), a candidate (Carla
    Candidate, with a phone number of her own and SMS consent from the ATS) who applied to its
    job, and the application's conversation, started by Tess."""

    def __init__(self, server: SmsServer) -> None:
        self.server = server
        self.tag = f"s{uuid.uuid4().hex[:10]}"
        self.phone = fresh_number()
        put = self.put
        put("organizations", "acme", {"name": "Acme Health", "kind": "employer"})
        put(
            "users",
            "tess",
            {
                "name": "Tess Team",
                "email": f"{self.tag}-tess@example.com",
                "organization": self.ext("acme"),
                "role": "member",
            },
        )
        candidate = put(
            "candidates",
            "carla",
            {
                "name": "Carla Candidate",
                "email": f"{self.tag}-carla@example.org",
                "phone": self.phone,
                "sms_consent": True,
            },
        )
        assert (candidate["phone"], candidate["sms_consent"]) == (self.phone, True), candidate
        put(
            "jobs",
            "job",
            {"title": "Registered Nurse", "employer": self.ext("acme"), "team": [self.ext("tess")]},
        )
        put(
            "applications",
            "app",
            {"job": self.ext("job"), "candidate": self.ext("carla"), "stage": "interview"},
        )
        self.staff = self.call("POST", f"/api/v1/users/{self.ext('tess')}/tokens", API_KEY)["token"]
        self.conv: int = self.call(
            "POST",
            "/api/v1/conversations",
            self.staff,
            {"kind": "application", "application": self.ext("app")},
        )["id"]

    def ext(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def request(self, method: str, path: str, token: str, json: Any = None) -> httpx.Response:
        return self.server.http.request(
            method, path, json=json, headers={"Authorization": f"Bearer {token}"}
        )

    def call(self, method: str, path: str, token: str, json: Any = None) -> dict[str, Any]:
        response = self.request(method, path, token, json)
        assert response.status_code in (200, 201), (method, path, response.text)
        body: dict[str, Any] = response.json()
        return body

    def put(self, collection: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/api/v1/{collection}/{self.ext(name)}", API_KEY, body)

    def send_sms_response(self, body: str) -> httpx.Response:
        return self.request(
            "POST",
            f"/api/v1/conversations/{self.conv}/messages",
            self.staff,
            {"body": body, "channel": "sms"},
        )

    def send_sms(self, body: str) -> dict[str, Any]:
        response = self.send_sms_response(body)
        assert response.status_code == 201, response.text
        sent: dict[str, Any] = response.json()
        assert sent["channel"] == "sms", sent
        assert sent["deliveries"] == [
            {
                "recipient": self.ext("carla"),
                "channel": "sms",
                "status": "queued",
                "until": None,
                "attempts": 0,
                "last_error": None,
                "error_code": None,
            }
        ], sent
        return sent

    def thread(self) -> list[dict[str, Any]]:
        """The conversation's messages as Tess sees them (with deliveries), oldest first."""
        page = self.call("GET", f"/api/v1/conversations/{self.conv}/messages?limit=100", self.staff)
        items: list[dict[str, Any]] = page["items"]
        return items

    def delivery(self, message_id: int) -> dict[str, Any]:
        (message,) = [m for m in self.thread() if m["id"] == message_id]
        (delivery,) = message["deliveries"]
        return dict(delivery)

    def delivered_as(self, message_id: int, status: str) -> dict[str, Any]:
        """The message's delivery once it shows ``status``."""
        return eventually(
            lambda: d if (d := self.delivery(message_id))["status"] == status else None,
            f"the delivery of message {message_id} {status}",
            log=self.server.output,
        )

    def expected_delivery(self, status: str, attempts: int = 1, **extra: Any) -> dict[str, Any]:
        return {
            "recipient": self.ext("carla"),
            "channel": "sms",
            "status": status,
            "until": None,
            "attempts": attempts,
            "last_error": None,
            "error_code": None,
            **extra,
        }

    def requests(self) -> list[RecordedRequest]:
        """Every request the TwilioServer received about a text to Carla."""
        return [r for r in list(self.server.twilio.requests) if r.form.get("To") == self.phone]

    def twilio_messages(self) -> list[dict[str, Any]]:
        """The Message resources Twilio created for texts to Carla."""
        return [m for m in list(self.server.twilio.messages) if m["to"] == self.phone]

    def text_in(self, body: str, **form: str) -> tuple[dict[str, str], httpx.Response]:
        """Carla texts our number: Twilio's signed webhook, and our answer."""
        params = inbound_sms_form(from_number=self.phone, body=body) | form
        return params, self.server.webhook(INBOUND_PATH, params)

    def consent(self) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/candidates/{self.ext('carla')}/sms-consent", self.staff)

    def inbound(self) -> list[dict[str, Any]]:
        return [t for t in self.server.inbound() if t["from_number"] == self.phone]


@pytest.fixture
def cast(server: SmsServer) -> Cast:
    assert server.process.poll() is None, server.output()
    return Cast(server)


def assert_twiml(response: httpx.Response, expected: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    assert response.text == expected


def by_candidate(cast: Cast, message: dict[str, Any], body: str) -> None:
    assert message["author"] == {
        "id": cast.ext("carla"),
        "name": "Carla Candidate",
        "kind": "candidate",
    }
    assert (message["channel"], message["body"], message["deleted"]) == ("sms", body, False)
    assert message["deliveries"] == []  # a reply that came in: nothing goes out


# --- tests --------------------------------------------------------------------------------------


def test_an_sms_message_goes_to_twilio_once_and_shows_sent(cast: Cast) -> None:
    sent = cast.send_sms("Can you do Tuesday at 10? Reply here.")

    delivery = cast.delivered_as(sent["id"], "sent")
    cast.server.settled()

    assert delivery == cast.expected_delivery("sent")
    (request,) = cast.requests()
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "To": cast.phone,
        "From": FROM_NUMBER,
        # The first text since Carla's opt-in (the ATS's) says who we are and how to stop.
        "Body": (
            "Tess Team at Acme Health texts you about your job application. "
            "Reply STOP to opt out.\nCan you do Tuesday at 10? Reply here."
        ),
        "StatusCallback": cast.server.base + STATUS_PATH,
    }
    (message,) = cast.twilio_messages()
    # The API does not show Twilio's MessageSid; the delivery row keeps it for the callbacks.
    with cast.server.db.read() as session:
        provider_ids = list(
            session.scalars(select(Delivery.provider_id).where(Delivery.message_id == sent["id"]))
        )
    assert provider_ids == [message["sid"]]


def test_a_signed_inbound_text_lands_once_and_unsigned_ones_are_refused(cast: Cast) -> None:
    params, answer = cast.text_in("Yes, Tuesday at 10 works.")

    assert_twiml(answer, EMPTY_TWIML)
    *_, newest = cast.thread()
    by_candidate(cast, newest, "Yes, Tuesday at 10 works.")

    # Twilio retries the webhook: stored once, and answered with nothing the second time.
    assert_twiml(cast.server.webhook(INBOUND_PATH, params), EMPTY_TWIML)
    before = cast.thread()
    assert [m["id"] for m in before if m["author"]["kind"] == "candidate"] == [newest["id"]]
    (row,) = cast.inbound()
    assert {k: row[k] for k in ("body", "outcome", "candidate", "conversation", "message")} == {
        "body": "Yes, Tuesday at 10 works.",
        "outcome": "posted",
        "candidate": cast.ext("carla"),
        "conversation": cast.conv,
        "message": newest["id"],
    }

    forged = inbound_sms_form(from_number=cast.phone, body="Cancel my application.")
    wrong_key = sign(cast.server.base + INBOUND_PATH, forged, "0" * 32)
    assert_error(
        cast.server.webhook(INBOUND_PATH, forged, signature=wrong_key), 403, "bad_signature"
    )
    # Signed for another body than the one posted.
    tampered = sign(cast.server.base + INBOUND_PATH, {**forged, "Body": "Hello"})
    assert_error(
        cast.server.webhook(INBOUND_PATH, forged, signature=tampered), 403, "bad_signature"
    )
    assert_error(cast.server.webhook(INBOUND_PATH, forged, signature=None), 403, "bad_signature")

    assert cast.thread() == before
    assert len(cast.inbound()) == 1


def test_stop_refuses_later_texts_and_start_allows_them_again(cast: Cast) -> None:
    assert_twiml(cast.text_in("STOP")[1], twiml(OPT_OUT_TEXT))

    refused = cast.send_sms_response("Are you still interested?")
    assert_error(refused, 422, "sms_opted_out", {"channel"})
    consent = cast.consent()
    history = consent.pop("history")
    assert consent.pop("number_opted_out_at")  # the number's own STOP, until it texts START
    assert consent == {
        "candidate": cast.ext("carla"),
        "consent": False,
        "phone": cast.phone,
        "phone_valid": True,
        "phone_problem": None,
    }
    assert [{k: v for k, v in c.items() if k != "at"} for c in history] == [
        {"consented": False, "source": "keyword", "detail": "STOP", "by": None},
        {"consented": True, "source": "ats", "detail": None, "by": None},
    ]

    assert_twiml(cast.text_in("Start")[1], twiml(OPT_IN_TEXT))

    consent = cast.consent()
    assert consent["consent"] is True and consent["number_opted_out_at"] is None
    assert [(c["consented"], c["source"], c["detail"]) for c in consent["history"]] == [
        (True, "keyword", "Start"),
        (False, "keyword", "STOP"),
        (True, "ats", None),
    ]
    # The keywords are not posted in the thread.
    assert cast.thread() == []
    assert [t["outcome"] for t in cast.inbound()] == ["opted_in", "opted_out"]

    sent = cast.send_sms("Great, welcome back.")
    assert cast.delivered_as(sent["id"], "sent") == cast.expected_delivery("sent")
    cast.server.settled()
    assert [past_intro(r.form["Body"]) for r in cast.requests()] == ["Great, welcome back."]


def test_a_text_the_provider_fails_twice_goes_out_once_on_the_third_attempt(cast: Cast) -> None:
    cast.server.twilio.fail_next(2, status=500)
    sent = cast.send_sms("Your interview is confirmed.")

    delivery = cast.delivered_as(sent["id"], "sent")
    cast.server.settled()

    assert delivery == cast.expected_delivery("sent", attempts=3)
    requests = cast.requests()
    assert len(requests) == 3
    assert all(r.form == requests[0].form for r in requests)
    assert past_intro(requests[0].form["Body"]) == "Your interview is confirmed."
    assert len(cast.twilio_messages()) == 1  # the one successful request


def test_a_text_twilio_refuses_fails_with_its_code_and_is_not_retried(cast: Cast) -> None:
    refusal = f"The 'To' number {cast.phone} is not a valid phone number."
    cast.server.twilio.fail_next(1, status=400, code=21211, message=refusal)
    sent = cast.send_sms("Can you call us back?")

    delivery = cast.delivered_as(sent["id"], "failed")
    cast.server.settled()

    assert delivery == cast.expected_delivery(
        "failed",
        last_error=f"twilio refused it: Unable to create record: {refusal}",
        error_code="21211",
    )
    assert len(cast.requests()) == 1
    assert cast.twilio_messages() == []


def test_status_callbacks_move_the_delivery(cast: Cast) -> None:
    first = cast.send_sms("First: see you Tuesday.")
    second = cast.send_sms("Second: bring your passport.")
    cast.delivered_as(first["id"], "sent")
    cast.delivered_as(second["id"], "sent")
    resources = {past_intro(m["body"]): m for m in cast.twilio_messages()}

    delivered = status_callback_form(resources["First: see you Tuesday."], "delivered")
    answer = cast.server.webhook(STATUS_PATH, delivered)
    assert (answer.status_code, answer.content) == (204, b"")
    assert cast.delivery(first["id"]) == cast.expected_delivery("delivered")

    # A late "sent" never moves it back; an unsigned callback is refused.
    late = status_callback_form(resources["First: see you Tuesday."], "sent")
    assert cast.server.webhook(STATUS_PATH, late).status_code == 204
    undelivered = status_callback_form(
        resources["Second: bring your passport."], "undelivered", error_code=30003
    )
    assert_error(
        cast.server.webhook(STATUS_PATH, undelivered, signature=None), 403, "bad_signature"
    )
    assert cast.delivery(first["id"]) == cast.expected_delivery("delivered")
    assert cast.delivery(second["id"]) == cast.expected_delivery("sent")

    assert cast.server.webhook(STATUS_PATH, undelivered).status_code == 204
    assert cast.delivery(second["id"]) == cast.expected_delivery(
        "undelivered", last_error="the carrier reported error 30003", error_code="30003"
    )
    assert cast.delivery(first["id"]) == cast.expected_delivery("delivered")


def test_a_text_from_an_unknown_number_is_kept_for_an_admin(server: SmsServer) -> None:
    stranger = fresh_number()
    params = inbound_sms_form(from_number=stranger, body="Hi, is the nurse job still open?")

    assert_twiml(server.webhook(INBOUND_PATH, params), EMPTY_TWIML)

    (row,) = [t for t in server.inbound(outcome="unknown_sender") if t["from_number"] == stranger]
    assert {k: v for k, v in row.items() if k not in ("id", "received_at")} == {
        "from_number": stranger,
        "body": "Hi, is the nurse job still open?",
        "outcome": "unknown_sender",
        "detail": None,
        "candidate": None,
        "conversation": None,
        "message": None,
    }
    assert [t["id"] for t in server.inbound() if t["from_number"] == stranger] == [row["id"]]
    assert all(t["outcome"] == "unknown_sender" for t in server.inbound(outcome="unknown_sender"))


def test_a_text_into_an_ended_conversation_is_answered_once_and_not_posted(cast: Cast) -> None:
    ended = cast.call("POST", f"/api/v1/conversations/{cast.conv}/end", cast.staff)
    assert ended["status"] == "ended", ended

    assert_twiml(cast.text_in("Hello? Are you there?")[1], twiml(CLOSED_TEXT))
    assert_twiml(cast.text_in("Hello??")[1], EMPTY_TWIML)

    assert cast.thread() == []
    assert [(t["body"], t["outcome"], t["conversation"], t["message"]) for t in cast.inbound()] == [
        ("Hello??", "closed", cast.conv, None),
        ("Hello? Are you there?", "closed", cast.conv, None),
    ]


def test_help_is_answered_with_the_help_text(cast: Cast) -> None:
    assert_twiml(cast.text_in("HELP")[1], twiml(HELP_TEXT))

    assert cast.thread() == []
    assert [t["outcome"] for t in cast.inbound()] == ["help"]
