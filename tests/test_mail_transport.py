"""The SMTP transport speaks to what the server offers: 8-bit bodies only to a server that takes
8BITMIME, UTF-8 addresses only to one that takes SMTPUTF8. Real aiosmtpd servers on loopback
(tests/mail_support.SmtpSink), one per kind of server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from jobchat.mail.transport import SmtpServer, SmtpTransport
from tests.mail_support import SmtpSink

TEXT = "Grüße aus Köln — the interview is at 10:00 ✓"


@contextmanager
def mail_server(**options: Any) -> Iterator[tuple[SmtpTransport, SmtpSink]]:
    sink = SmtpSink(options=options).start()
    try:
        yield SmtpTransport(SmtpServer.parse(sink.url), timeout=10), sink
    finally:
        sink.stop()


def a_message(to: str = "ada@example.org") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "jobchat <jobchat@example.com>"
    message["To"] = to
    message["Subject"] = "Ihre Bewerbung — nächste Schritte"
    message.set_content(TEXT)
    message.add_alternative(f"<p>{TEXT}</p>", subtype="html")
    return message


def test_an_eight_bit_body_goes_as_eight_bits_to_a_server_that_takes_them() -> None:
    with mail_server() as (transport, sink):
        asyncio.run(
            transport.send(a_message(), sender="b@example.com", recipients=["ada@example.org"])
        )
    (delivered,) = sink.received
    assert "BODY=8BITMIME" in delivered.mail_options
    assert delivered.rcpt_tos == ["ada@example.org"]
    assert delivered.text().strip() == TEXT


def test_a_server_without_8bitmime_gets_seven_bits_that_say_the_same() -> None:
    # aiosmtpd offers 8BITMIME only when it leaves the data undecoded.
    with mail_server(decode_data=True) as (transport, sink):
        asyncio.run(
            transport.send(a_message(), sender="b@example.com", recipients=["ada@example.org"])
        )
    (delivered,) = sink.received
    assert not any(option.upper().startswith("BODY=") for option in delivered.mail_options)
    assert delivered.raw.isascii()
    assert delivered.text().strip() == TEXT


def test_an_address_beyond_ascii_needs_smtputf8() -> None:
    to = "zoë@example.org"
    with mail_server(enable_SMTPUTF8=True) as (transport, sink):
        asyncio.run(transport.send(a_message(to), sender="b@example.com", recipients=[to]))
    (delivered,) = sink.received
    assert "SMTPUTF8" in delivered.mail_options
    assert delivered.rcpt_tos == [to]

    # Not a permanent failure: the job is tried again (an operator may change servers).
    with (
        mail_server(enable_SMTPUTF8=False) as (transport, sink),
        pytest.raises(aiosmtplib.SMTPNotSupported),
    ):
        asyncio.run(transport.send(a_message(to), sender="b@example.com", recipients=[to]))
    assert sink.received == []
