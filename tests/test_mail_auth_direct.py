"""Inbound email authenticity, checked by jobchat itself: mail straight from the internet to
its SMTP listener (a real aiosmtpd server on loopback), DKIM signed by dkimpy with keys made
here, SPF for the peer's address, the DMARC record of the From: domain — all looked up in a
DNS server on loopback. A reply whose DMARC result is fail is kept but never posted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from jobchat.config import Settings
from jobchat.db.engine import Database
from tests.dns_support import DkimKey, DnsServer, dns_server
from tests.mail_auth_support import auth_settings, smtp_deliver
from tests.mail_support import Delivered, SmtpSink, free_port, sink
from tests.support import World
from tests.test_mail_inbound import chat, inbound_rows, invitation, reply_to, thread, worker

__all__ = ["chat", "dns_server", "invitation", "sink", "worker"]  # fixtures


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, dns_server: DnsServer) -> Settings:
    return auth_settings(settings, sink, dns_server)


def reply(invitation: Delivered, text: str, sender: str = "Carla <cand@example.org>") -> bytes:
    return reply_to(invitation, text, sender=sender).as_bytes()


def to(invitation: Delivered) -> str:
    return str(invitation.message["Reply-To"])


def test_a_dkim_signed_reply_from_a_p_reject_domain_is_posted(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
) -> None:
    zone = dns_server.zone
    zone.dmarc("example.org", "v=DMARC1; p=reject; rua=mailto:d@example.org")
    key = DkimKey.make("example.org").publish(zone)
    raw = key.sign(reply(invitation, "Signed and sealed: Tuesday works."))

    # Sent by a mailing service with its own envelope domain (SPF says nothing): DKIM decides.
    answer = smtp_deliver(settings, raw, to=to(invitation), mail_from="b@mailer.example.net")

    assert answer.code == 250
    assert thread(world, chat)[-1]["body"] == "Signed and sealed: Tuesday works."
    (row,) = inbound_rows(client)
    assert row.outcome == "posted"
    assert ("s1._domainkey.example.org", "TXT") in zone.asked


@pytest.mark.parametrize("forgery", ["unsigned", "signed_by_another_domain", "altered"])
def test_a_forged_from_of_a_p_reject_domain_is_recorded_and_not_posted(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
    forgery: str,
) -> None:
    zone = dns_server.zone
    zone.dmarc("example.org", "v=DMARC1; p=reject")
    genuine = DkimKey.make("example.org").publish(zone)
    # The forger's own domain, with a valid key and a passing SPF: nothing of it is aligned.
    theirs = DkimKey.make("evil.example").publish(zone)
    zone.txt("evil.example", "v=spf1 ip4:127.0.0.1 -all")
    raw = reply(invitation, "Please withdraw my application.")
    if forgery == "signed_by_another_domain":
        raw = theirs.sign(raw)
    elif forgery == "altered":
        raw = genuine.sign(reply(invitation, "Tuesday works.")).replace(
            b"Tuesday works.", b"Please withdraw my application."
        )
    before = thread(world, chat)

    answer = smtp_deliver(settings, raw, to=to(invitation), mail_from="m@evil.example")

    # Kept, and refused as the domain's policy asks: the sending server bounces it.
    assert (answer.code, answer.text[:5]) == (550, "5.7.1")
    assert thread(world, chat) == before
    (row,) = inbound_rows(client)
    assert row.outcome == "dmarc_fail"
    assert row.detail is not None and "example.org (p=reject)" in row.detail
    assert row.message_id is None


def test_a_forgery_does_not_stand_in_for_the_genuine_mail_of_its_message_id(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
) -> None:
    zone = dns_server.zone
    zone.dmarc("example.org", "v=DMARC1; p=reject")
    key = DkimKey.make("example.org").publish(zone)
    genuine = reply_to(invitation, "The real answer: yes.", sender="cand@example.org")
    forged = reply_to(invitation, "Withdraw me.", sender="cand@example.org")
    forged.replace_header("Message-ID", genuine["Message-ID"])

    answers = [
        smtp_deliver(settings, raw, to=to(invitation)).code
        for raw in (forged.as_bytes(), forged.as_bytes(), key.sign(genuine.as_bytes()))
    ]

    assert answers == [550, 550, 250]

    assert [r.outcome for r in inbound_rows(client)] == ["dmarc_fail", "posted"]
    assert thread(world, chat)[-1]["body"] == "The real answer: yes."


@pytest.mark.parametrize(
    ("spf_domain", "spf_record", "dmarc_record", "mail_from", "outcome"),
    [
        # SPF passes for the From: domain itself.
        ("example.org", "v=spf1 ip4:127.0.0.1 -all", "v=DMARC1; p=reject", "cand@example.org",
         "posted"),
        # SPF fails: the peer is not among the domain's servers.
        ("example.org", "v=spf1 ip4:192.0.2.1 -all", "v=DMARC1; p=reject", "cand@example.org",
         "dmarc_fail"),
        # SPF passes for a subdomain: aligned when relaxed (the default) ...
        ("bounces.example.org", "v=spf1 ip4:127.0.0.0/8 -all", "v=DMARC1; p=reject",
         "b@bounces.example.org", "posted"),
        # ... not when the record asks for strict alignment.
        ("bounces.example.org", "v=spf1 ip4:127.0.0.0/8 -all", "v=DMARC1; p=reject; aspf=s",
         "b@bounces.example.org", "dmarc_fail"),
        # SPF passes for another organisation's domain: not aligned.
        ("example.net", "v=spf1 ip4:127.0.0.1 -all", "v=DMARC1; p=quarantine", "b@example.net",
         "dmarc_fail"),
    ],
)  # fmt: skip
def test_spf_passes_dmarc_only_when_aligned_with_the_from_domain(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
    spf_domain: str,
    spf_record: str,
    dmarc_record: str,
    mail_from: str,
    outcome: str,
) -> None:
    dns_server.zone.dmarc("example.org", dmarc_record)
    dns_server.zone.txt(spf_domain, spf_record)

    answer = smtp_deliver(
        settings, reply(invitation, "No signature here."), to=to(invitation), mail_from=mail_from
    )

    assert answer.code == (250 if outcome == "posted" else 550)
    (row,) = inbound_rows(client)
    assert row.outcome == outcome, row.detail
    posted = thread(world, chat)[-1]["body"] == "No signature here."
    assert posted is (outcome == "posted")


def test_a_dkim_signature_of_a_subdomain_is_aligned_unless_strict(
    client: TestClient, settings: Settings, invitation: Delivered, dns_server: DnsServer
) -> None:
    zone = dns_server.zone
    zone.dmarc("example.org", "v=DMARC1; p=reject; adkim=s")
    key = DkimKey.make("mail.example.org").publish(zone)
    smtp_deliver(settings, key.sign(reply(invitation, "Strict")), to=to(invitation))
    zone.records[("_dmarc.example.org", "TXT")] = ["v=DMARC1; p=reject"]
    smtp_deliver(settings, key.sign(reply(invitation, "Relaxed")), to=to(invitation))

    assert [r.outcome for r in inbound_rows(client)] == ["dmarc_fail", "posted"]


def test_without_a_dmarc_record_a_reply_is_posted_and_nothing_else_is_looked_up(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
) -> None:
    answer = smtp_deliver(
        settings, reply(invitation, "Unsigned, but my domain asks nothing."), to=to(invitation)
    )

    assert answer.code == 250
    assert thread(world, chat)[-1]["body"] == "Unsigned, but my domain asks nothing."
    assert dns_server.zone.asked == [("_dmarc.example.org", "TXT")]


def test_the_organisational_domains_record_covers_its_subdomains(
    client: TestClient, settings: Settings, invitation: Delivered, dns_server: DnsServer
) -> None:
    # No record at _dmarc.jobs.example.co.uk: the one of example.co.uk (a public suffix of two
    # labels, from the shipped list) applies, with its sp= for subdomains.
    dns_server.zone.dmarc("example.co.uk", "v=DMARC1; p=none; sp=reject")
    smtp_deliver(
        settings,
        reply(invitation, "Hi", sender="cand@jobs.example.co.uk"),
        to=to(invitation),
    )

    (row,) = inbound_rows(client)
    assert row.outcome == "dmarc_fail"
    assert row.detail is not None and "jobs.example.co.uk (p=reject)" in row.detail
    assert ("_dmarc.jobs.example.co.uk", "TXT") in dns_server.zone.asked


@pytest.mark.parametrize("silent", ["_dmarc.example.org", "s1._domainkey.example.org"])
def test_a_dns_timeout_makes_the_sender_try_again_later_and_loses_nothing(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
    silent: str,
) -> None:
    zone = dns_server.zone
    zone.dmarc("example.org", "v=DMARC1; p=reject")
    raw = DkimKey.make("example.org").publish(zone).sign(reply(invitation, "Still keen."))
    zone.silent.add(silent)
    before = thread(world, chat)

    answer = smtp_deliver(settings, raw, to=to(invitation), mail_from="b@mailer.example.net")

    assert answer.code == 451, answer
    assert thread(world, chat) == before
    assert inbound_rows(client) == []
    # The sending server tries again once the DNS answers.
    zone.silent.clear()
    assert smtp_deliver(settings, raw, to=to(invitation)).code == 250
    assert thread(world, chat)[-1]["body"] == "Still keen."


def test_authentication_results_from_an_untrusted_peer_are_ignored_and_from_the_relay_read(
    world: World,
    settings: Settings,
    db: Database,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
) -> None:
    """The relay is 127.0.0.2; the same mail from 127.0.0.1 (anyone on the internet) is
    checked here, its Authentication-Results header being the sender's own words."""
    from jobchat.app import create_app

    dns_server.zone.dmarc("example.org", "v=DMARC1; p=reject")
    with_relay = settings.model_copy(
        update={"mail_trusted_relays": "127.0.0.2", "inbound_smtp_port": free_port()}
    )
    says_pass = b"Authentication-Results: mx.jobchat.test; dmarc=pass header.from=example.org\r\n"
    app = create_app(with_relay, db=db)
    with TestClient(app) as other:
        direct = says_pass + reply(invitation, "From anyone")
        relayed = says_pass + reply(invitation, "From the relay")
        assert smtp_deliver(with_relay, direct, to=to(invitation)).code == 550
        asked = list(dns_server.zone.asked)
        assert smtp_deliver(with_relay, relayed, to=to(invitation), source="127.0.0.2").code == 250
        assert [r.outcome for r in inbound_rows(other)] == ["dmarc_fail", "posted"]
    assert dns_server.zone.asked == asked  # the relay's word: nothing looked up
    assert thread(world, chat)[-1]["body"] == "From the relay"


