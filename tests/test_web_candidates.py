"""The candidate manager and the candidate profile, read and posted as a browser would
(in-process): who is listed under each filter and search, the speech bubble, "Start chat", the
profile's tabs and the threads each shows, escaping, and the 403s and 404s.

The world (tests/support.py): Tess (emp_team) works job1, to which Carla (cand, TBB's candidate,
app1, submitted by the agency user Aggie) and Dan (cand2, CRS's, app2) applied.
"""

from __future__ import annotations

import importlib
import re
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat.clock import FrozenClock
from jobchat.conversations.models import Conversation, Kind
from jobchat.db.engine import Database
from jobchat.web.security import CSP
from tests.support import Api, World, body, sent, start
from tests.web_support import Browser

# The module (``jobchat.web.candidates`` the attribute is its router), for its page sizes.
candidates_page = importlib.import_module("jobchat.web.candidates")

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def tess(client: TestClient, api: Api, world: World) -> Browser:
    return Browser.signed_in(client, api, "emp_team")


def signed_in(client: TestClient, api: Api, ext_id: str) -> Browser:
    return Browser.signed_in(client, api, ext_id)


# --- reading the pages ---------------------------------------------------------------------------


def listed(html: str) -> list[str]:
    """The candidates (external ids) of a candidate manager page, in order."""
    return re.findall(r'<li class="candidate-row[^"]*" data-candidate="([^"]+)"', html)


def row(html: str, candidate: str) -> str:
    """One candidate's row of a candidate manager page."""
    found = re.search(
        rf'<li class="candidate-row[^"]*" data-candidate="{re.escape(candidate)}">(.*?)\n  </li>',
        html,
        re.S,
    )
    assert found, f"no row for {candidate}"
    return found.group(1)


def bubble(html: str, candidate: str) -> str:
    found = re.search(r'class="bubble-icon" role="img" aria-label="([^"]+)"', row(html, candidate))
    assert found
    return found.group(1)


def start_forms(html: str) -> list[dict[str, str]]:
    """Each "Start chat" / "Open chat" link: the composer's query fields (or, for a chat that
    exists, ``conversation``: where it goes) and its text."""
    found = []
    for href, label in re.findall(
        r'<a class="button start-link[^"]*" href="([^"]+)"[^>]*>(.*?)</a>', html, re.S
    ):
        url = urlsplit(unescape(href))
        fields = dict(parse_qsl(url.query))
        if url.path != "/conversations/new":
            fields = {
                "conversation": url.path.rsplit("/", 1)[1]
                if "/conversations/" in url.path
                else unescape(href)
            }
        fields["button"] = unescape(re.sub(r"<[^>]+>", "", label)).strip()
        found.append(fields)
    return found


def first_message(browser: Browser, fields: dict[str, str], body: str = "Hello") -> int:
    """Send the composer those fields open, with a first message: the conversation made."""
    data = {k: v for k, v in fields.items() if k != "button"}
    r = browser.form("/conversations/new", data | {"body": body, "idempotency_key": body})
    assert r.status_code == 303, r.text[:2000]
    return int(r.headers["location"].rsplit("/", 1)[1])


def tabs(html: str) -> dict[str, bool]:
    """The profile's tabs: label → whether it carries the blue dot."""
    nav = re.search(r'<nav aria-label="Candidate" class="tabs">(.*?)</nav>', html, re.S)
    if nav is None:
        return {}
    links = re.findall(r"<a [^>]*>(.*?)</a>", nav.group(1), re.S)
    return {re.sub(r"<[^>]+>", "", link).strip(): 'class="dot"' in link for link in links}


def current_tab(html: str) -> str:
    nav = re.search(r'<nav aria-label="Candidate" class="tabs">(.*?)</nav>', html, re.S)
    assert nav
    found = re.search(r'aria-current="page">([^<]+)', nav.group(1))
    assert found
    return found.group(1).strip()


def open_thread(html: str) -> int | None:
    """The conversation embedded in the page (there is at most one #thread)."""
    found = re.findall(r'id="thread" data-conversation="(\d+)"', html)
    assert len(found) <= 1
    return int(found[0]) if found else None


def agency_threads(html: str) -> list[int]:
    listing = re.search(r'<ul class="conversation-list agency-threads".*?</ul>', html, re.S)
    if listing is None:
        return []
    return [int(i) for i in re.findall(r'data-conversation="(\d+)"', listing.group(0))]


