"""The From: header is read once, for the DMARC check and the member check alike: a mail with
two From: headers, or two addresses in one, is never posted as the member — not over SMTP
(checked here), not by webhook (the relay's verdict, which nothing about From: may skip)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from tests.dns_support import DkimKey, DnsServer, dns_server
from tests.mail_auth_support import auth_settings, smtp_deliver, webhook_deliver
from tests.mail_support import Delivered, SmtpSink, sink
from tests.support import World
from tests.test_mail_inbound import chat, inbound_rows, invitation, reply_to, thread, worker

__all__ = ["chat", "dns_server", "invitation", "sink", "worker"]  # fixtures

OURS = "mx.jobchat.test"  # the authserv-id of our relay (JOBCHAT_MAIL_AUTHSERV_ID)

# The candidate's real address first (the one a member check of the first From: would read),
# then the forger's.
TRICKS = {
    "two_headers": (b"From: cand@example.org\r\nFrom: x@evil.example", "2 From: headers"),
    "two_in_one": (b"From: cand@example.org, x@evil.example", "2 addresses in From:"),
    "forger_first": (b"From: x@evil.example\r\nFrom: cand@example.org", "2 From: headers"),
}


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, dns_server: DnsServer) -> Settings:
    return auth_settings(settings, sink, dns_server)


def forged(invitation: Delivered, text: str, trick: str, *, on_top: bytes = b"") -> bytes:
    raw = reply_to(invitation, text, sender="cand@example.org").as_bytes()
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert raw.count(b"From: cand@example.org\r\n") == 1
    return on_top + raw.replace(b"From: cand@example.org", TRICKS[trick][0], 1)


def to(invitation: Delivered) -> str:
    return str(invitation.message["Reply-To"])


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_over_smtp_a_mail_without_one_from_address_is_refused_and_not_posted(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
    trick: str,
) -> None:
    zone = dns_server.zone
    zone.dmarc("example.org", "v=DMARC1; p=reject")
    zone.dmarc("evil.example", "v=DMARC1; p=none")
    # The forger's own domain passes everything it can: its key signs, its SPF lets us in.
    theirs = DkimKey.make("evil.example").publish(zone)
    raw = theirs.sign(forged(invitation, "Please withdraw my application.", trick))
    zone.txt("evil.example", "v=spf1 ip4:127.0.0.1 -all")
    before = thread(world, chat)

    answer = smtp_deliver(settings, raw, to=to(invitation), mail_from="m@evil.example")

    assert (answer.code, answer.text[:5]) == (550, "5.7.1"), answer
    assert thread(world, chat) == before
    (row,) = inbound_rows(client)
    assert (row.outcome, row.message_id, row.from_address) == ("dmarc_fail", None, None)
    assert row.detail == f"{TRICKS[trick][1]}: no single author domain to check"


@pytest.mark.parametrize("trick", sorted(TRICKS))
@pytest.mark.parametrize(
    ("relay_says", "outcome"),
    [
        # The relay's fail is read first: a From: trick cannot skip it.
        ("fail (p=reject dis=reject)", "dmarc_fail"),
        # The relay passed it (for one of the From: domains): still not one sender to check.
        ("pass", "wrong_sender"),
        (None, "wrong_sender"),
    ],
)
def test_by_webhook_a_mail_without_one_from_address_is_never_posted(
    world: World,
    client: TestClient,
    chat: int,
    invitation: Delivered,
    trick: str,
    relay_says: str | None,
    outcome: str,
) -> None:
    on_top = b""
    if relay_says is not None:
        on_top = f"Authentication-Results: {OURS}; dmarc={relay_says} header.from=x\r\n".encode()
    before = thread(world, chat)

    found = webhook_deliver(client, forged(invitation, "Withdraw me.", trick, on_top=on_top))

    assert (found["outcome"], found["message"]) == (outcome, None)
    assert thread(world, chat) == before
    (row,) = inbound_rows(client)
    assert row.outcome == outcome
    if outcome == "wrong_sender":
        assert row.detail == f"{TRICKS[trick][1]}: not one sender to check"
        assert row.conversation_id == chat  # the thread it was meant for, for the record


def test_one_from_address_with_a_display_name_is_the_members(
    world: World, client: TestClient, chat: int, invitation: Delivered
) -> None:
    """The strict reading still lets the usual From: through (a comma inside a quoted display
    name is not a second address)."""
    raw = reply_to(invitation, "Tuesday it is.", sender='"Candidate, Carla" <Cand@Example.org>')

    found = webhook_deliver(client, raw.as_bytes())

    assert found["outcome"] == "posted"
    assert thread(world, chat)[-1]["body"] == "Tuesday it is."
    (row,) = inbound_rows(client)
    assert row.from_address == "cand@example.org"
