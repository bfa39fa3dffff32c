"""Bounces that cannot be forged: each email goes out with its own signed bounce address
(VERP) as its envelope sender, and a delivery failure report counts only when it comes back to
that address and does not fail DMARC. A report naming our Message-ID anywhere else — the shared
bounces@ address, a made-up bounce address — is kept but marks nothing failed."""

from __future__ import annotations

from email.utils import make_msgid

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from tests.dns_support import DnsServer, dns_server
from tests.mail_auth_support import auth_settings, smtp_deliver, webhook_deliver
from tests.mail_support import Delivered, SmtpSink, drain, sink
from tests.support import World, body
from tests.test_mail_inbound import POSTFIX_DSN, chat, inbound_rows, invitation, thread, worker

__all__ = ["chat", "dns_server", "invitation", "sink", "worker"]  # fixtures


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, dns_server: DnsServer) -> Settings:
    return auth_settings(settings, sink, dns_server)


def dsn_about(invitation: Delivered) -> bytes:
    """A delivery status notification from mx.example.org about the invitation."""
    original = invitation.message
    return POSTFIX_DSN.format(
        original_from=original["From"],
        original_message_id=original["Message-ID"],
        message_id=make_msgid(domain="mx.example.org"),
    ).encode()


def delivery_status(world: World, chat: int) -> str:
    (delivery,) = thread(world, chat)[-1]["deliveries"]
    status: str = delivery["status"]
    return status


def test_each_email_has_its_own_signed_bounce_address(
    world: World, chat: int, invitation: Delivered, worker: Worker, sink: SmtpSink
) -> None:
    body(world["emp_team"].send(chat, "And Wednesday?", channel="email", subject="Also"), 201)
    drain(worker)
    first, second = sink.to("cand@example.org")
    assert first.mail_from == invitation.mail_from
    for mail in (first, second):
        assert mail.mail_from.startswith("b-m-") and mail.mail_from.endswith("@reply.example.com")
    assert second.mail_from != first.mail_from


@pytest.mark.parametrize(
    "address",
    [
        "bounces@reply.example.com",  # the shared address of old: anyone can write to it
        "b-m-1-aaaaaaaaaaaaaaaaaaaaa@reply.example.com",  # a made-up signature
    ],
)
def test_a_forged_bounce_cannot_mark_a_delivered_email_failed(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    address: str,
) -> None:
    assert delivery_status(world, chat) == "sent"

    answer = smtp_deliver(settings, dsn_about(invitation), to=address, mail_from="")

    assert answer.code == 250
    assert delivery_status(world, chat) == "sent"
    (row,) = inbound_rows(client)
    assert row.outcome == "bounce"
    assert row.detail is not None and "ignored: not sent to an email's bounce address" in row.detail


def test_a_real_bounce_to_the_emails_bounce_address_marks_it_failed(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    answer = smtp_deliver(settings, dsn_about(invitation), to=invitation.mail_from, mail_from="")

    assert answer.code == 250
    (delivery,) = thread(world, chat)[-1]["deliveries"]
    assert delivery["status"] == "failed"
    assert "5.1.1" in delivery["last_error"]
    assert inbound_rows(client)[0].detail is not None
    assert "deliveries marked failed: 1" in (inbound_rows(client)[0].detail or "")


def test_a_real_bounce_by_webhook_counts_at_the_envelope_recipient(
    world: World, client: TestClient, chat: int, invitation: Delivered
) -> None:
    # The DSN's To: header names the shared address: the envelope recipient is what counts.
    found = webhook_deliver(client, dsn_about(invitation), recipient=invitation.mail_from)

    assert found["outcome"] == "bounce"
    assert delivery_status(world, chat) == "failed"


def test_a_bounce_failing_dmarc_is_ignored_even_at_the_right_address(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
) -> None:
    # mx.example.org's organisation rejects mail it did not send: a DSN "from" it, sent from
    # a server that is not among its own, is a forgery (say, by someone who saw the address).
    zone = dns_server.zone
    zone.dmarc("example.org", "v=DMARC1; p=reject")
    zone.txt("mx.example.org", "v=spf1 ip4:192.0.2.25 -all")
    forged = smtp_deliver(settings, dsn_about(invitation), to=invitation.mail_from, mail_from="")
    assert forged.code == 250
    assert delivery_status(world, chat) == "sent"
    assert "ignored: DMARC fail" in (inbound_rows(client)[0].detail or "")

    # The real one, from mx.example.org's own server (SPF of its HELO name passes, aligned).
    zone.records[("mx.example.org", "TXT")] = ["v=spf1 ip4:127.0.0.0/8 -all"]
    real = smtp_deliver(settings, dsn_about(invitation), to=invitation.mail_from, mail_from="")
    assert real.code == 250
    assert delivery_status(world, chat) == "failed"