def channels(html: str) -> list[str]:
    composer = re.search(r'<form id="composer".*?</form>', html, re.S)
    assert composer
    # The channels that can be chosen (an unavailable one is shown disabled, with its reason).
    inputs = re.findall(r'<input[^>]*name="channel"[^>]*>', composer.group(0))
    return [re.findall(r'value="(\w+)"', i)[0] for i in inputs if not re.search(r"\sdisabled\b", i)]


def history(html: str) -> list[int]:
    """The message ids of the Communications tab, in order."""
    return [int(i) for i in re.findall(r'class="history-item[^"]*" data-message-id="(\d+)"', html)]


def conversations_of(db: Database, kind: Kind) -> int:
    with db.read() as s:
        count = s.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.kind == kind)
        )
        return int(count or 0)


# --- the candidate manager -----------------------------------------------------------------------


def test_the_manager_lists_whom_the_user_may_message(
    client: TestClient, api: Api, world: World, tess: Browser
) -> None:
    """Tess sees the applicants to her job, by name; a source partner sees its own candidates;
    someone off the job's team sees nobody."""
    assert listed(tess.page("/candidates")) == ["cand", "cand2"]
    page = tess.page("/candidates")
    carla = row(page, "cand")
    assert 'href="/candidates/cand"' in carla
    assert "Carla Candidate" in carla and "cand@example.org" in carla
    assert "Talent Beyond Boundaries" in carla
    assert "Registered Nurse" in carla and "Offer accepted" in carla
    assert "CRS" in row(page, "cand2") and "Interview" in row(page, "cand2")

    assert listed(signed_in(client, api, "sp_in").page("/candidates")) == ["cand"]
    assert listed(signed_in(client, api, "sp_out").page("/candidates")) == ["cand2"]
    assert listed(signed_in(client, api, "emp_admin").page("/candidates")) == ["cand", "cand2"]
    off_team = signed_in(client, api, "emp_other").page("/candidates")
    assert listed(off_team) == []
    assert "No candidates yet" in off_team


def test_filters_and_search(world: World, tess: Browser) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    assert listed(tess.page("/candidates", messaging="messaged")) == []
    sent(world["emp_team"].send(chat, "Hello Carla"))
    assert listed(tess.page("/candidates", messaging="messaged")) == ["cand"]
    assert listed(tess.page("/candidates", messaging="unread")) == []
    sent(world["cand"].send(chat, "Hi Tess"))
    assert listed(tess.page("/candidates", messaging="unread")) == ["cand"]
    # Another kind with one candidate counts too: Dan's case, where his partner CRS writes.
    case = start(world["emp_team"], "case", application="app2")
    sent(world["sp_out"].send(case, "About Dan"))
    assert listed(tess.page("/candidates", messaging="unread")) == ["cand", "cand2"]
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/read"), 200)
    assert listed(tess.page("/candidates", messaging="unread")) == ["cand2"]
    assert listed(tess.page("/candidates", messaging="messaged")) == ["cand", "cand2"]

    # By name or email, any case; LIKE wildcards are literal; the filter is kept.
    assert listed(tess.page("/candidates", q="carla")) == ["cand"]
    assert listed(tess.page("/candidates", q="CAND2@example")) == ["cand2"]
    assert listed(tess.page("/candidates", q="candidate")) == ["cand", "cand2"]
    assert listed(tess.page("/candidates", q="%")) == []
    assert listed(tess.page("/candidates", q="carla", messaging="unread")) == []
    nobody = tess.page("/candidates", q="nobody at all")
    assert "No candidates match" in nobody
    html = tess.page("/candidates", messaging="unread", q="dan")
    assert listed(html) == ["cand2"]
    # The filter links keep the search; the search form keeps the filter.
    assert 'href="/candidates?messaging=messaged&amp;q=dan"' in html
    assert '<input type="hidden" name="messaging" value="unread">' in html
    assert re.search(
        r'<a href="/candidates\?messaging=unread&amp;q=dan" aria-current="page">', html
    )
    assert '<label for="candidates-q" class="visually-hidden">Search candidates</label>' in html


