"""Every flow the pages start, read and posted as a browser would (in-process, SQLite and
PostgreSQL): "Start chat" opens a composer and the conversation exists only once its first
message is sent, exactly once however often the form is sent; a relocation chat waits for an
accepted offer; the SMS choice says why it is unavailable; an agency user's candidates; one
notion of "has messages"; settings' inline errors; a profile about a closed job.

The world (tests/support.py): Tess (emp_team) works job1, to which Carla (cand, TBB's, app1 at
offer_accepted, submitted by the agency user Aggie) and Dan (cand2, CRS's, no phone, app2)
applied.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat.conversations.models import Conversation
from jobchat.db.engine import Database
from jobchat.directory.models import User, UserKind
from jobchat.messages.channels import sms_refusal
from jobchat.messages.models import Message
from jobchat.sms.models import SmsOptOut
from jobchat.sms.optouts import opt_out_key
from tests.support import Api, World, assert_error, body, sent, start
from tests.web_support import Browser


@pytest.fixture
def tess(client: TestClient, api: Api, world: World) -> Browser:
    return Browser.signed_in(client, api, "emp_team")


def counts(db: Database) -> tuple[int, int]:
    """(conversations, messages) in the database."""
    with db.read() as s:
        convs = s.scalar(select(func.count()).select_from(Conversation))
        messages = s.scalar(select(func.count()).select_from(Message))
        return int(convs or 0), int(messages or 0)


def composer_fields(html: str) -> dict[str, str]:
    """The hidden fields of the start composer's form (what a browser would send back)."""
    form = re.search(r'<form method="post" action="/conversations/new".*?</form>', html, re.S)
    assert form, html[:3000]
    return {
        name: unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form[0])
    }


def start_links(html: str) -> list[str]:
    """The composer links of a page (their query), in order."""
    return [unescape(q) for q in re.findall(r'href="/conversations/new\?([^"]+)"', html)]


def channel_choices(html: str) -> dict[str, str | None]:
    """The composer's channels: value → None when it can be chosen, else the reason shown."""
    found: dict[str, str | None] = {}
    for value, attrs in re.findall(r'name="channel" id="channel-\w+" value="(\w+)"([^>]*)>', html):
        why = re.search(rf'id="channel-{value}-why">([^<]*)<', html)
        found[value] = unescape(why[1]) if "disabled" in attrs and why else None
    return found


# --- starting a chat -----------------------------------------------------------------------------


def test_the_composer_shows_the_chat_and_makes_nothing(tess: Browser, db: Database) -> None:
    before = counts(db)
    html = tess.page("/conversations/new", kind="case", application="app1")
    assert "New case chat" in html
    # The title the inbox and the thread will give it (jobchat.web.labels), kind first.
    assert '<h1 id="start-title">Case chat · Carla Candidate · Registered Nurse</h1>' in html
    people = re.findall(r'<span class="person-name">([^<]+)</span>', html)
    # The candidate first, then by name: her source partner's staff and the hiring team.
    assert people == ["Carla Candidate", "Ada Admin", "Sam Partner", "Tess Team (you)"]
    assert channel_choices(html) == {"app": None, "email": None, "sms": None}
    assert 'href="/candidates/cand?tab=messages&amp;application=app1"' in html  # Cancel, Back
    assert composer_fields(html)["kind"] == "case"
    assert counts(db) == before


def test_sending_makes_the_conversation_and_its_message_once(
    tess: Browser, db: Database, world: World
) -> None:
    before_convs, before_messages = counts(db)
    fields = composer_fields(tess.page("/conversations/new", kind="case", application="app1"))
    assert fields["idempotency_key"]
    data = fields | {"body": "Welcome to your case chat", "channel": "app"}
    first = tess.form("/conversations/new", data)
    assert first.status_code == 303
    conv = int(first.headers["location"].removeprefix("/conversations/"))
    # A double submit: the same conversation, nothing new.
    again = tess.form("/conversations/new", data)
    assert again.headers["location"] == first.headers["location"]
    assert counts(db) == (before_convs + 1, before_messages + 1)
    page = tess.page(first.headers["location"])
    assert "Welcome to your case chat" in page
    # Everyone in it sees it with its first message; the partner reads it as unread.
    shown = body(world["sp_in"].get(f"/api/v1/conversations/{conv}"), 200)
    assert shown["unread_count"] == 1
    assert shown["last_message"]["body"] == "Welcome to your case chat"
    # From now on the page offers to open it, and the composer goes straight there.
    opened = tess.client.get(
        "/conversations/new?kind=case&application=app1", follow_redirects=False
    )
    assert (opened.status_code, opened.headers["location"]) == (303, f"/conversations/{conv}")
    profile = tess.page("/candidates/cand", tab="messages")
    assert "kind=case" not in " ".join(start_links(profile))
    # Tess has no chat of her own with Carla: the case chat is the one shown.
    assert f'id="thread" data-conversation="{conv}"' in profile


