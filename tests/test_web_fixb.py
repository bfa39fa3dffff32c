"""One rule per question, whichever page asks it (in-process, SQLite and PostgreSQL):

- the conversation's composer offers the channels the new-chat composer offers
  (``channel_options``): an unavailable SMS or email is a disabled choice with its reason;
- a case chat is offered (profile, job) only where ``jobchat.access`` would start it: never for
  a candidate without a source partner;
- the new-chat composer names the chat as the inbox and the thread will (``jobchat.web.labels``).

The world (tests/support.py): Tess (emp_team) works job1, to which Carla (cand, TBB's, SMS
opted in, app1, submitted by the agency user Aggie, stage owner Tess) and Dan (cand2, CRS's,
no phone, app2) applied.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.config import Settings
from jobchat.conversations.models import Conversation
from jobchat.db.engine import Database
from jobchat.directory.models import User, UserKind
from jobchat.sms.models import SmsOptOut
from jobchat.sms.optouts import opt_out_key
from jobchat.web.thread import composer_channels
from tests.support import Api, World, assert_error, sent, start
from tests.web_support import Browser


@pytest.fixture
def tess(client: TestClient, api: Api, world: World) -> Browser:
    return Browser.signed_in(client, api, "emp_team")


def composer_channels_of(html: str) -> dict[str, str | None]:
    """The conversation composer's channels: value → None when it can be chosen, else the
    sentence its aria-describedby points at."""
    composer = re.search(r'<form id="composer".*?</form>', html, re.S)
    assert composer, html[:2000]
    found: dict[str, str | None] = {}
    for tag in re.findall(r'<input[^>]*name="channel"[^>]*>', composer[0]):
        value = re.findall(r'value="(\w+)"', tag)[0]
        described = re.search(r'aria-describedby="([^"]+)"', tag)
        if re.search(r"\sdisabled\b", tag) is None:
            assert described is None, tag
            found[value] = None
            continue
        assert described, tag
        why = re.search(rf'<p class="channel-why" id="{described[1]}">([^<]*)</p>', composer[0])
        assert why, f"no reason for {value}"
        found[value] = unescape(why[1])
    return found


def start_links(html: str) -> list[str]:
    return [unescape(q) for q in re.findall(r'href="/conversations/new\?([^"]+)"', html)]


# --- 1. channels in the conversation's composer -------------------------------------------------


def test_the_thread_composer_says_why_sms_is_unavailable(
    api: Api, world: World, tess: Browser, db: Database
) -> None:
    carla = start(world["emp_team"], "application", application="app1")
    dan = start(world["emp_team"], "application", application="app2")
    assert composer_channels_of(tess.page(f"/conversations/{carla}")) == {
        "app": None,
        "email": None,
        "sms": None,
    }
    # Neither consent nor number: consent is named first, as the API's code has always been.
    assert composer_channels_of(tess.page(f"/conversations/{dan}"))["sms"] == (
        "SMS not available: Dan Candidate has not agreed to receive texts."
    )
    assert world["emp_team"].send(dan, "Hi", channel="sms").json()["error"]["code"] == (
        "sms_opted_out"
    )
    # Consent, no number.
    api.candidate("cand2", "Dan Candidate", source_partner="crs", sms_consent=True)
    assert composer_channels_of(tess.page(f"/conversations/{dan}"))["sms"] == (
        "SMS not available: Dan Candidate has no phone number."
    )
    # A number, no consent.
    api.candidate(
        "cand2", "Dan Candidate", source_partner="crs", phone="+14155550199", sms_consent=False
    )
    assert composer_channels_of(tess.page(f"/conversations/{dan}"))["sms"] == (
        "SMS not available: Dan Candidate has not agreed to receive texts."
    )
    # Opted out by STOP (it wins over her consent).
    with db.write() as s:
        key = opt_out_key(s, "+14155550123")
        s.add(SmsOptOut(number_hash=key, created_at=datetime.now(UTC), detail="STOP"))
    html = tess.page(f"/conversations/{carla}")
    assert composer_channels_of(html) == {
        "app": None,
        "email": None,
        "sms": "SMS not available: Carla Candidate opted out of texts (replied STOP).",
    }
    # The app stays the chosen channel; a disabled choice is never the checked one.
    assert re.search(r'<input[^>]*value="app"[^>]*checked', html)
    # The same rule refuses the send.
    refused = world["emp_team"].send(carla, "Text me", channel="sms")
    assert refused.status_code == 422


def test_not_configured_and_a_deactivated_candidate(
    api: Api, world: World, tess: Browser, db: Database, settings: Settings
) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    off = settings.model_copy(update={"sms_provider": None})
    with db.read() as s:
        me = s.scalars(select(User).where(User.ext_id == "emp_team")).one()
        conv = s.get(Conversation, chat)
        assert conv is not None
        options = {str(o.channel): o.reason for o in composer_channels(s, me, conv, off)}
    assert options == {"app": None, "email": None, "sms": "SMS is not set up on this server."}
    # A deactivated candidate: email and SMS both say so (set in the database: the reason is
    # what is under test here, not the deactivation, which tests/test_deactivation.py covers).
    with db.write() as s:
        carla = s.scalars(
            select(User).where(User.kind == UserKind.candidate, User.ext_id == "cand")
        ).one()
        carla.deactivated_at = datetime.now(UTC)
    found = composer_channels_of(tess.page(f"/conversations/{chat}"))
    gone = "Carla Candidate is deactivated: nothing more goes to them."
    assert found == {
        "app": None,
        "email": f"Email not available: {gone}",
        "sms": f"SMS not available: {gone}",
    }


def test_candidates_and_group_chats_have_no_channel_choice(
    client: TestClient, api: Api, world: World, tess: Browser
) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(chat, "Hello Carla"))
    carla = Browser.signed_in(client, api, "cand")
    assert 'name="channel"' not in carla.page(f"/conversations/{chat}")
    group = start(world["emp_team"], "job_partners", job="job1")
    assert 'name="channel"' not in tess.page(f"/conversations/{group}")


# --- 2. a case chat only where access would start it ---------------------------------------------


def test_no_case_chat_is_offered_for_a_candidate_without_a_source_partner(
    api: Api, world: World, tess: Browser
) -> None:
    """Like the demo's Hannah Lee: a candidate nobody sourced has no case (the case chat is the
    candidate, their source partner and the hiring team); the chat with the candidate stays."""
    api.candidate("cand3", "Hana Lee", source_partner=None)
    api.application("app3", "job1", "cand3", "applied", stage_owner="emp_team")
    profile = start_links(tess.page("/candidates/cand3"))
    assert profile == ["kind=application&application=app3"]
    overview = start_links(tess.page("/jobs/job1", tab="overview"))
    assert "kind=case&application=app3" not in overview
    assert "kind=case&application=app1" in overview  # Carla has TBB: hers is offered
    # Asked for anyway: refused by the composer and the API alike, with the reason.
    page = tess.page("/conversations/new", 409, kind="case", application="app3")
    assert "has no source partner" in page
    assert_error(world["emp_team"].start("case", application="app3"), 409, "no_source_partner")


def test_a_case_chat_outlives_its_source_partner_for_its_members(
    api: Api, world: World, tess: Browser
) -> None:
    """The rule is about starting one: a case chat that exists stays reachable by its members
    when the candidate's source partner is cleared later."""
    case = start(world["emp_team"], "case", application="app1")
    api.candidate("cand", "Carla Candidate", source_partner=None)
    assert (
        tess.client.get(
            "/conversations/new?kind=case&application=app1", follow_redirects=False
        ).headers["location"]
        == f"/conversations/{case}"
    )
    assert world["emp_team"].start("case", application="app1").status_code == 200
    html = tess.page("/candidates/cand")
    assert f'data-conversation="{case}"' in html or f"/conversations/{case}" in html


