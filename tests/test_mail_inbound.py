"""Replies by email: over SMTP (the server's own aiosmtpd listener) and by webhook, into the
right thread as clean text, and nothing that must not get in: spoofed senders, machine mail,
bounces, replies into ended conversations, the same mail twice."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.worker import Worker
from jobchat.mail.models import InboundEmail
from tests.mail_support import (
    Delivered,
    SmtpSink,
    drain,
    free_port,
    sink,
    smtp_settings,
    worker_for,
)
from tests.support import World, body

CANDIDATE = "cand@example.org"
SECRET = "inbound-secret"


__all__ = ["sink"]  # the SMTP sink fixture, from tests/mail_support.py


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return smtp_settings(settings, sink, inbound_smtp_port=free_port(), inbound_email_secret=SECRET)


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


@pytest.fixture
def invitation(world: World, chat: int, worker: Worker, sink: SmtpSink) -> Delivered:
    """The email-channel message the candidate is going to answer."""
    body(
        world["emp_team"].send(chat, "Can you do Tuesday?", channel="email", subject="Interview"),
        201,
    )
    drain(worker)
    (mail,) = sink.to(CANDIDATE)
    return mail


# A delivery status notification as Postfix writes it (RFC 3464).
POSTFIX_DSN = """\
Return-Path: <>
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: bounces@reply.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: {message_id}
Date: Mon,  5 Jan 2026 09:01:00 +0000 (UTC)
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B0UND4RY"

--B0UND4RY
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<cand@example.org>: host mx.example.org said: 550 5.1.1 <cand@example.org>:
    Recipient address rejected: User unknown

--B0UND4RY
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Mon,  5 Jan 2026 09:00:59 +0000 (UTC)

Final-Recipient: rfc822; cand@example.org
Original-Recipient: rfc822;cand@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <cand@example.org>: Recipient address rejected:
    User unknown

--B0UND4RY
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: {original_from}
To: Carla Candidate <cand@example.org>
Subject: Interview
Message-ID: {original_message_id}

--B0UND4RY--
"""


def reply_to(
    original: Delivered,
    text: str,
    *,
    sender: str = "Carla Candidate <cand@example.org>",
    html: str | None = None,
    **headers: str,
) -> EmailMessage:
    """A reply as a mail client writes it: threading headers, the quote under the new text."""
    first = original.message
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = first["Reply-To"]
    reply["Subject"] = f"Re: {first['Subject']}"
    reply["Message-ID"] = make_msgid(domain="mail.example.org")
    reply["In-Reply-To"] = first["Message-ID"]
    reply["References"] = first["Message-ID"]
    for name, value in headers.items():
        reply[name.replace("_", "-")] = value
    quoted = "\n".join(f"> {line}" for line in original.text().splitlines())
    reply.set_content(
        f"{text}\n\nOn Mon, 5 Jan 2026 at 10:00, Tess Team <{first['Reply-To']}> wrote:\n{quoted}\n"
    )
    if html is not None:
        reply.add_alternative(html, subtype="html")
    return reply


def smtp_send(settings: Settings, message: EmailMessage | bytes, *, to: str | None = None) -> bytes:
    """Send over SMTP to the server's listener; returns the bytes that went."""
    assert settings.inbound_smtp_port is not None
    raw = message if isinstance(message, bytes) else message.as_bytes()
    # On the wire, lines end in CRLF (smtplib sends bytes as they are).
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if to is None:
        assert isinstance(message, EmailMessage)
        to = parseaddr(message["To"])[1]
    with smtplib.SMTP("127.0.0.1", settings.inbound_smtp_port, timeout=10) as smtp:
        smtp.sendmail("sender@example.org", [to], raw)
    return raw


def thread(world: World, chat: int) -> list[dict[str, Any]]:
    return list(body(world["emp_team"].messages(chat), 200)["items"])


def inbound_rows(client: TestClient) -> list[InboundEmail]:
    db: Database = client.app.state.jobchat.db  # type: ignore[attr-defined]
    with db.read() as session:
        return list(session.scalars(select(InboundEmail).order_by(InboundEmail.id)))