def test_a_key_from_another_chat_is_not_taken_for_a_retry(tess: Browser, db: Database) -> None:
    """The idempotency key of the case chat's first message, sent again with the application
    chat's form, must not be answered with the case chat (the new message would be lost)."""
    fields = composer_fields(tess.page("/conversations/new", kind="case", application="app1"))
    data = fields | {"body": "Hello", "channel": "app"}
    assert tess.form("/conversations/new", data).status_code == 303
    before = counts(db)
    other = composer_fields(tess.page("/conversations/new", kind="application", application="app1"))
    reused = other | {"idempotency_key": fields["idempotency_key"], "body": "Hello"}
    r = tess.form("/conversations/new", reused)
    assert r.status_code == 409
    assert "idempotency" in r.text.lower()
    assert counts(db) == before
    # The composer comes back with what was typed and a fresh key, so sending again works.
    again = composer_fields(r.text)
    assert again["idempotency_key"] not in ("", fields["idempotency_key"])
    assert tess.form("/conversations/new", again | {"body": "Hello"}).status_code == 303
    assert counts(db) == (before[0] + 1, before[1] + 1)


def test_bad_input_is_the_composer_again_with_the_problem_beside_the_field(
    tess: Browser, db: Database
) -> None:
    before = counts(db)
    fields = composer_fields(
        tess.page("/conversations/new", kind="application", application="app1")
    )
    r = tess.form("/conversations/new", fields | {"body": "   "})
    assert r.status_code == 422
    assert 'id="start-body"' in r.text and 'aria-invalid="true"' in r.text
    assert "Message: must not be empty" in r.text
    # Email without a subject: the subject is marked, what was written is kept.
    r = tess.form(
        "/conversations/new", fields | {"body": "Your offer is ready", "channel": "email"}
    )
    assert r.status_code == 422
    assert re.search(r'id="start-subject"[^>]*aria-invalid="true"', r.text)
    assert "Subject: required for email" in r.text
    assert ">Your offer is ready</textarea>" in r.text
    assert re.search(r'value="email"\s+checked', r.text)
    # The same key stays on the form: the corrected send is still sent once.
    assert composer_fields(r.text)["idempotency_key"] == fields["idempotency_key"]
    assert counts(db) == before
    ok = tess.form(
        "/conversations/new",
        fields | {"body": "Your offer is ready", "channel": "email", "subject": "Offer"},
    )
    assert ok.status_code == 303
    assert counts(db) == (before[0] + 1, before[1] + 1)


def test_who_may_start_what_comes_from_access(
    client: TestClient, api: Api, world: World, db: Database
) -> None:
    """The composer asks jobchat.access: a candidate may not open a case chat (403), someone who
    cannot see the application gets 404, and the posted form is refused alike."""
    carla = Browser.signed_in(client, api, "cand")
    carla.page("/conversations/new", 403, kind="case", application="app1")
    outsider = Browser.signed_in(client, api, "sp_out")
    outsider.page("/conversations/new", 404, kind="case", application="app1")
    r = outsider.form("/conversations/new", {"kind": "case", "application": "app1", "body": "Hi"})
    assert r.status_code == 404
    assert counts(db)[0] == 0
    # Carla may start the one-to-one with her source partner, from her portal.
    portal = carla.page("/portal")
    assert "kind=candidate_partner&candidate=cand" in start_links(portal)
    html = carla.page("/conversations/new", kind="candidate_partner", candidate="cand")
    assert channel_choices(html) == {}  # candidates write in the app only: no choice shown
    r = carla.form(
        "/conversations/new",
        composer_fields(html) | {"body": "Hello TBB"},
    )
    assert r.status_code == 303


