"""automatic_reason and bounce_of: mail sent by machines (bounces, auto-replies, lists) is told
from a person's reply. The fixtures in fixtures/mail are raw messages as the servers write them."""

from __future__ import annotations

import base64
import email
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from jobchat.mail.automatic import Bounce, automatic_reason, bounce_of

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
JANE = "r-12-34-k9f2x7q1@reply.example.com"
SENT = "<msg-981-a7c3e9f1b2@reply.example.com>"


def load(name: str) -> EmailMessage:
    return parse((FIXTURES / name).read_bytes())


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def mail(headers: str, body: str = "Yes, Tuesday works.\n\nAna\n") -> EmailMessage:
    """A plain-text mail from a person, plus ``headers``."""
    head = (
        f"From: Ana Silva <ana@example.org>\nTo: {JANE}\nSubject: Re: Interview\n"
        f"Date: Mon, 5 Jan 2026 10:00:00 +0000\nMessage-ID: <a1@example.org>\n"
        f"In-Reply-To: {SENT}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    )
    return parse(f"{head}{headers}\n{body}".encode())


# -- bounces -------------------------------------------------------------------------------------

BOUNCES = [
    pytest.param(
        "bounce_postfix.eml",
        Bounce(
            original_message_ids=(SENT,),
            recipients=("ana@example.org",),
            permanent=True,
            reason="550 5.1.1 <ana@example.org>: Recipient address rejected: User unknown in "
            "virtual mailbox table",
        ),
        id="postfix-dsn",
    ),
    pytest.param(
        "bounce_delayed.eml",
        Bounce(
            original_message_ids=(SENT,),
            recipients=("ana@example.org",),
            permanent=False,
            reason="connect to mx.example.org[192.0.2.10]:25: Connection timed out",
        ),
        id="postfix-delayed-4.4.7",
    ),
    pytest.param(
        "bounce_exim.eml",
        Bounce(
            original_message_ids=("<msg-982-c4d5e6f7a8@reply.example.com>",),
            recipients=("bob@example.net",),
            permanent=True,
            reason="550 5.1.1 <bob@example.net>: mailbox unavailable",
        ),
        id="exim-non-standard",
    ),
    pytest.param(
        "bounce_gmail.eml",
        Bounce(
            original_message_ids=(SENT,),
            recipients=("carla@example.com",),
            permanent=True,
            reason="550-5.1.1 The email account that you tried to reach does not exist. Please "
            "try double-checking the recipient's email address for typos or unnecessary spaces. "
            "For more information, go to https://support.google.com/mail/?p=NoSuchUser "
            "41be03b00d2f7-5f3a9d1c2e4si1234567a12.3 - gsmtp",
        ),
        id="gmail-dsn",
    ),
    pytest.param(
        "bounce_exchange.eml",
        Bounce(
            original_message_ids=("<msg-983-e5f6a7b8c9@reply.example.com>",),
            recipients=("dan.weber@contoso.com",),
            permanent=True,
            reason="550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
            "address lookup",
        ),
        id="exchange-ndr",
    ),
]


@pytest.mark.parametrize(("name", "expected"), BOUNCES)
def test_a_bounce_is_read(name: str, expected: Bounce) -> None:
    assert bounce_of(load(name), "<>") == expected
    assert bounce_of(load(name)) == expected  # the envelope is not needed


@pytest.mark.parametrize(("name", "expected"), BOUNCES)
def test_a_bounce_is_automatic(name: str, expected: Bounce) -> None:
    assert automatic_reason(load(name)) == "bounce"


def test_a_report_of_successful_delivery_is_not_a_bounce() -> None:
    message = parse(
        b"From: MAILER-DAEMON@mail.example.org (Mail Delivery System)\n"
        b"Subject: Successful Mail Delivery Report\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nYour message was successfully delivered.\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.example.org\n\n"
        b"Final-Recipient: rfc822; ana@example.org\nAction: relayed\nStatus: 2.0.0\n\n--b--\n"
    )
    assert bounce_of(message) is None
    assert automatic_reason(message) == "bounce"


def test_a_transient_and_a_permanent_failure_make_a_permanent_bounce() -> None:
    message = parse(
        b"From: MAILER-DAEMON@mail.example.org\nSubject: Undelivered Mail\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.example.org\n\n"
        b"Final-Recipient: rfc822; <Ann@Example.org>\nAction: delayed\nStatus: 4.2.2\n\n"
        b"Final-Recipient: rfc822; bo@example.org\nAction: failed\nStatus: 5.2.1\n\n"
        b"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <x1@reply.example.com>\n"
        b"Subject: Hi\n\n--b--\n"
    )
    assert bounce_of(message) == Bounce(
        original_message_ids=("<x1@reply.example.com>",),
        recipients=("ann@example.org", "bo@example.org"),
        permanent=True,
        reason="Status 5.2.1",  # the permanent failure's
    )


def test_a_base64_delivery_report_is_read() -> None:
    report = base64.b64encode(
        b"Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; ana@example.org\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 no such user\r\n"
    )
    message = parse(
        b"From: postmaster@mx.example.org\nSubject: Undeliverable\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        b"--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        + report
        + b"\n--b\nContent-Type: message/rfc822\n\n"
        + b"Message-ID: <x2@reply.example.com>\n\nHi\n--b--\n"
    )
    assert bounce_of(message) == Bounce(
        original_message_ids=("<x2@reply.example.com>",),
        recipients=("ana@example.org",),
        permanent=True,
        reason="550 no such user",
    )


def test_an_exim_delay_warning_is_transient() -> None:
    message = parse(
        b"From: Mail Delivery System <Mailer-Daemon@mx1.example.net>\n"
        b"Subject: Warning: message 1vcXyZ-00AbCd-7Q delayed 24 hours\n"
        b"Auto-Submitted: auto-replied\nX-Failed-Recipients: bob@example.net\n"
        b"Content-Type: text/plain\n\n"
        b"This message was created automatically by mail delivery software.\n"
        b"A message that you sent has not yet been delivered to one or more of its\n"
        b"recipients after more than 24 hours on the queue on mx1.example.net.\n\n"
        b"  bob@example.net\n    Delay reason: SMTP error from remote mail server\n\n"
        b"------ This is a copy of the message's headers. ------\n\n"
        b"Message-ID: <msg-982-c4d5e6f7a8@reply.example.com>\nSubject: Interview\n"
    )
    bounce = bounce_of(message)
    assert bounce is not None
    assert bounce.permanent is False
    assert bounce.recipients == ("bob@example.net",)
    assert bounce.original_message_ids == ("<msg-982-c4d5e6f7a8@reply.example.com>",)


def test_a_long_diagnostic_is_cut_to_500_characters() -> None:
    diagnostic = "smtp; 550 5.7.1 " + "policy rejection " * 60
    message = parse(
        b"From: postmaster@mail.example.org\nSubject: Delivery failure\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.example.org\n\n"
        b"Final-Recipient: rfc822; ana@example.org\nAction: failed\nStatus: 5.7.1\n"
        + f"Diagnostic-Code: {diagnostic}\n\n--b--\n".encode()
    )
    bounce = bounce_of(message)
    assert bounce is not None
    assert len(bounce.reason) == 500
    assert bounce.reason.startswith("550 5.7.1 policy rejection")


# -- auto-replies and other machines -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("ooo_gmail.eml", "auto_submitted", id="gmail-vacation-auto-replied"),
        pytest.param("ooo_exchange.eml", "auto_submitted", id="exchange-oof-auto-generated"),
        pytest.param("vacation_precedence.eml", "precedence", id="vacation-precedence-bulk"),
        pytest.param("mailing_list.eml", "mailing_list", id="mailman-list"),
    ],
)
def test_a_machine_mail_is_automatic_but_no_bounce(name: str, reason: str) -> None:
    assert automatic_reason(load(name)) == reason
    assert bounce_of(load(name)) is None
    assert bounce_of(load(name), "<>") is None  # auto-replies come from <> too


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied\n", "auto_submitted"),
        ("Auto-Submitted: Auto-Generated\n", "auto_submitted"),
        ('Auto-Submitted: auto-replied; owner-email="ana@example.org"\n', "auto_submitted"),
        ("X-Autoreply: yes\n", "auto_reply"),
        ("X-Autorespond: Out of office\n", "auto_reply"),
        ("List-Id: <jobs.lists.example.org>\n", "mailing_list"),
        ("List-Unsubscribe: <mailto:leave@lists.example.org>\n", "mailing_list"),
        ("Precedence: bulk\n", "precedence"),
        ("Precedence: Junk\n", "precedence"),
        ("Precedence: list\n", "precedence"),
        ("Precedence: auto_reply\n", "precedence"),
        ("Return-Path: <>\n", "bounce"),
    ],
)
def test_automatic_headers(headers: str, reason: str) -> None:
    assert automatic_reason(mail(headers)) == reason


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.org",
        "postmaster@example.org",
        "noreply@example.org",
        "no-reply@accounts.example.com",
        "No_Reply@example.org",
        "do-not-reply@example.org",
        "donotreply@example.org",
        "noreply+notifications@example.org",
    ],
)
def test_a_machine_sender(sender: str) -> None:
    message = parse(f"From: {sender}\nTo: {JANE}\nSubject: Hello\n\nHello.\n".encode())
    assert automatic_reason(message) == "mailer_daemon"
    assert bounce_of(message) is None


