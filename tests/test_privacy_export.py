"""``GET /api/v1/candidates/{ext_id}/export``: everything held about one candidate and nothing
about anyone else, in time order.

The candidate is seeded through the public surface into a conversation of every kind about them
(application, candidate_partner, case, agency, agency_private) and a job_relocation group chat
they write in; with an email that went out through an SMTP sink and a reply that came back, a
text that went out through the Twilio stand-in and was delivered, a text back and a STOP, a
file, and a message deleted for everyone. Another candidate's conversation runs beside it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from jobchat.privacy.schemas import CandidateExport
from tests.mail_support import SmtpSink, drain, sink, smtp_settings
from tests.support import TEST_CLIENT_ADDRESS, As, World, assert_error, body, start
from tests.test_mail_attachments_support import pdf, upload
from tests.test_mail_inbound import reply_to
from tests.twilio_support import (
    INBOUND_PATH,
    STATUS_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    candidate_daytime_clock,
    inbound_sms_form,
    status_callback_form,
    twilio,
    twilio_settings,
    webhook,
    worker,
)

pytestmark = TWILIO_CLIENT_WARNINGS
__all__ = ["candidate_daytime_clock", "sink", "twilio", "worker"]

SECRET = "inbound-secret"
PHONE = "+14155550123"  # the world's candidate's


@pytest.fixture
def settings(settings: Settings, twilio: TwilioServer, sink: SmtpSink) -> Settings:
    return smtp_settings(twilio_settings(settings, twilio), sink, inbound_email_secret=SECRET)


def export(integration: As, ext_id: str) -> dict[str, Any]:
    response = integration.get(f"/api/v1/candidates/{ext_id}/export")
    assert response.headers["content-type"] == "application/json", response.headers
    found: dict[str, Any] = body(response, 200)
    # The document the stream makes is the one OpenAPI describes.
    CandidateExport.model_validate(found)
    return found


def bodies(conversation: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(m["author"]["id"], m["body"]) for m in conversation["messages"]]


def test_the_export_has_all_of_the_candidate_and_nothing_of_anyone_else(
    world: World,
    client: TestClient,
    clock: FrozenClock,
    worker: Worker,
    twilio: TwilioServer,
    sink: SmtpSink,
) -> None:
    emp, cand, sp, agent = world["emp_team"], world["cand"], world["sp_in"], world["agency_user"]
    integration = world.api.integration

    def tick() -> None:
        clock.advance(seconds=1)  # well within the email notification's delay: none go out

    application = start(emp, "application", application="app1")
    partner = start(sp, "candidate_partner", candidate="cand")
    case = start(sp, "case", application="app1")
    agency = start(agent, "agency", application="app1")
    private = start(agent, "agency_private", application="app1", with_user="emp_team")
    relocation = start(emp, "job_relocation", job="job1")
    dans = start(emp, "application", application="app2")  # another candidate's

    # The application conversation: an email, its reply, a text and its answer, a file.
    invitation = body(
        emp.send(application, "Can you do Tuesday?", channel="email", subject="Interview"), 201
    )
    drain(worker)
    (mail,) = sink.to("cand@example.org")
    tick()
    reply = reply_to(mail, "Tuesday works.")
    answer = client.post(
        "/api/v1/inbound/email",
        content=reply.as_bytes(),
        headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"},
    )
    assert body(answer, 200)["outcome"] == "posted"
    tick()
    text = body(emp.send(application, "See you at 10", channel="sms"), 201)
    drain(worker)
    (resource,) = twilio.messages
    assert webhook(client, STATUS_PATH, status_callback_form(resource, "delivered")).status_code
    tick()
    assert webhook(
        client, INBOUND_PATH, inbound_sms_form(from_number=PHONE, body="Great")
    ).is_success
    tick()
    offer = upload(emp, application, "Offer.pdf", pdf("offer"), "application/pdf")
    with_file = body(emp.send(application, "Your offer", attachments=[offer]), 201)
    tick()
    band = upload(emp, application, "Bands.pdf", pdf("bands"), "application/pdf")
    regret = body(emp.send(application, "Salary band 3 (internal)", attachments=[band]), 201)
    r = emp.delete(f"/api/v1/messages/{regret['id']}", **{"for": "everyone"})
    assert r.status_code == 204, r.text
    tick()
    assert webhook(
        client, INBOUND_PATH, inbound_sms_form(from_number=PHONE, body="STOP")
    ).is_success

    # Every other kind about the candidate, staff-only ones included.
    tick()
    body(sp.send(partner, "TBB here: how is it going?"), 201)
    body(cand.send(partner, "All good"), 201)
    body(sp.send(case, "Visa papers are filed"), 201)
    body(agent.send(agency, "Agency: Carla accepted"), 201)
    body(agent.send(private, "Private: fee invoice"), 201)
    # The group chat: only what the candidate wrote there is theirs.
    body(emp.send(relocation, "Welcome, everyone moving to Leeds"), 201)
    body(cand.send(relocation, "Where do we stay?"), 201)
    # Another candidate's conversation.
    body(emp.send(dans, "Hello Dan"), 201)
    body(world["cand2"].send(dans, "Hi, Dan here"), 201)
    tick()

    data = export(integration, "cand")

    assert data["candidate"]["id"] == "cand"
    assert data["candidate"]["email"] == "cand@example.org"
    assert data["candidate"]["phone"] == PHONE
    assert data["candidate"]["sms_consent"] is False  # they texted STOP
    assert data["candidate"]["sms_number_opted_out"] is True
    assert data["deactivated_at"] is None
    assert data["exported_at"] == clock.now().isoformat().replace("+00:00", "Z")
    assert [(c["consented"], c["source"]) for c in data["consent_history"]] == [
        (True, "ats"),
        (False, "keyword"),
    ]

    convs = data["conversations"]
    assert [(c["id"], c["kind"], c["about_candidate"], c["staff_only"]) for c in convs] == [
        (application, "application", True, False),
        (partner, "candidate_partner", True, False),
        (case, "case", True, False),
        (agency, "agency", True, True),
        (private, "agency_private", True, True),
        (relocation, "job_relocation", False, False),
    ]
    by_id = {c["id"]: c for c in convs}
    assert by_id[application]["job"] == "job1" and by_id[application]["application"] == "app1"
    assert by_id[partner]["partner"] == "tbb"
    assert bodies(by_id[application]) == [
        ("emp_team", "Can you do Tuesday?"),
        ("cand", "Tuesday works."),
        ("emp_team", "See you at 10"),
        ("cand", "Great"),
        ("emp_team", "Your offer"),
        ("emp_team", "Salary band 3 (internal)"),
    ]
    assert bodies(by_id[partner]) == [("sp_in", "TBB here: how is it going?"), ("cand", "All good")]
    assert bodies(by_id[case]) == [("sp_in", "Visa papers are filed")]
    assert bodies(by_id[agency]) == [("agency_user", "Agency: Carla accepted")]
    assert bodies(by_id[private]) == [("agency_user", "Private: fee invoice")]
    assert bodies(by_id[relocation]) == [("cand", "Where do we stay?")]

    messages = {m["id"]: m for c in convs for m in c["messages"]}
    times = [m["created_at"] for m in by_id[application]["messages"]]
    assert times == sorted(times)
    email = messages[invitation["id"]]
    assert (email["channel"], email["subject"]) == ("email", "Interview")
    assert [(d["channel"], d["address"], d["status"]) for d in email["deliveries"]] == [
        ("email", "cand@example.org", "sent")
    ]
    sms = messages[text["id"]]
    assert [(d["channel"], d["address"], d["status"]) for d in sms["deliveries"]] == [
        ("sms", PHONE, "delivered")
    ]
    (listed,) = messages[with_file["id"]]["attachments"]
    assert listed == {
        "id": offer,
        "filename": "Offer.pdf",
        "content_type": "application/pdf",
        "size": len(pdf("offer")),
        "url": f"/api/v1/attachments/{offer}",
        "removed": False,
    }
    deleted = messages[regret["id"]]
    assert deleted["deleted_at"] is not None and deleted["body"] == "Salary band 3 (internal)"
    # Its file is listed, but no longer stored: no link.
    assert [(a["id"], a["filename"], a["removed"], a["url"]) for a in deleted["attachments"]] == [
        (band, "Bands.pdf", True, None)
    ]
    assert all(m["deleted_at"] is None for m in messages.values() if m["id"] != regret["id"])

    assert [(e["kind"], e["conversation"], e["message"]) for e in data["emails_sent"]] == [
        ("message", application, invitation["id"])
    ]
    (received,) = data["emails_received"]
    assert (received["conversation"], received["subject"], received["outcome"]) == (
        application,
        "Re: Interview",
        "posted",
    )
    assert received["message"] == by_id[application]["messages"][1]["id"]
    assert [(t["body"], t["outcome"], t["from_number"]) for t in data["texts_received"]] == [
        ("Great", "posted", PHONE),
        ("STOP", "opted_out", PHONE),
    ]

    # The audit entry counts what the export lists.
    audited = body(integration.get("/api/v1/audit", action="candidate.exported"), 200)["items"]
    assert audited[0]["details"] == {"conversations": 6, "messages": len(messages)}

    # Nothing of the other candidate, nor of the group chat's other messages.
    everything = json.dumps(data)
    for other in ("cand2", "Dan", "Leeds"):
        assert other not in everything, other

    # The other candidate's export: their conversation, none of this one's.
    dan = export(integration, "cand2")
    assert [c["id"] for c in dan["conversations"]] == [dans]
    assert bodies(dan["conversations"][0]) == [("emp_team", "Hello Dan"), ("cand2", "Hi, Dan here")]
    assert dan["consent_history"] == [] and dan["texts_received"] == []
    assert "Carla" not in json.dumps(dan) and "Tuesday" not in json.dumps(dan)


def test_an_export_is_audited_and_only_for_the_integration(world: World) -> None:
    integration = world.api.integration
    conv = start(world["emp_team"], "application", application="app1")
    body(world["emp_team"].send(conv, "Hello"), 201)
    body(world["cand"].send(conv, "Hi"), 201)
    export(integration, "cand")
    (entry,) = body(integration.get("/api/v1/audit", action="candidate.exported"), 200)["items"]
    assert entry["action"] == "candidate.exported"
    assert entry["actor"] == {"type": "integration", "id": None, "name": "JOBCHAT_API_KEY"}
    assert entry["subject"] == {"type": "candidate", "id": "cand", "name": None}
    assert entry["details"] == {"conversations": 1, "messages": 2}
    assert entry["ip"] == TEST_CLIENT_ADDRESS

    # Unknown: 404, and nothing audited. A staff user, even an admin: refused.
    assert_error(integration.get("/api/v1/candidates/nobody/export"), 404)
    assert_error(integration.get("/api/v1/candidates/emp_team/export"), 404)  # staff, not one
    assert_error(world["emp_admin"].get("/api/v1/candidates/cand/export"), 403)
    assert_error(world["cand"].get("/api/v1/candidates/cand/export"), 403)
    exports = body(integration.get("/api/v1/audit", action="candidate.exported"), 200)["items"]
    assert len(exports) == 1


def test_a_candidate_with_nothing_yet_has_an_export_of_their_profile(world: World) -> None:
    world.api.candidate("new", "Nia New")
    assert world.api.integration.delete("/api/v1/candidates/new").status_code == 204
    data = export(world.api.integration, "new")
    assert data["candidate"]["name"] == "Nia New"
    assert data["deactivated_at"] is not None
    assert data["conversations"] == data["consent_history"] == data["emails_sent"] == []
    assert data["emails_received"] == data["texts_received"] == []