def test_a_reply_over_smtp_lands_in_the_thread_as_clean_text_and_the_raw_mail_is_kept(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    reply = reply_to(
        invitation,
        "Yes, Tuesday at 10 works for me.",
        html=(
            '<div dir="ltr">Yes, Tuesday at 10 works for me.</div><br>'
            '<div class="gmail_quote"><div class="gmail_attr">On Mon, 5 Jan 2026 at 10:00, '
            'Tess Team wrote:<br></div><blockquote class="gmail_quote">Can you do Tuesday?'
            "</blockquote></div>"
        ),
    )
    raw = smtp_send(settings, reply)

    last = thread(world, chat)[-1]
    assert last["author"] == {"id": "cand", "name": "Carla Candidate", "kind": "candidate"}
    assert last["channel"] == "email"
    assert last["body"] == "Yes, Tuesday at 10 works for me."
    assert last["subject"] == "Re: Interview"
    assert last["deliveries"] == []  # it came in; nothing goes out
    (row,) = inbound_rows(client)
    assert row.outcome == "posted" and row.message_id == last["id"]
    assert row.raw == raw
    # Candidate side: unread for the team, read for the candidate.
    assert body(world["emp_team"].get("/api/v1/unread"), 200)["messages"] >= 1


def test_a_reply_whose_reply_address_was_lost_still_finds_its_thread(
    world: World, client: TestClient, chat: int, invitation: Delivered
) -> None:
    reply = reply_to(invitation, "Sorry, I wrote from the wrong window. Tuesday is fine.")
    reply.replace_header("To", "Acme Hiring <hiring@example.com>")
    response = client.post(
        "/api/v1/inbound/email",
        content=reply.as_bytes(),
        headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"},
    )
    assert body(response, 200)["outcome"] == "posted"
    assert (
        thread(world, chat)[-1]["body"] == "Sorry, I wrote from the wrong window. Tuesday is fine."
    )


def test_a_spoofed_reply_is_not_posted(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    before = thread(world, chat)
    smtp_send(
        settings,
        reply_to(invitation, "Withdraw me please", sender="Mallory <mallory@evil.example>"),
    )
    assert thread(world, chat) == before
    (row,) = inbound_rows(client)
    assert row.outcome == "wrong_sender"


def test_an_auto_reply_is_neither_posted_nor_answered(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    worker: Worker,
    sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    before = thread(world, chat)
    smtp_send(
        settings,
        reply_to(invitation, "I am out of the office until Monday.", Auto_Submitted="auto-replied"),
    )
    assert thread(world, chat) == before
    assert inbound_rows(client)[0].outcome == "automatic"
    clock.advance(hours=1)
    drain(worker)
    assert len(sink.to(CANDIDATE)) == 1  # only the invitation: nothing answered the robot


def test_a_reply_into_an_ended_conversation_is_refused_and_answered_once(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    worker: Worker,
    sink: SmtpSink,
) -> None:
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    before = thread(world, chat)
    first = reply_to(invitation, "Is the job still open?")
    smtp_send(settings, first)
    smtp_send(settings, reply_to(invitation, "Hello? Anyone there?"))
    drain(worker)

    assert thread(world, chat) == before
    assert [r.outcome for r in inbound_rows(client)] == ["closed", "closed"]
    invitation_again, notice = sink.to(CANDIDATE)
    assert invitation_again.message["Message-ID"] == invitation.message["Message-ID"]
    assert notice.message["Subject"] == "Re: Interview"
    assert notice.message["Auto-Submitted"] == "auto-replied"
    assert notice.message["In-Reply-To"] == first["Message-ID"]
    assert "has been closed" in notice.text()

    # A staff member writing again reopens it; then replies land again.
    body(world["emp_team"].send(chat, "We are back: the role reopened."), 201)
    smtp_send(settings, reply_to(invitation, "Great, still interested."))
    assert thread(world, chat)[-1]["body"] == "Great, still interested."


def test_the_same_mail_delivered_twice_is_posted_once(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    reply = reply_to(invitation, "Confirmed.")
    smtp_send(settings, reply)
    response = client.post(
        "/api/v1/inbound/email",
        content=reply.as_bytes(),
        headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"},
    )
    assert body(response, 200)["duplicate"] is True
    assert [m["body"] for m in thread(world, chat)].count("Confirmed.") == 1
    assert len(inbound_rows(client)) == 1


def test_a_bounce_marks_the_delivery_failed_and_is_never_posted(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    original = invitation.message
    dsn = POSTFIX_DSN.format(
        original_from=original["From"],
        original_message_id=original["Message-ID"],
        message_id=make_msgid(domain="mx.example.org"),
    ).encode()
    before = thread(world, chat)

    # To the invitation's own bounce address (VERP): a bounce counts only there.
    assert invitation.mail_from.startswith("b-m-")
    smtp_send(settings, dsn, to=invitation.mail_from)

    assert thread(world, chat)[:-1] == before[:-1]
    (delivery,) = thread(world, chat)[-1]["deliveries"]
    assert delivery["status"] == "failed"
    assert "5.1.1" in delivery["last_error"] or "550" in delivery["last_error"]
    assert inbound_rows(client)[0].outcome == "bounce"


def test_staff_answering_a_notification_by_email_post_as_themselves(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    worker: Worker,
    sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    body(world["cand"].send(chat, "Which documents do I need?"), 201)
    clock.advance(seconds=settings.notify_delay_seconds + 1)
    drain(worker)
    (notification,) = sink.to("emp_team@example.com")
    reply = reply_to(
        notification, "Your passport and diploma.", sender="Tess Team <emp_team@example.com>"
    )
    smtp_send(settings, reply)

    last = thread(world, chat)[-1]
    assert last["author"]["id"] == "emp_team" and last["channel"] == "email"
    assert last["body"] == "Your passport and diploma."
    assert last["deliveries"] == []  # an answer that came in by email sends no email itself
    drain(worker)
    assert sink.to(CANDIDATE) == []  # nor a copy to the candidate, who reads it in the app


def test_the_smtp_listener_is_not_an_open_relay(settings: Settings, client: TestClient) -> None:
    message = EmailMessage()
    message["From"] = "someone@example.org"
    message["To"] = "victim@elsewhere.example"
    message["Subject"] = "hi"
    message.set_content("hi")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp_send(settings, message)
    assert refused.value.recipients["victim@elsewhere.example"][0] == 550
    assert inbound_rows(client) == []


def test_the_webhook_checks_its_secret_and_input(
    client: TestClient, settings: Settings, invitation: Delivered
) -> None:
    raw = reply_to(invitation, "Hi").as_bytes()
    rfc822 = {"Content-Type": "message/rfc822"}

    def post(headers: dict[str, str], content: bytes = raw) -> Any:
        return client.post("/api/v1/inbound/email", content=content, headers=headers)

    assert body(post(rfc822), 401)["error"]["code"] == "unauthorized"
    assert post(rfc822 | {"Authorization": "Bearer wrong"}).status_code == 401
    wrong_type = post({"Content-Type": "text/plain", "Authorization": f"Bearer {SECRET}"})
    assert body(wrong_type, 415)["error"]["code"] == "unsupported_media_type"
    empty = post(rfc822 | {"Authorization": f"Bearer {SECRET}"}, b"  ")
    assert body(empty, 422)["error"]["fields"] == {"body": "must be an email message"}
    import base64

    basic = base64.b64encode(f"mailgun:{SECRET}".encode()).decode()
    assert body(post(rfc822 | {"Authorization": f"Basic {basic}"}), 200)["outcome"] == "posted"


def test_the_webhook_is_off_without_a_secret(
    world: World, settings: Settings, db: Database, clock: FrozenClock
) -> None:
    from jobchat.app import create_app

    app = create_app(
        settings.model_copy(update={"inbound_email_secret": None, "inbound_smtp_port": None}),
        db=db,
        clock=clock,
    )
    with TestClient(app) as other:
        response = other.post(
            "/api/v1/inbound/email",
            content=b"From: a@b\n\nhi",
            headers={"Content-Type": "message/rfc822"},
        )
    assert body(response, 404)["error"]["code"] == "inbound_email_disabled"


def test_the_webhook_takes_mail_larger_than_an_api_body_but_not_unbounded(
    world: World, settings: Settings, db: Database, clock: FrozenClock, chat: int
) -> None:
    from jobchat.app import create_app

    limited = settings.model_copy(
        update={"max_inbound_email_bytes": 200_000, "inbound_smtp_port": None}
    )
    app = create_app(limited, db=db, clock=clock)
    headers = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"}
    with TestClient(app) as other:
        big = b"From: x@example.org\nSubject: big\n\n" + b"a" * 150_000
        assert other.post("/api/v1/inbound/email", content=big, headers=headers).status_code == 200
        huge = big + b"a" * 100_000
        response = other.post("/api/v1/inbound/email", content=huge, headers=headers)
    assert body(response, 413)["error"]["code"] == "payload_too_large"
