"""A text whose message has files carries one sign-in link to them, as it reaches the Twilio
stand-in on loopback: to the file itself for one, into the conversation for several; the
link signs the candidate in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from tests.mail_support import drain
from tests.support import World, body
from tests.test_mail_attachments_support import download, follow_link, jpeg, pdf, upload
from tests.twilio_support import (
    INBOUND_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    candidate_daytime_clock,
    inbound_sms_form,
    past_intro,
    twilio,
    twilio_settings,
    webhook,
    worker,
)

pytestmark = TWILIO_CLIENT_WARNINGS
__all__ = ["candidate_daytime_clock", "twilio", "worker"]

LINK = r"http://testserver/login/[A-Za-z0-9_-]+"


@pytest.fixture
def settings(settings: Settings, twilio: TwilioServer, tmp_path: Path) -> Settings:
    return twilio_settings(settings, twilio).model_copy(
        update={"storage_url": f"file://{tmp_path / 'files'}"}
    )


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def test_a_text_with_a_file_carries_a_link_that_signs_in_and_downloads_it(
    world: World, client: TestClient, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    team = world["emp_team"]
    offer = upload(team, chat, "Offer letter.pdf", pdf("offer"), "application/pdf")
    sent = team.send(chat, "Your offer is attached.", channel="sms", attachments=[offer])
    body(sent, 201)
    drain(worker)

    (request,) = twilio.requests
    text = past_intro(request.form["Body"])
    match = re.fullmatch(
        rf"Your offer is attached\.\n\nTess Team sent you a file: Offer letter\.pdf "
        rf"({LINK}\?next=/api/v1/attachments/{offer})",
        text,
    )
    assert match, text
    response = follow_link(client, match.group(1))
    assert response.status_code == 200
    assert response.content == download(team, offer)
    # A link is for one sign-in: a forwarded text does not open it again elsewhere.
    assert follow_link(client, match.group(1)).status_code == 404


def test_a_text_with_several_files_has_one_link_into_the_conversation(
    world: World, client: TestClient, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    team = world["emp_team"]
    ids = [
        upload(team, chat, "contract.pdf", pdf("contract"), "application/pdf"),
        upload(team, chat, "map.jpg", jpeg(), "image/jpeg"),
    ]
    body(team.send(chat, "", channel="sms", attachments=ids), 201)
    drain(worker)

    (request,) = twilio.requests
    text = past_intro(request.form["Body"])
    match = re.fullmatch(
        rf"Tess Team sent you 2 files: contract\.pdf, map\.jpg\. See them: "
        rf"({LINK}\?next=/conversations/{chat})",
        text,
    )
    assert match, text
    page = follow_link(client, match.group(1))
    # Signed in as the candidate, on the conversation's page, where the files are shown.
    assert (page.status_code, page.url.path) == (200, f"/conversations/{chat}")
    assert "Carla Candidate" in page.text


def test_a_text_with_files_keeps_room_for_their_link(
    world: World, client: TestClient, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    team = world["emp_team"]
    offer = upload(team, chat, "offer.pdf", pdf("offer"), "application/pdf")
    refused = team.send(chat, "x" * 1201, channel="sms", attachments=[offer])
    assert body(refused, 422)["error"]["fields"]["body"] == (
        "an SMS with files may be at most 1200 characters (the files' link takes the rest)"
    )
    body(team.send(chat, "x" * 1200, channel="sms", attachments=[offer]), 201)
    drain(worker)

    (request,) = twilio.requests
    assert len(request.form["Body"]) <= 1600  # Twilio's limit
    assert request.form["Body"].endswith(f"?next=/api/v1/attachments/{offer}")


def test_pictures_texted_back_are_not_dropped_silently(
    world: World, client: TestClient, chat: int, worker: Worker, twilio: TwilioServer
) -> None:
    team = world["emp_team"]
    body(team.send(chat, "Can you send a photo of your permit?", channel="sms"), 201)
    drain(worker)
    form = inbound_sms_form(from_number="+14155550123", body="")
    form |= {
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        "MediaContentType1": "image/jpeg",
    }
    assert webhook(client, INBOUND_PATH, form).status_code == 200

    last = body(team.messages(chat), 200)["items"][-1]
    assert last["author"]["id"] == "cand"
    assert last["body"] == (
        "[Not attached: 2 pictures or files sent by text message — "
        "send files by email or in the app]"
    )