def test_with_the_checks_off_nothing_is_looked_up(
    world: World,
    settings: Settings,
    db: Database,
    chat: int,
    invitation: Delivered,
    dns_server: DnsServer,
) -> None:
    from jobchat.app import create_app

    dns_server.zone.dmarc("example.org", "v=DMARC1; p=reject")
    off = settings.model_copy(update={"mail_authenticity": "off", "inbound_smtp_port": free_port()})
    app = create_app(off, db=db)
    with TestClient(app):
        assert smtp_deliver(off, reply(invitation, "Unchecked"), to=to(invitation)).code == 250
    assert thread(world, chat)[-1]["body"] == "Unchecked"
    assert dns_server.zone.asked == []


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("mail_trusted_relays", "10.0.0.0/8, mx.example.org", "is not an IP address"),
        ("mail_trusted_relays", "*", "is not an IP address"),
        ("dns_server", "dns.example.net", "is not an IP address"),
        ("dns_server", "127.0.0.1:99999", "port"),
        ("mail_authenticity", "sometimes", "enforce or off"),
    ],
)
def test_a_bad_authenticity_setting_stops_start_up(name: str, value: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(_env_file=None, **{name: value})  # type: ignore[arg-type]
    assert Settings(_env_file=None, dns_server="[::1]:5353").dns_server == "[::1]:5353"


def test_junk_signatures_and_impossible_domains_are_judged_not_crashed_on(
    client: TestClient, settings: Settings, invitation: Delivered, dns_server: DnsServer
) -> None:
    dns_server.zone.dmarc("example.org", "v=DMARC1; p=reject")
    junk = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; b=@@@; bh=!!\r\n" + reply(
        invitation, "Junk signature"
    )
    impossible = reply(invitation, "Odd domain", sender=f"cand@{'a' * 70}.org")

    assert smtp_deliver(settings, junk, to=to(invitation)).code == 550
    assert smtp_deliver(settings, impossible, to=to(invitation)).code == 250

    # The junk signature is no pass: DMARC fails. No such domain can publish a policy: none,
    # and it is the member's own address that the reply lacks.
    assert [r.outcome for r in inbound_rows(client)] == ["dmarc_fail", "wrong_sender"]