def test_the_speech_bubble(world: World, tess: Browser) -> None:
    """Outline with "No messages yet" until there is history; filled ("messaged") after, with
    the number unread."""
    page = tess.page("/candidates")
    assert bubble(page, "cand") == "No messages yet"
    assert "bubble-link messaged" not in row(page, "cand")
    chat = start(world["emp_team"], "application", application="app1")
    assert bubble(tess.page("/candidates"), "cand") == "No messages yet"
    sent(world["emp_team"].send(chat, "Hello"))
    page = tess.page("/candidates")
    assert bubble(page, "cand") == "Messaged"
    assert "bubble-link messaged" in row(page, "cand")
    sent(world["cand"].send(chat, "One"))
    sent(world["cand"].send(chat, "Two"))
    page = tess.page("/candidates")
    assert bubble(page, "cand") == "Messaged, 2 unread"
    assert '<span class="bubble-count" aria-hidden="true">2</span>' in row(page, "cand")
    # It opens the candidate's Messages tab.
    assert 'href="/candidates/cand?tab=messages"' in row(page, "cand")
    assert bubble(page, "cand2") == "No messages yet"


def test_start_chat_creates_one_conversation_and_opens_it(
    world: World, tess: Browser, db: Database
) -> None:
    page = tess.page("/candidates", q="dan")
    [form] = start_forms(row(page, "cand2"))
    assert form == {"kind": "application", "application": "app2", "button": "Start chat"}
    before = conversations_of(db, Kind.application)
    # The composer makes nothing; the first message makes the conversation.
    tess.page("/conversations/new", kind="application", application="app2")
    assert conversations_of(db, Kind.application) == before
    conv = first_message(tess, form)
    assert conversations_of(db, Kind.application) == before + 1
    # Sent again (a double click): the same conversation, none new.
    assert first_message(tess, form) == conv
    assert conversations_of(db, Kind.application) == before + 1

    profile = tess.page("/candidates/cand2", tab="messages", application="app2")
    assert open_thread(profile) == conv
    assert '<form id="composer"' in profile
    # Now the list offers to open it.
    [again] = start_forms(row(tess.page("/candidates", q="dan"), "cand2"))
    assert again == {"conversation": str(conv), "button": "Open chat"}


def test_only_those_who_may_start_a_chat_get_the_button(
    client: TestClient, api: Api, world: World
) -> None:
    """The hiring team starts application chats; a source partner starts its one-to-one."""
    partner = signed_in(client, api, "sp_in").page("/candidates")
    assert [(f.get("kind"), f.get("candidate"), f["button"]) for f in start_forms(partner)] == [
        ("candidate_partner", "cand", "Start chat")
    ]
    admin = signed_in(client, api, "emp_admin").page("/candidates")
    assert sorted(f["application"] for f in start_forms(admin)) == ["app1", "app2"]


def test_the_list_is_paged(monkeypatch: pytest.MonkeyPatch, tess: Browser) -> None:
    monkeypatch.setattr(candidates_page, "PAGE", 1)
    first = tess.page("/candidates")
    assert listed(first) == ["cand"]
    more = re.search(r'<p class="more"><a href="([^"]+)">More candidates</a>', first)
    assert more
    second = tess.page(unescape(more.group(1)))
    assert listed(second) == ["cand2"]
    assert "More candidates" not in second
    tess.page("/candidates", 422, cursor="not-a-cursor")


def test_the_list_fragment_and_what_changes_it(world: World, tess: Browser) -> None:
    """Our script redraws the list from /candidates/list.html; told which conversation changed,
    the server says 204 when that one cannot change the list (a job chat)."""
    chat = start(world["emp_team"], "application", application="app1")
    group = start(world["emp_team"], "job_partners", job="job1")
    r = tess.client.get("/candidates/list.html", params={"messaging": "unread"})
    assert r.status_code == 200
    assert "<html" not in r.text
    assert listed(r.text) == []
    sent(world["cand"].send(chat, "Hello"))
    r = tess.client.get(
        "/candidates/list.html", params={"messaging": "unread", "conversation": chat}
    )
    assert listed(r.text) == ["cand"]
    assert tess.client.get(f"/candidates/list.html?conversation={group}").status_code == 204
    # One the user is not in: nothing is told about it.
    other = start(world["emp_admin"], "agency_private", application="app1")
    assert tess.client.get(f"/candidates/list.html?conversation={other}").status_code == 200