@pytest.mark.parametrize("envelope", ["", "<>", " <> "])
def test_an_empty_envelope_sender_is_a_bounce(envelope: str) -> None:
    assert automatic_reason(mail(""), envelope) == "bounce"


def test_a_read_receipt_is_a_report() -> None:
    message = parse(
        b"From: Ana <ana@example.org>\nSubject: Read: Interview\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nYour message was read.\n--b\n"
        b"Content-Type: message/disposition-notification\n\n"
        b"Final-Recipient: rfc822; ana@example.org\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\n\n--b--\n"
    )
    assert automatic_reason(message) == "report"
    assert bounce_of(message) is None


# -- people ----------------------------------------------------------------------------------------

PEOPLE = [
    "gmail_web.eml",
    "gmail_android.eml",
    "gmail_attachment.eml",
    "gmail_french.eml",
    "outlook_desktop.eml",
    "outlook_web.eml",
    "outlook_ios.eml",
    "outlook_german.eml",
    "apple_mail.eml",
    "iphone_mail.eml",
    "thunderbird.eml",
    "samsung_email.eml",
    "yahoo.eml",
    "html_only.eml",
    "japanese.eml",
    "russian_koi8r.eml",
    "spanish_latin1.eml",
    "mutt_bottom_post.eml",
    "only_quote.eml",
]