# --- 3. the new-chat composer names the chat as the reader will read it --------------------------


def start_title(html: str) -> str:
    found = re.search(r'<h1 id="start-title">([^<]*)</h1>', html)
    assert found, html[:2000]
    return unescape(found[1])


def thread_title(html: str) -> str:
    found = re.search(r'class="thread-title"[^>]*>([^<]*)<', html)
    assert found, html[:2000]
    return unescape(found[1])


STARTS = [
    # who, kind, refs, the title they read
    ("emp_team", "agency", {"application": "app1"}, "Agency · Carla Candidate · Registered Nurse"),
    (
        "agency_user",
        "agency",
        {"application": "app1"},
        "Hiring team · Carla Candidate · Registered Nurse",
    ),
    (
        "emp_team",
        "agency_private",
        {"application": "app1"},
        "Private · Aggie Agent · Carla Candidate",
    ),
    (
        "agency_user",
        "agency_private",
        {"application": "app1", "with_user": "emp_team"},
        "Private · Tess Team · Carla Candidate",
    ),
    ("sp_in", "job_partner", {"job": "job1", "partner": "tbb"}, "Acme Health · Registered Nurse"),
    ("cand", "candidate_partner", {"candidate": "cand"}, "Talent Beyond Boundaries"),
]


@pytest.mark.parametrize(("who", "kind", "refs", "title"), STARTS)
def test_the_composer_titles_the_chat_as_the_thread_will(
    client: TestClient,
    api: Api,
    world: World,
    who: str,
    kind: str,
    refs: dict[str, str],
    title: str,
) -> None:
    reader = Browser.signed_in(client, api, who)
    html = reader.page("/conversations/new", 200, kind=kind, **refs)
    assert start_title(html) == title
    # Sent: the thread it becomes carries the same title for the same reader.
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    fields.pop("csrf", None)
    made = reader.form("/conversations/new", fields | {"body": "Hello", "channel": "app"})
    assert made.status_code == 303, made.text[:2000]
    assert thread_title(reader.page(made.headers["location"])) == title


def test_the_composer_says_who_it_is_for_from_the_readers_side(
    client: TestClient, api: Api, world: World
) -> None:
    aggie = Browser.signed_in(client, api, "agency_user")
    html = aggie.page("/conversations/new", kind="agency", application="app1")
    assert "You and the hiring team, about this candidate." in html
    carla = Browser.signed_in(client, api, "cand")
    html = carla.page("/conversations/new", kind="candidate_partner", candidate="cand")
    assert "You and your source partner&#39;s team." in html