def test_staff_only(client: TestClient, api: Api, world: World) -> None:
    carla = signed_in(client, api, "cand")
    html = carla.page("/candidates", 403)
    assert "Not allowed" in html
    assert carla.client.get("/candidates/list.html").status_code == 403
    # Someone else's profile does not exist for her; her own is a staff page.
    carla.page("/candidates/cand2", 404)
    carla.page("/candidates/cand", 403)
    r = TestClient(client.app).get("/candidates")
    assert r.status_code == 401


# --- the profile ---------------------------------------------------------------------------------


def test_a_profile_nobody_may_see_is_not_found(client: TestClient, api: Api, world: World) -> None:
    for who in ("emp_other", "other_emp", "sp_out", "agency_other"):
        html = signed_in(client, api, who).page("/candidates/cand", 404)
        assert "There is no candidate with that id." in html
        assert "Carla" not in html
    tess = signed_in(client, api, "emp_team")
    tess.page("/candidates/nobody", 404)
    # An application that is not hers to see, or not this candidate's.
    api.job("job3", "Cook", "acme", team=["emp_team"])
    api.application("app3", "job3", "cand", "applied")
    api.job("job2", "Porter", "acme", team=["emp_admin"])
    api.application("app4", "job2", "cand", "applied")
    tess.page("/candidates/cand", 404, application="app4")
    tess.page("/candidates/cand", 404, application="app2")
    tess.page("/candidates/cand", 200, application="app3")


def test_the_header(api: Api, world: World, tess: Browser) -> None:
    # Tess reads times on Kiritimati (UTC+14): late on the 5th in UTC is the 6th there.
    api.staff("emp_team", "Tess Team", "acme", timezone="Pacific/Kiritimati")
    api.application(
        "app1",
        "job1",
        "cand",
        "offer_accepted",
        stage_owner="emp_team",
        agency_user="agency_user",
        applied_at="2026-01-05T12:00:00Z",
    )
    html = tess.page("/candidates/cand")
    assert '<h1 id="candidate-name">Carla Candidate</h1>' in html
    assert "cand@example.org" in html
    assert "+14155550123" in html and "SMS: opted in" in html
    assert "Talent Beyond Boundaries" in html
    assert "Registered Nurse" in html and "Offer accepted" in html
    assert '<time datetime="2026-01-05T12:00:00+00:00">6 January 2026</time>' in html

    api.candidate(
        "cand", "Carla Candidate", source_partner="tbb", phone="+14155550123", sms_consent=False
    )
    assert "SMS: not opted in" in tess.page("/candidates/cand")
    api.candidate("cand", "Carla Candidate", phone="12", sms_consent=True, source_partner=None)
    html = tess.page("/candidates/cand")
    assert "SMS: number invalid" in html
    assert "<dt>Source partner</dt><dd>None</dd>" in html
    assert "No phone number" in tess.page("/candidates/cand2")


def test_tabs_by_viewer(client: TestClient, api: Api, world: World, tess: Browser) -> None:
    """The agency tab only where the application has an agency user, for the hiring team and
    that agency user; a source partner has no agency tab; the agency user only that one."""
    everything = {"Messages": False, "Communications": False, "Agency messaging": False}
    assert tabs(tess.page("/candidates/cand")) == everything
    assert current_tab(tess.page("/candidates/cand")) == "Messages"
    assert tabs(tess.page("/candidates/cand2")) == {"Messages": False, "Communications": False}
    # A tab that is not the viewer's falls back to the first they have.
    assert current_tab(tess.page("/candidates/cand2", tab="agency")) == "Messages"
    assert tabs(signed_in(client, api, "emp_admin").page("/candidates/cand")) == everything

    partner = signed_in(client, api, "sp_in").page("/candidates/cand")
    assert tabs(partner) == {"Messages": False, "Communications": False}

    agent = signed_in(client, api, "agency_user")
    html = agent.page("/candidates/cand")
    assert tabs(html) == {"Agency messaging": False}
    assert current_tab(html) == "Agency messaging"
    assert current_tab(agent.page("/candidates/cand", tab="messages")) == "Agency messaging"


