"""Inbound email authenticity as a trusted relay reports it: the webhook's provider received the
mail from the internet and wrote its DMARC result in an Authentication-Results header. Only the
topmost header with our authserv-id is believed (RFC 8601 §5, §7.1); the sender can write any
other, above or below it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from jobchat.db.engine import Database
from tests.dns_support import DnsServer, dns_server
from tests.mail_auth_support import WEBHOOK_HEADERS, auth_settings, webhook_deliver
from tests.mail_support import Delivered, SmtpSink, free_port, sink
from tests.support import World
from tests.test_mail_inbound import chat, inbound_rows, invitation, reply_to, thread, worker

__all__ = ["chat", "dns_server", "invitation", "sink", "worker"]  # fixtures

OURS = "mx.jobchat.test"  # the authserv-id of our relay (JOBCHAT_MAIL_AUTHSERV_ID)


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, dns_server: DnsServer) -> Settings:
    return auth_settings(settings, sink, dns_server)


def results(authserv_id: str, dmarc: str) -> bytes:
    return (
        f"Authentication-Results: {authserv_id};\r\n\tspf=pass smtp.mailfrom=example.org;\r\n"
        f"\tdmarc={dmarc} (p=reject dis=none) header.from=example.org\r\n"
    ).encode()


def relayed(invitation: Delivered, text: str, *stack: tuple[str, str]) -> bytes:
    """A reply with Authentication-Results headers on top, as (authserv-id, dmarc result) from
    the top down: the relay adds its own above whatever the mail came with."""
    raw = reply_to(invitation, text).as_bytes()
    return b"".join(results(*entry) for entry in stack) + raw


@pytest.mark.parametrize(
    ("stack", "outcome"),
    [
        pytest.param([(OURS, "fail")], "dmarc_fail", id="ours-fail"),
        pytest.param([(OURS, "pass")], "posted", id="ours-pass"),
        # The sender's own "pass" under ours, and one by another server above it: ours counts.
        pytest.param(
            [("mx.elsewhere.example", "pass"), (OURS, "fail"), (OURS, "pass")],
            "dmarc_fail",
            id="attacker-pass-above-and-below-ours-fail",
        ),
        pytest.param([(OURS, "pass"), (OURS, "fail")], "posted", id="lower-fail-ignored"),
        # Only other servers' words: nothing we trust, so no result (none) and it is let in.
        pytest.param([("mx.elsewhere.example", "fail")], "posted", id="other-id-ignored"),
        # The relay could not tell: it has taken the mail and would not send it again.
        pytest.param([(OURS.upper(), "temperror")], "posted", id="ours-temperror-accepted"),
    ],
)
def test_the_topmost_authentication_results_of_our_relay_decide(
    world: World,
    client: TestClient,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
    stack: list[tuple[str, str]],
    outcome: str,
) -> None:
    before = thread(world, chat)

    found = webhook_deliver(client, relayed(invitation, "Via the relay", *stack))

    assert found["outcome"] == outcome
    (row,) = inbound_rows(client)
    assert row.outcome == outcome
    after = thread(world, chat)
    if outcome == "posted":
        assert after[-1]["body"] == "Via the relay" and found["message"] == after[-1]["id"]
    else:
        assert after == before and found["message"] is None
        assert row.detail == f"{OURS} says dmarc=fail (p=reject)"
    assert dns_server.zone.asked == []  # the relay's word is taken: nothing looked up here


@pytest.mark.parametrize(
    ("stack", "outcome"),
    [
        pytest.param([("mx.relay.example", "fail")], "dmarc_fail", id="topmost-fail"),
        pytest.param([("mx.relay.example", "pass"), ("x", "fail")], "posted", id="lower-ignored"),
        pytest.param([], "posted", id="no-header"),
    ],
)
def test_without_an_authserv_id_the_topmost_header_is_the_relays(
    world: World,
    settings: Settings,
    db: Database,
    chat: int,
    invitation: Delivered,
    stack: list[tuple[str, str]],
    outcome: str,
) -> None:
    """A plain setup (no JOBCHAT_MAIL_AUTHSERV_ID): the relay's header is the one it put on
    top, whatever its authserv-id. Only a "fail" there changes anything, so a sender's own
    header on top (a relay that adds none) can only refuse the sender's mail."""
    from jobchat.app import create_app

    plain = settings.model_copy(update={"mail_authserv_id": None, "inbound_smtp_port": free_port()})
    with TestClient(create_app(plain, db=db)) as other:
        response = other.post(
            "/api/v1/inbound/email",
            content=relayed(invitation, "Relayed", *stack),
            headers=WEBHOOK_HEADERS,
        )
        assert response.json()["outcome"] == outcome
    assert (thread(world, chat)[-1]["body"] == "Relayed") == (outcome == "posted")


def test_the_webhook_documents_the_dmarc_fail_outcome(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["InboundEmailOut"]
    assert "dmarc_fail" in schema["properties"]["outcome"]["enum"]