def test_every_kind_is_offered_where_one_would_look(
    client: TestClient, api: Api, world: World
) -> None:
    tess = Browser.signed_in(client, api, "emp_team")
    profile = start_links(tess.page("/candidates/cand"))
    assert profile == ["kind=application&application=app1", "kind=case&application=app1"]
    agency = start_links(tess.page("/candidates/cand", tab="agency"))
    assert agency == ["kind=agency&application=app1", "kind=agency_private&application=app1"]
    job = start_links(tess.page("/jobs/job1", tab="chats"))
    assert job == [
        "kind=job_partner&job=job1&partner=tbb",
        "kind=job_partner&job=job1&partner=hireco",
        "kind=job_partners&job=job1",
        "kind=job_relocation&job=job1",
    ]
    overview = start_links(tess.page("/jobs/job1", tab="overview"))
    assert overview == ["kind=case&application=app1", "kind=case&application=app2"]
    # The source partner: the case chat from the profile and from the job.
    sam = Browser.signed_in(client, api, "sp_in")
    assert "kind=case&application=app1" in start_links(sam.page("/candidates/cand"))
    assert start_links(sam.page("/jobs/job1", tab="overview")) == ["kind=case&application=app1"]
    # Under the navigation entry it was started from.
    composer = tess.page("/conversations/new", kind="job_partners", job="job1")
    assert '<a href="/jobs" aria-current="page">' in composer
    # Each link opens a composer.
    for query in [*profile, *agency, *job]:
        assert tess.client.get(f"/conversations/new?{query}").status_code == 200, query


# --- relocation ----------------------------------------------------------------------------------


def test_relocation_waits_for_an_accepted_offer(api: Api, world: World, tess: Browser) -> None:
    api.job("job2", "Porter", "acme", team=["emp_team"], partners=["tbb"])
    api.application("app3", "job2", "cand2", "interview")
    html = tess.page("/jobs/job2", tab="chats")
    relocation = html.split('data-slot="relocation"')[1].split("</li>")[0]
    assert "Start chat" not in relocation
    assert "Opens once a candidate accepts an offer" in relocation
    assert "kind=job_relocation" not in " ".join(start_links(html))
    tess.page("/conversations/new", 409, kind="job_relocation", job="job2")
    assert_error(
        world["emp_team"].start("job_relocation", job="job2"), 409, "no_relocation_candidates"
    )
    # An accepted offer opens it.
    api.application("app3", "job2", "cand2", "offer_accepted")
    html = tess.page("/jobs/job2", tab="chats")
    assert "kind=job_relocation&job=job2" in start_links(html)
    page = tess.page("/conversations/new", kind="job_relocation", job="job2")
    assert "Dan Candidate" in page


# --- SMS: why not --------------------------------------------------------------------------------


def test_the_sms_choice_says_why_it_is_unavailable(
    api: Api, world: World, tess: Browser, db: Database
) -> None:
    def sms(application: str) -> str | None:
        html = tess.page("/conversations/new", kind="application", application=application)
        return channel_choices(html)["sms"]

    assert sms("app1") is None
    assert sms("app2") == "Not available: Dan Candidate has not agreed to receive texts."
    api.candidate("cand2", "Dan Candidate", source_partner="crs", sms_consent=True)
    assert sms("app2") == "Not available: Dan Candidate has no phone number."
    api.candidate(
        "cand2", "Dan Candidate", source_partner="crs", phone="+14155550199", sms_consent=False
    )
    assert sms("app2") == "Not available: Dan Candidate has not agreed to receive texts."
    with db.write() as s:
        key = opt_out_key(s, "+14155550123")
        s.add(SmsOptOut(number_hash=key, created_at=datetime.now(UTC), detail="STOP"))
    assert sms("app1") == "Not available: Carla Candidate opted out of texts (replied STOP)."
    # The same reason in the thread's composer helper and in the domain function.
    with db.read() as s:
        carla = s.scalars(
            select(User).where(User.kind == UserKind.candidate, User.ext_id == "cand")
        ).one()
        off = sms_refusal(s, carla, sms_enabled=False, default_region="US")
        on = sms_refusal(s, carla, sms_enabled=True, default_region="US")
    assert off is not None and off.code == "sms_not_configured"
    assert off.reason == "SMS is not set up on this server."
    assert on is not None and on.code == "sms_opted_out"
    # Chosen anyway (a hand-made form): refused inline, nothing made.
    before = counts(db)
    fields = composer_fields(
        tess.page("/conversations/new", kind="application", application="app1")
    )
    r = tess.form("/conversations/new", fields | {"body": "Call me", "channel": "sms"})
    assert r.status_code == 422
    assert "opted out of SMS" in r.text
    assert counts(db) == before


