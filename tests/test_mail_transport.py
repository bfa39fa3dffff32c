"""The SMTP transport speaks to what the server offers: 8-bit bodies only to a server that takes
8BITMIME, UTF-8 addresses only to one that takes SMTPUTF8. Real aiosmtpd servers on loopback,
one per kind of server."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from jobchat.mail.transport import SmtpServer, SmtpTransport
from tests.mail_support import free_port

TEXT = "Grüße aus Köln — the interview is at 10:00 ✓"


class _Keep:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@contextmanager
def mail_server(**options: Any) -> Iterator[tuple[SmtpTransport, _Keep]]:
    keep = _Keep()
    port = free_port()
    controller = Controller(keep, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        server = SmtpServer("127.0.0.1", port, None, None, implicit_tls=False)
        yield SmtpTransport(server, timeout=10), keep
    finally:
        controller.stop()


def a_message(to: str = "ada@example.org") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "jobchat <jobchat@example.com>"
    message["To"] = to
    message["Subject"] = "Ihre Bewerbung — nächste Schritte"
    message.set_content(TEXT)
    message.add_alternative(f"<p>{TEXT}</p>", subtype="html")
    return message


def body_of(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("plain",))
    assert part is not None
    content: str = part.get_content()
    return content.strip()


def raw_of(envelope: Envelope) -> bytes:
    raw = envelope.original_content or envelope.content
    assert isinstance(raw, bytes)
    return raw


def test_an_eight_bit_body_goes_as_eight_bits_to_a_server_that_takes_them() -> None:
    with mail_server() as (transport, keep):
        asyncio.run(
            transport.send(a_message(), sender="b@example.com", recipients=["ada@example.org"])
        )
    (envelope,) = keep.envelopes
    assert "BODY=8BITMIME" in envelope.mail_options
    assert envelope.rcpt_tos == ["ada@example.org"]
    assert body_of(raw_of(envelope)) == TEXT


def test_a_server_without_8bitmime_gets_seven_bits_that_say_the_same() -> None:
    # aiosmtpd offers 8BITMIME only when it leaves the data undecoded.
    with mail_server(decode_data=True) as (transport, keep):
        asyncio.run(
            transport.send(a_message(), sender="b@example.com", recipients=["ada@example.org"])
        )
    (envelope,) = keep.envelopes
    assert not any(option.upper().startswith("BODY=") for option in envelope.mail_options)
    raw = raw_of(envelope)
    assert raw.isascii()
    assert body_of(raw) == TEXT


def test_an_address_beyond_ascii_needs_smtputf8() -> None:
    to = "zoë@example.org"
    with mail_server(enable_SMTPUTF8=True) as (transport, keep):
        asyncio.run(transport.send(a_message(to), sender="b@example.com", recipients=[to]))
    (envelope,) = keep.envelopes
    assert "SMTPUTF8" in envelope.mail_options
    assert envelope.rcpt_tos == [to]

    # Not a permanent failure: the job is tried again (an operator may change servers).
    with (
        mail_server(enable_SMTPUTF8=False) as (transport, keep),
        pytest.raises(aiosmtplib.SMTPNotSupported),
    ):
        asyncio.run(transport.send(a_message(to), sender="b@example.com", recipients=[to]))
    assert keep.envelopes == []