@pytest.mark.parametrize("name", PEOPLE)
def test_a_persons_reply_is_not_automatic(name: str) -> None:
    message = load(name)
    assert automatic_reason(message) is None
    assert automatic_reason(message, "ana.silva@example.org") is None
    assert bounce_of(message) is None


@pytest.mark.parametrize(
    "headers",
    [
        "X-Auto-Response-Suppress: All\n",  # Outlook sets it on people's mail too
        "Auto-Submitted: no\n",
        "Auto-Submitted: No\n",
        "Precedence: first-class\n",
        "Return-Path: <ana@example.org>\n",
        "Subject: Returned mail: my CV\n",
    ],
)
def test_headers_that_do_not_make_a_mail_automatic(headers: str) -> None:
    message = mail(headers)
    assert automatic_reason(message, "ana@example.org") is None
    assert bounce_of(message, "ana@example.org") is None


def test_a_person_writing_about_a_failure_is_not_a_bounce() -> None:
    body = "My last mail could not be delivered: 550 5.1.1 user unknown. New address below.\n"
    message = mail("", body)
    assert bounce_of(message, "ana@example.org") is None
    assert automatic_reason(message, "ana@example.org") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"From: <<<\nContent-Type: multipart/report; report-type=delivery-status\n\nx",
        b"From: MAILER-DAEMON@x\nContent-Type: multipart/report; boundary=b; "
        b"report-type=delivery-status\n\n--b\nContent-Type: message/delivery-status\n"
        b"Content-Transfer-Encoding: base64\n\n!!!\n--b--\n",
        b"From: =?utf-8?q?broken\nX-Failed-Recipients: ,,,\nSubject: \xff\xfe\n\n\xff",
    ],
)
def test_odd_input_does_not_raise(raw: bytes) -> None:
    message = parse(raw)
    reason = automatic_reason(message)
    assert reason is None or isinstance(reason, str)
    bounce = bounce_of(message)
    assert bounce is None or isinstance(bounce, Bounce)