# --- the agency user's candidates ----------------------------------------------------------------


def test_an_agency_user_lists_the_candidates_they_submitted(
    client: TestClient, api: Api, world: World
) -> None:
    aggie = Browser.signed_in(client, api, "agency_user")
    html = aggie.page("/candidates")
    assert re.findall(r'data-candidate="([^"]+)"', html) == ["cand"]
    assert "Registered Nurse" in html
    assert start_links(html) == ["kind=agency&application=app1"]
    assert 'href="/candidates/cand?tab=agency&amp;application=app1"' in html
    # Their thread, once started, is what the list opens, and counts as their history.
    shared = start(world["agency_user"], "agency", application="app1")
    sent(world["emp_team"].send(shared, "Thanks for Carla"))
    html = aggie.page("/candidates")
    assert f'href="/conversations/{shared}"' in html
    assert re.search(r'aria-label="Messaged, 1 unread"', html)
    assert re.findall(r'data-candidate="([^"]+)"', aggie.page("/candidates?messaging=unread")) == [
        "cand"
    ]
    # Someone else at the agency submitted nobody: told what this page is for.
    alex = Browser.signed_in(client, api, "agency_other")
    assert "You have not submitted any candidates yet." in alex.page("/candidates")


# --- one notion of "has messages" ----------------------------------------------------------------


def test_the_bubble_the_api_and_the_messages_tab_agree(
    world: World, tess: Browser, db: Database
) -> None:
    case = start(world["sp_in"], "case", application="app1")
    sent(world["sp_in"].send(case, "Visa papers are in"))
    listed = tess.page("/candidates", q="carla")
    assert 'aria-label="Messaged, 1 unread"' in listed
    items = body(world["emp_team"].get("/api/v1/candidates", q="carla"), 200)["items"]
    assert [(c["id"], c["has_messages"], c["unread_count"]) for c in items] == [("cand", True, 1)]
    profile = tess.page("/candidates/cand", tab="messages")
    assert "not messaged" not in profile.lower() and "No messages with" not in profile
    assert f'id="thread" data-conversation="{case}"' in profile
    assert "Visa papers are in" in profile
    # Dan: nothing anywhere, and each says so.
    assert 'aria-label="No messages yet"' in tess.page("/candidates", q="dan")
    assert "No messages with Dan Candidate yet." in tess.page("/candidates/cand2")


# --- settings ------------------------------------------------------------------------------------


def test_a_bad_time_zone_is_an_inline_error(tess: Browser) -> None:
    r = tess.form("/settings", {"timezone": "Mars/Olympus", "email_notifications": "on"})
    assert r.status_code == 422
    assert re.search(r'id="timezone"[^>]*value="Mars/Olympus"', r.text, re.S)
    assert re.search(r'id="timezone"[^>]*aria-invalid="true"', r.text, re.S)
    assert 'aria-describedby="timezone-error timezone-help"' in r.text
    assert '<p class="field-error" id="timezone-error">' in r.text
    assert "<h1>Settings</h1>" in r.text
    # However long or odd the value, the answer is the page with the problem beside the field.
    for wrong in ("Europe/" + "x" * 500, "Europe/Ber\x00lin"):
        r = tess.form("/settings", {"timezone": wrong})
        assert r.status_code == 422
        assert '<p class="field-error" id="timezone-error">' in r.text
    # Nothing was saved; a good value is.
    assert 'value="UTC"' in tess.page("/settings")
    ok = tess.form("/settings", {"timezone": "Europe/Berlin"})
    assert (ok.status_code, ok.headers["location"]) == (303, "/settings?saved=true")
    page = tess.page("/settings", saved="true")
    assert 'value="Europe/Berlin"' in page and "Your settings are saved." in page
    # The account, read only.
    assert "<dd>Tess Team</dd>" in page and "aria-invalid" not in page


# --- closed jobs ---------------------------------------------------------------------------------


def test_a_profile_whose_only_job_is_closed_says_so(api: Api, world: World, tess: Browser) -> None:
    api.candidate("cand3", "Eve Candidate")
    api.job("job3", "Cook", "acme", team=["emp_team"], status="closed")
    api.application("app3", "job3", "cand3", "applied")
    html = tess.page("/candidates/cand3")
    assert "The job is closed." in html
    assert "nothing you can do" not in html.lower()
    assert "Job closed" in html
