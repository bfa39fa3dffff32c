"""What a DMARC fail means is the From: domain's policy: under ``p=none`` the domain asks
receivers not to act on failures, so the reply is posted (noted in its record); under
``p=quarantine`` and ``p=reject`` it is refused — over SMTP with ``550 5.7.1``, so the sending
server bounces it and its sender learns it did not land; by webhook with 200 (the provider has
taken it already). Checked here from the DNS, or read from a relay's Authentication-Results."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from tests.dns_support import DnsServer, dns_server
from tests.mail_auth_support import auth_settings, smtp_deliver, webhook_deliver
from tests.mail_support import Delivered, SmtpSink, sink
from tests.support import World
from tests.test_mail_inbound import chat, inbound_rows, invitation, reply_to, thread, worker

__all__ = ["chat", "dns_server", "invitation", "sink", "worker"]  # fixtures

OURS = "mx.jobchat.test"  # the authserv-id of our relay (JOBCHAT_MAIL_AUTHSERV_ID)


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, dns_server: DnsServer) -> Settings:
    return auth_settings(settings, sink, dns_server)


def to(invitation: Delivered) -> str:
    return str(invitation.message["Reply-To"])


@pytest.mark.parametrize(
    ("record", "about", "posted"),
    [
        ("v=DMARC1; p=none; rua=mailto:d@example.org", "example.org (p=none)", True),
        # pct=0 selects no mail: the next lower policy applies (RFC 7489 §6.6.4).
        ("v=DMARC1; p=quarantine; pct=0", "example.org (p=quarantine pct=0)", True),
        ("v=DMARC1; p=reject; pct=0", "example.org (p=reject pct=0)", False),
        # Any other share is applied to every reply (none is sampled at random).
        ("v=DMARC1; p=quarantine; pct=50", "example.org (p=quarantine pct=50)", False),
        ("v=DMARC1; p=quarantine", "example.org (p=quarantine)", False),
        ("v=DMARC1; p=reject; pct=junk", "example.org (p=reject)", False),
    ],
)
def test_over_smtp_a_fail_is_acted_on_only_as_the_domains_policy_asks(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
    record: str,
    about: str,
    posted: bool,
) -> None:
    dns_server.zone.dmarc("example.org", record)
    # Sent through the phone's mail relay: neither signed nor from an SPF-listed server.
    raw = reply_to(invitation, "Yes, Tuesday works.", sender="cand@example.org").as_bytes()
    before = thread(world, chat)

    answer = smtp_deliver(settings, raw, to=to(invitation), mail_from="cand@example.org")

    (row,) = inbound_rows(client)
    reason = f"{about}: no DKIM or SPF pass"
    if posted:
        assert answer.code == 250, answer
        assert thread(world, chat)[-1]["body"] == "Yes, Tuesday works."
        assert (row.outcome, row.detail) == ("posted", f"DMARC fail let through: {reason}")
        assert row.message_id == thread(world, chat)[-1]["id"]
    else:
        assert (answer.code, answer.text) == (
            550,
            "5.7.1 Rejected by the DMARC policy of the sender's domain",
        )
        assert thread(world, chat) == before
        assert (row.outcome, row.detail, row.message_id) == ("dmarc_fail", reason, None)


def test_a_refused_mail_sent_again_is_refused_again_and_kept_once(
    client: TestClient, settings: Settings, invitation: Delivered, dns_server: DnsServer
) -> None:
    dns_server.zone.dmarc("example.org", "v=DMARC1; p=reject")
    raw = reply_to(invitation, "Withdraw me.", sender="cand@example.org").as_bytes()

    codes = [smtp_deliver(settings, raw, to=to(invitation)).code for _ in range(2)]

    assert codes == [550, 550]
    assert [r.outcome for r in inbound_rows(client)] == ["dmarc_fail"]


def relayed(invitation: Delivered, text: str, results: str) -> bytes:
    header = f"Authentication-Results: {OURS};\r\n\tspf=fail smtp.mailfrom=example.org;\r\n"
    raw = reply_to(invitation, text, sender="cand@example.org").as_bytes()
    return (header + f"\t{results}\r\n").encode() + raw


@pytest.mark.parametrize(
    ("results", "outcome", "detail"),
    [
        # As OpenDMARC, Gmail and Fastmail write the policy in the result's comment.
        ("dmarc=fail (p=none dis=none) header.from=example.org", "posted", "p=none"),
        ("dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=example.org", "posted", "p=none"),
        ("dmarc=fail (p=none,d=none) header.from=example.org", "posted", "p=none"),
        ("dmarc=fail (monitoring (p=none)) header.from=example.org", "posted", "p=none"),
        ("dmarc=fail (p=quarantine dis=quarantine) header.from=example.org", "dmarc_fail",
         "p=quarantine"),
        # sp= may be the policy that applies: none only when every one named is none.
        ("dmarc=fail (p=none sp=reject) header.from=example.org", "dmarc_fail", "p=reject"),
        # No policy named: the relay's fail refuses.
        ("dmarc=fail header.from=example.org", "dmarc_fail", ""),
        # "p=none" in a quoted reason or another method's comment is not the dmarc policy.
        ('dmarc=fail reason="said (p=none)" header.from=example.org', "dmarc_fail", ""),
        ("dkim=none (p=none); dmarc=fail header.from=example.org", "dmarc_fail", ""),
        ("dmarc=pass (p=reject dis=none) header.from=example.org", "posted", None),
    ],
)  # fmt: skip
def test_by_webhook_the_policy_the_relay_names_decides_a_fail(
    world: World,
    client: TestClient,
    chat: int,
    invitation: Delivered,
    results: str,
    outcome: str,
    detail: str | None,
) -> None:
    before = thread(world, chat)

    found = webhook_deliver(client, relayed(invitation, "Via the relay", results))

    assert found["outcome"] == outcome
    (row,) = inbound_rows(client)
    said = f"{OURS} says dmarc=fail" + (f" ({detail})" if detail else "")
    if outcome == "posted":
        assert thread(world, chat)[-1]["body"] == "Via the relay"
        assert found["message"] == thread(world, chat)[-1]["id"]
        assert row.detail == (f"DMARC fail let through: {said}" if detail is not None else None)
    else:
        assert thread(world, chat) == before and found["message"] is None
        assert row.detail == said