def test_messages_tab_embeds_the_chat_with_its_channels(world: World, tess: Browser) -> None:
    html = tess.page("/candidates/cand")
    assert open_thread(html) is None
    # Tess may start her own chat with Carla and the case chat (with TBB).
    [form, case] = start_forms(html)
    assert form == {"kind": "application", "application": "app1", "button": "Start chat"}
    assert case == {"kind": "case", "application": "app1", "button": "Start chat"}

    chat = start(world["emp_team"], "application", application="app1")
    sent(world["cand"].send(chat, "Hello from Carla"))
    html = tess.page("/candidates/cand")
    assert open_thread(html) == chat
    assert tabs(html)["Messages"] is True  # unread
    assert "Hello from Carla" in html
    # Carla opted in to SMS with a valid number; Dan has no phone.
    assert channels(html) == ["app", "email", "sms"]
    dan = start(world["emp_team"], "application", application="app2")
    html = tess.page("/candidates/cand2")
    assert open_thread(html) == dan
    assert channels(html) == ["app", "email"]
    assert "SMS not available: Dan Candidate has not agreed to receive texts." in html
    assert [f.get("kind") for f in start_forms(html)] == ["case"]


def test_messages_tab_switches_between_applications(api: Api, world: World, tess: Browser) -> None:
    api.job("job2", "Porter", "acme", team=["emp_team"])
    api.application("app3", "job2", "cand", "applied", applied_at="2026-01-04T00:00:00Z")
    api.application("app1", "job1", "cand", "offer_accepted", applied_at="2026-01-01T00:00:00Z")
    porter = start(world["emp_team"], "application", application="app3")
    html = tess.page("/candidates/cand")
    # The newest application is the default; links switch to the other.
    assert open_thread(html) == porter
    selector = re.search(r'<nav aria-label="Applications".*?</nav>', html, re.S)
    assert selector
    assert 'href="/candidates/cand?tab=messages&amp;application=app1"' in selector.group(0)
    assert re.search(r'application=app3" aria-current="page"', selector.group(0))
    nurse = tess.page("/candidates/cand", tab="messages", application="app1")
    assert open_thread(nurse) is None
    assert start_forms(nurse)[0]["application"] == "app1"


def test_a_source_partner_gets_its_one_to_one_chat(
    client: TestClient, api: Api, world: World
) -> None:
    partner = signed_in(client, api, "sp_in")
    # The case chat (with the hiring team) and its one-to-one with Carla.
    case, form = start_forms(partner.page("/candidates/cand"))
    assert (case["kind"], case["application"]) == ("case", "app1")
    assert form == {"kind": "candidate_partner", "candidate": "cand", "button": "Start chat"}
    chat = first_message(partner, form)
    assert open_thread(partner.page("/candidates/cand", tab="messages")) == chat


