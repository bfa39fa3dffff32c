"""Rig of the inbound email authenticity tests: the app receiving mail on its own SMTP
listener and by webhook, asking the stand-in DNS server (tests/dns_support.py), and a client
that delivers over SMTP from a chosen loopback address, with a chosen HELO and envelope sender,
keeping the server's answer (250, or 451 to try again later)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from jobchat.config import Settings
from tests.dns_support import DnsServer
from tests.mail_support import SmtpSink, free_port, smtp_settings
from tests.test_mail_inbound import SECRET

AUTHSERV_ID = "mx.jobchat.test"  # our relay's authserv-id in Authentication-Results
WEBHOOK_HEADERS = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"}


def auth_settings(settings: Settings, sink: SmtpSink, dns: DnsServer, **extra: Any) -> Settings:
    """Mail in over SMTP and webhook; DMARC checked against the stand-in DNS; no SMTP peer
    trusted as a relay unless ``extra`` says so."""
    return smtp_settings(
        settings,
        sink,
        inbound_smtp_port=free_port(),
        inbound_email_secret=SECRET,
        mail_trusted_relays="",
        mail_authserv_id=AUTHSERV_ID,
        dns_server=dns.address,
        dns_timeout_seconds=0.4,
        **extra,
    )


@dataclass(frozen=True)
class Answer:
    code: int
    text: str


def smtp_deliver(
    settings: Settings,
    raw: bytes,
    *,
    to: str,
    mail_from: str = "cand@example.org",
    source: str = "127.0.0.1",
    helo: str = "mx.example.org",
) -> Answer:
    """Deliver ``raw`` to the app's SMTP listener as a sending mail server does, from the
    loopback address ``source``; the answer to DATA."""
    assert settings.inbound_smtp_port is not None
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with smtplib.SMTP(
        "127.0.0.1", settings.inbound_smtp_port, timeout=10, source_address=(source, 0)
    ) as smtp:
        smtp.ehlo(helo)
        code, _ = smtp.mail(mail_from)
        assert code == 250
        code, _ = smtp.rcpt(to)
        assert code == 250
        code, text = smtp.data(raw)
    return Answer(code, text.decode())


def webhook_deliver(client: TestClient, raw: bytes, **params: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/inbound/email", content=raw, headers=WEBHOOK_HEADERS, params=params
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found
