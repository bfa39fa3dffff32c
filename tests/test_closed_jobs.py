"""Closed jobs (``PUT /api/v1/jobs/{id}`` with ``"status": "closed"``): their conversations stay
readable, nothing new is posted in them or started about them (409 ``job_closed``), a text from
the candidate into one is kept, not lost; reopening the job allows posting again."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from tests.support import Api, World, assert_error, body, sent, start
from tests.twilio_support import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, inbound_sms_form, sign
from tests.web_support import Browser

JOB = {"title": "Registered Nurse", "employer": "acme"}
INBOUND_SMS = "/api/v1/inbound/sms/twilio"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Texts come in through Twilio's signed webhook; nothing here sends one.
    return settings.model_copy(
        update={
            "sms_provider": "twilio",
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": FROM_NUMBER,
            "twilio_api_url": "http://127.0.0.1:9",
        }
    )


def set_status(api: Api, status: str | None) -> dict[str, Any]:
    extra = {} if status is None else {"status": status}
    return body(api.integration.put("/api/v1/jobs/job1", JOB | extra), 200)


def test_the_job_shows_its_status_and_an_update_without_it_keeps_it(world: World, api: Api) -> None:
    created = api.integration.put("/api/v1/jobs/job2", JOB)
    assert body(created, 201)["status"] == "open"
    assert set_status(api, "closed")["status"] == "closed"
    assert set_status(api, None)["status"] == "closed"  # left out: kept, like team and partners
    assert set_status(api, "open")["status"] == "open"
    closed_new = api.integration.put("/api/v1/jobs/job3", JOB | {"status": "closed"})
    assert body(closed_new, 201)["status"] == "closed"
    bad = api.integration.put("/api/v1/jobs/job1", JOB | {"status": "archived"})
    assert_error(bad, 422, fields={"status"})


def test_a_closed_jobs_conversations_stay_readable_and_take_no_new_message(
    world: World, api: Api, client: TestClient
) -> None:
    tess, cand = world["emp_team"], world["cand"]
    chats = {
        "application": start(tess, "application", application="app1"),
        "case": start(tess, "case", application="app1"),
        "job_partners": start(tess, "job_partners", job="job1"),
        "agency": start(tess, "agency", application="app1"),
    }
    for conv in chats.values():
        sent(tess.send(conv, "Before closing", idempotency_key=f"before-{conv}"))
    one_to_one = start(world["sp_in"], "candidate_partner", candidate="cand")

    set_status(api, "closed")

    for kind, conv in chats.items():
        history = body(tess.messages(conv), 200)["items"]
        assert [m["body"] for m in history] == ["Before closing"], kind
        assert_error(tess.send(conv, "After"), 409, "job_closed")
    assert_error(cand.send(chats["application"], "Me too"), 409, "job_closed")
    assert_error(world["agency_user"].send(chats["agency"], "Hi"), 409, "job_closed")
    # A retried send that was stored before the job closed still learns that it went out.
    conv = chats["case"]
    replay = tess.send(conv, "Before closing", idempotency_key=f"before-{conv}")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    # A conversation about no job carries on.
    sent(cand.send(one_to_one, "Unrelated"))
    # Reading, marking read and ending still work.
    assert body(cand.post(f"/api/v1/conversations/{chats['application']}/read"), 200)
    # No new conversation about the closed job; the ones that exist are reached as before.
    assert_error(tess.start("job_relocation", job="job1"), 409, "job_closed")
    assert_error(world["emp_admin"].start("application", application="app2"), 409, "job_closed")
    assert body(tess.start("application", application="app1"), 200)["id"] == chats["application"]
    # The page still shows the history; its form is refused like the API.
    browser = Browser.signed_in(client, api, "emp_team")
    page = browser.page(f"/conversations/{chats['application']}")
    assert "Before closing" in page
    # It says why there is nothing to write in, instead of a composer that would be refused.
    assert "The job is closed: this conversation can be read" in page
    assert 'id="composer"' not in page and "End conversation" not in page
    posted = browser.form(f"/conversations/{chats['application']}/messages", {"body": "Via page"})
    assert posted.status_code == 409
    assert [m["body"] for m in body(tess.messages(chats["application"]), 200)["items"]] == [
        "Before closing"
    ]

    set_status(api, "open")
    page = browser.page(f"/conversations/{chats['application']}")
    assert 'id="composer"' in page and "The job is closed" not in page
    sent(tess.send(chats["application"], "We are hiring again"))
    sent(cand.send(chats["application"], "Great"))
    assert body(tess.start("job_relocation", job="job1"), 201)


def test_a_text_from_the_candidate_into_a_closed_jobs_conversation_is_kept(
    world: World, api: Api, client: TestClient
) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(chat, "Before closing"))
    set_status(api, "closed")
    form = inbound_sms_form(from_number="+14155550123", body="Is the job still open?")
    signature = sign(f"http://testserver{INBOUND_SMS}", form)
    answer = client.post(INBOUND_SMS, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    assert "has been closed" in answer.text
    # Told once, not once per text.
    again = inbound_sms_form(from_number="+14155550123", body="Hello?")
    signature = sign(f"http://testserver{INBOUND_SMS}", again)
    answer = client.post(INBOUND_SMS, data=again, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200 and "has been closed" not in answer.text, answer.text
    kept = body(api.integration.get("/api/v1/inbound/sms", outcome="closed"), 200)["items"]
    assert sorted((k["body"], k["candidate"]) for k in kept) == [
        ("Hello?", "cand"),
        ("Is the job still open?", "cand"),
    ]
    history = body(world["emp_team"].messages(chat), 200)["items"]
    assert [m["body"] for m in history] == ["Before closing"]


def test_the_pages_about_a_closed_job_still_open_and_offer_no_new_chat(
    world: World, api: Api, client: TestClient
) -> None:
    """The job's page and the candidate's profile ask whether a chat may be started; for a
    closed job the answer is no (not a 409 in the middle of rendering a page)."""
    chat = start(world["emp_team"], "application", application="app1")
    set_status(api, "closed")
    browser = Browser.signed_in(client, api, "emp_team")
    job_page = browser.page("/jobs/job1")
    assert "Registered Nurse" in job_page
    assert "Start chat" not in browser.page("/jobs/job1/chats.html")
    profile = browser.page("/candidates/cand2")  # app2: no conversation yet
    assert "Start chat" not in profile
    # The profile still shows the conversation that exists, read-only.
    messages_tab = browser.page("/candidates/cand")
    assert f'id="thread" data-conversation="{chat}"' in messages_tab
    assert "The job is closed" in messages_tab