def test_communications_is_the_whole_history_newest_first(
    monkeypatch: pytest.MonkeyPatch,
    client: TestClient,
    api: Api,
    world: World,
    tess: Browser,
    clock: FrozenClock,
) -> None:
    # 10:00 in San Francisco, where the candidate's number is: the text goes at once (at night
    # SMS quiet hours would hold it: tests/test_sms_quiet_hours.py).
    clock.advance(hours=9)
    tess_api, carla = world["emp_team"], world["cand"]
    chat = start(tess_api, "application", application="app1")
    case = start(tess_api, "case", application="app1")
    partner_chat = start(world["sp_in"], "candidate_partner", candidate="cand")
    hello = sent(tess_api.send(chat, "Hello Carla"))["id"]
    email = sent(tess_api.send(chat, "The offer", channel="email", subject="Your offer"))["id"]
    text = sent(tess_api.send(chat, "Call me", channel="sms"))["id"]
    reply = sent(carla.send(chat, "Thanks!"))["id"]
    about_case = sent(world["sp_in"].send(case, "Visa papers are in"))["id"]
    sent(world["sp_in"].send(partner_chat, "Only between us"))
    gone = sent(tess_api.send(chat, "Oops, wrong person"))["id"]
    assert tess_api.delete(f"/api/v1/messages/{gone}", **{"for": "everyone"}).status_code == 204
    hidden = sent(carla.send(chat, "Hide me"))["id"]
    assert tess_api.delete(f"/api/v1/messages/{hidden}", **{"for": "me"}).status_code == 204

    html = tess.page("/candidates/cand", tab="communications")
    assert current_tab(html) == "Communications"
    assert open_thread(html) is None
    # Her partner's one-to-one is not Tess's; what Tess hid is gone; the tombstone stays.
    assert history(html) == [gone, about_case, reply, text, email, hello]
    assert "Only between us" not in html and "Hide me" not in html
    assert "Oops, wrong person" not in html
    assert "This message was deleted" in html
    assert f'href="/conversations/{case}"' in html and f'href="/conversations/{chat}"' in html
    assert "Carla Candidate · Registered Nurse" in html
    assert "Your offer" in html
    assert re.search(r'<span class="channel channel-email">Email</span>', html)
    assert re.search(r'<span class="channel channel-sms">SMS</span>', html)
    assert re.search(r"Email queued", html) and re.search(r"SMS queued", html)

    def only(channel: str) -> list[int]:
        return history(tess.page("/candidates/cand", tab="communications", channel=channel))

    assert only("email") == [email]
    assert only("sms") == [text]
    assert only("app") == [gone, about_case, reply, hello]
    assert "No SMS messages" in tess.page("/candidates/cand2", tab="communications", channel="sms")

    # A page at a time; the older link keeps the channel.
    monkeypatch.setattr(candidates_page, "HISTORY_PAGE", 2)
    page = tess.page("/candidates/cand", tab="communications", channel="app")
    assert history(page) == [gone, about_case]
    older = re.search(r'<p class="more"><a href="([^"]+)">Older messages</a>', page)
    assert older
    assert "channel=app" in older.group(1)
    page = tess.page(unescape(older.group(1)))
    assert history(page) == [reply, hello]
    assert "Older messages" not in page

    # The source partner's: its one-to-one and the case, not the recruiter's chat.
    partner = signed_in(client, api, "sp_in").page("/candidates/cand", tab="communications")
    assert "Only between us" in partner and "Visa papers are in" in partner
    assert "Hello Carla" not in partner


def test_agency_messaging(client: TestClient, api: Api, world: World, db: Database) -> None:
    tess = signed_in(client, api, "emp_team")
    admin = signed_in(client, api, "emp_admin")
    agent = signed_in(client, api, "agency_user")

    # Nothing yet: the hiring team may start the shared thread and a private one; the agency
    # user the shared one and a private one with the stage owner (Tess), nobody else.
    def starts(browser: Browser) -> list[tuple[str, str]]:
        html = browser.page("/candidates/cand", tab="agency")
        return [(f["kind"], f["button"]) for f in start_forms(html)]

    assert starts(tess) == [
        ("agency", "Start shared thread with Aggie Agent"),
        ("agency_private", "Start private thread with Aggie Agent"),
    ]
    # (Written from the agency user's side: the other side is the hiring team.)
    assert starts(agent) == [
        ("agency", "Start shared thread with the hiring team"),
        ("agency_private", "Start private thread with Tess Team"),
    ]
    [to_tess] = [f for f in start_forms(agent.page("/candidates/cand")) if "with_user" in f]
    assert to_tess == {
        "kind": "agency_private",
        "application": "app1",
        "with_user": "emp_team",
        "button": "Start private thread with Tess Team",
    }

    # The agency user opens the shared thread from the page with its first message.
    [shared_form] = [
        f for f in start_forms(agent.page("/candidates/cand")) if f["kind"] == "agency"
    ]
    shared = first_message(agent, shared_form, "Carla can start in May")

    # Every hiring-team user sees it, with the blue dot (on the tab too, from any tab).
    for browser in (tess, admin):
        html = browser.page("/candidates/cand", tab="agency")
        assert agency_threads(html) == [shared]
        assert open_thread(html) == shared
        assert "Carla can start in May" in html
        assert tabs(html)["Agency messaging"] is True
        assert re.search(
            rf'<li class="conversation-row unread" data-conversation="{shared}">', html
        )
        assert tabs(browser.page("/candidates/cand", tab="communications"))["Agency messaging"]
    assert tabs(agent.page("/candidates/cand"))["Agency messaging"] is False

    # Tess's private thread: hers and the agency user's alone.
    private = first_message(
        tess,
        {"kind": "agency_private", "application": "app1"},
        "Between us: the budget is tight",
    )
    html = tess.page("/candidates/cand", tab="agency", thread=private)
    assert agency_threads(html) == [shared, private]
    assert open_thread(html) == private
    # Named from the reader's side: Tess reads the agency user's name, Aggie Tess's.
    assert "Private with Aggie Agent" in html
    assert ("agency_private", "Start private thread with Aggie Agent") not in starts(tess)

    admin_view = admin.page("/candidates/cand", tab="agency", thread=private)
    assert agency_threads(admin_view) == [shared]
    assert open_thread(admin_view) == shared
    assert "budget is tight" not in admin_view
    assert "Private with Aggie Agent" not in admin_view
    assert ("agency_private", "Start private thread with Aggie Agent") in starts(admin)

    agent_view = agent.page("/candidates/cand", tab="agency", thread=private)
    assert agency_threads(agent_view) == [shared, private]
    assert open_thread(agent_view) == private
    assert "budget is tight" in agent_view
    assert "Private with Tess Team" in agent_view
    assert "Shared thread with the hiring team" in agent_view
    # The agency user has a thread with Tess now; nothing left to start.
    assert starts(agent) == []
    assert conversations_of(db, Kind.agency_private) == 1


def test_an_agency_user_may_return_to_someone_they_talked_to_privately(
    client: TestClient, api: Api, world: World
) -> None:
    """Ada (an admin, not the stage owner) opened a private thread about another candidate: the
    agency user may open one with her about Carla too."""
    api.application("app2", "job1", "cand2", "interview", agency_user="agency_user")
    start(world["emp_admin"], "agency_private", application="app2")
    agent = signed_in(client, api, "agency_user")
    forms = start_forms(agent.page("/candidates/cand", tab="agency"))
    assert sorted(f["with_user"] for f in forms if "with_user" in f) == ["emp_admin", "emp_team"]


def test_markup_in_names_and_messages_is_text(
    client: TestClient, api: Api, world: World, tess: Browser
) -> None:
    api.candidate("cand", f"Carla {SCRIPT}", source_partner="tbb", phone="+14155550123")
    chat = start(world["emp_team"], "application", application="app1")
    sent(world["cand"].send(chat, f"Hi {SCRIPT}"))
    shared = start(world["agency_user"], "agency", application="app1")
    sent(world["agency_user"].send(shared, f"Agency {SCRIPT}"))
    pages = [
        tess.page("/candidates"),
        tess.page("/candidates", q="carla"),
        tess.client.get("/candidates/list.html").text,
        tess.page("/candidates/cand"),
        tess.page("/candidates/cand", tab="communications"),
        tess.page("/candidates/cand", tab="agency"),
        signed_in(client, api, "agency_user").page("/candidates/cand"),
    ]
    for html in pages:
        assert SCRIPT not in html
        assert f"Carla {ESCAPED}" in html
    assert f"Hi {ESCAPED}" in pages[3] and f"Hi {ESCAPED}" in pages[4]
    assert f"Agency {ESCAPED}" in pages[5]
    # The search echoes what was typed, escaped too.
    assert ESCAPED in tess.page("/candidates", q=SCRIPT)


def test_a_form_without_its_csrf_field_is_refused(tess: Browser, db: Database) -> None:
    before = conversations_of(db, Kind.application)
    r = tess.form(
        "/conversations/start", {"kind": "application", "application": "app2"}, csrf=False
    )
    assert r.status_code == 403
    assert "This form has expired" in r.text
    assert conversations_of(db, Kind.application) == before
    r = tess.form(
        "/conversations/start",
        {"kind": "application", "application": "app2", "csrf": "forged"},
        csrf=False,
    )
    assert r.status_code == 403
    assert conversations_of(db, Kind.application) == before


def test_pages_keep_to_the_content_security_policy(world: World, tess: Browser) -> None:
    start(world["emp_team"], "application", application="app1")
    for path in (
        "/candidates",
        "/candidates/cand",
        "/candidates/cand?tab=communications",
        "/candidates/cand?tab=agency",
    ):
        r = tess.client.get(path)
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == CSP
        assert re.findall(r"<script(?![^>]*\bsrc=)", r.text) == []
        assert " style=" not in r.text and "<style" not in r.text
        assert re.search(r"\son[a-z]+=", r.text) is None
        assert re.search(r'<script src="/static/candidates\.js\?v=[0-9a-f]{12}" defer>', r.text)
        assert re.search(r'<link rel="stylesheet" href="/static/candidates\.css\?v=', r.text)
