"""The staff job pages, read and posted as a browser would (in-process): who sees which jobs, a
job's Overview and its Job Chats (one row per partner for the employer, only its own for a
partner), starting a chat from there, the embedded chat, the fragments, escaping and CSRF.

The world (tests/support.py): acme's job1 "Registered Nurse" has team [emp_team] and partners
tbb (source partner) and hireco (agency); cand (tbb's) is at offer_accepted on it, cand2 (crs's)
at interview.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat import access
from jobchat.conversations.models import Conversation, Kind
from jobchat.db.engine import Database
from jobchat.directory.models import Application, Job, User
from tests.support import ROLES, Api, World, sent, start
from tests.web_support import Browser, conversation_ids, texts

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def jobs(api: Api, world: World) -> World:
    """Besides job1: job2 at acme with no team (all of acme works it), job3 at globex shared
    with crs, and an application to job2 submitted by hireco's agency_user though job2 is not
    shared with hireco."""
    api.job("job2", "Ward Clerk", "acme", team=[], partners=[])
    api.job("job3", "Lab Technician", "globex", team=[], partners=["crs"])
    api.candidate("cand3", "Eve Candidate")
    api.application("app3", "job2", "cand3", "applied", agency_user="agency_user")
    return world


def browser(client: TestClient, api: Api, who: str) -> Browser:
    return Browser.signed_in(client, api, who)


def job_rows(html: str) -> dict[str, str]:
    """Each row of the jobs list: job ext id → the row's text."""
    rows = re.findall(r'<li class="job-row[^"]*" data-job="([^"]+)">(.*?)</li>', html, re.S)
    return {ext: " ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for ext, row in rows}


def slots(html: str) -> dict[str, tuple[int | None, bool, str]]:
    """Each row of the Job Chats list: key → (its conversation id or None, whether it offers
    "Start chat", its text)."""
    found: dict[str, tuple[int | None, bool, str]] = {}
    for row in re.split(r'(?=<li class="conversation-row chat-slot)', html)[1:]:
        row = row.split("</li>", 1)[0]
        key = re.search(r'data-slot="([^"]+)"', row)
        assert key is not None, row
        conv = re.search(r'data-conversation="(\d+)"', row)
        text = " ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split())
        found[key.group(1)] = (int(conv.group(1)) if conv else None, "Start chat" in text, text)
    return found


# --- the jobs list -------------------------------------------------------------------------------


EXPECTED_JOBS = {
    "emp_admin": {"job1", "job2"},
    "emp_team": {"job1", "job2"},
    # Not on job1's team; job2 has no team, so all of acme works it.
    "emp_other": {"job2"},
    "other_emp": {"job3"},
    # Partner staff: the jobs shared with their organisation.
    "sp_in": {"job1"},
    "sp_out": {"job3"},
    # hireco is a partner of job1; agency_user also submitted a candidate to job2.
    "agency_user": {"job1", "job2"},
    "agency_other": {"job1"},
}


@pytest.mark.parametrize("who", sorted(EXPECTED_JOBS))
def test_the_jobs_list_shows_the_jobs_each_persona_can_see(
    client: TestClient, api: Api, jobs: World, who: str
) -> None:
    html = browser(client, api, who).page("/jobs")
    assert set(job_rows(html)) == EXPECTED_JOBS[who]
    assert 'aria-label="Jobs"' in html
    assert re.search(r'<label for="jobs-q"[^>]*>Search jobs</label>', html)
    # The Jobs link of the main navigation is the current page.
    assert re.search(r'<a href="/jobs" aria-current="page">Jobs', html)


def test_each_job_shows_its_employer_and_the_candidates_the_viewer_can_see(
    client: TestClient, api: Api, jobs: World
) -> None:
    def row(who: str, job: str) -> str:
        return job_rows(browser(client, api, who).page("/jobs"))[job]

    assert row("emp_team", "job1") == "Registered Nurse Acme Health · 2 candidates"
    assert row("emp_admin", "job2") == "Ward Clerk Acme Health · 1 candidate"
    # tbb sees its own candidate; the agency user the one they submitted; a colleague none.
    assert row("sp_in", "job1") == "Registered Nurse Acme Health · 1 candidate"
    assert row("agency_user", "job1") == "Registered Nurse Acme Health · 1 candidate"
    assert row("agency_other", "job1") == "Registered Nurse Acme Health · 0 candidates"
    assert row("sp_out", "job3") == "Lab Technician Globex · 0 candidates"


@pytest.mark.parametrize("who", ["cand", "cand2"])
def test_candidates_get_the_not_allowed_page(
    client: TestClient, api: Api, jobs: World, who: str
) -> None:
    b = browser(client, api, who)
    for path in ("/jobs", "/jobs/list.html", "/jobs/job1", "/jobs/job1/chats.html"):
        r = b.client.get(path)
        assert r.status_code == 403, path
        assert r.headers["content-type"].startswith("text/html")
        assert "Not allowed" in r.text


def test_the_visibility_rules_in_sql_agree_with_the_access_functions(
    jobs: World, db: Database
) -> None:
    """The lists use SQL twins of can_see_job and can_see_application: for every persona and
    every job and application, both answer the same."""
    with db.read() as s:
        every_job = s.scalars(select(Job)).all()
        every_app = s.scalars(select(Application)).all()
        for who in [*ROLES, "cand3"]:
            user = s.scalars(select(User).where(User.ext_id == who)).one()
            seen_jobs = set(s.scalars(select(Job.id).where(access.jobs_visible_sql(user))))
            assert seen_jobs == {j.id for j in every_job if access.can_see_job(s, user, j)}, who
            seen_apps = set(
                s.scalars(select(Application.id).where(access.applications_visible_sql(user)))
            )
            expected = {a.id for a in every_app if access.can_see_application(s, user, a)}
            assert seen_apps == expected, who


def test_search_by_title_or_employer_takes_wildcards_literally(
    client: TestClient, api: Api, jobs: World
) -> None:
    api.job("job4", "100% Remote Nurse", "acme", team=[], partners=[])
    admin = browser(client, api, "emp_admin")
    assert set(job_rows(admin.page("/jobs", q="NURSE"))) == {"job1", "job4"}
    assert set(job_rows(admin.page("/jobs", q="acme"))) == {"job1", "job2", "job4"}
    assert set(job_rows(admin.page("/jobs", q="100%"))) == {"job4"}
    assert set(job_rows(admin.page("/jobs", q="%"))) == {"job4"}
    html = admin.page("/jobs", q="plumber")
    assert job_rows(html) == {}
    assert "No jobs match “plumber”." in html


def test_a_long_list_comes_a_page_at_a_time(client: TestClient, api: Api, world: World) -> None:
    for n in range(52):
        api.job(f"bulk{n:02}", f"Bulk job {n:02}", "globex", team=[], partners=[])
    gus = browser(client, api, "other_emp")
    first = gus.page("/jobs")
    assert list(job_rows(first)) == [f"bulk{n:02}" for n in range(50)]
    more = re.search(r'<a href="([^"]+)">More jobs</a>', first)
    assert more is not None
    second = gus.page(unescape(more.group(1)))
    assert list(job_rows(second)) == ["bulk50", "bulk51"]
    assert "More jobs" not in second


def test_a_job_with_unread_chat_messages_is_marked(
    client: TestClient, api: Api, world: World
) -> None:
    conv = start(world["sp_in"], "job_partner", job="job1", partner="tbb")
    sent(world["sp_in"].send(conv, "Two more profiles this week"))
    sent(world["sp_in"].send(conv, "And one next week"))
    tess = browser(client, api, "emp_team")
    html = tess.page("/jobs")
    assert job_rows(html)["job1"] == "Registered Nurse 2 Acme Health · 2 candidates"
    assert '<span class="unread-count" aria-label="2 unread">2</span>' in html
    assert '<li class="job-row unread" data-job="job1">' in html
    # The Job Chats tab carries a dot while something is unread.
    assert 'aria-label="new messages"' in tess.page("/jobs/job1", tab="overview")
    # Read: the mark goes. The partner who wrote never had one.
    assert tess.api("POST", f"/api/v1/conversations/{conv}/read", {}).status_code == 200
    assert "unread-count" not in tess.page("/jobs")
    assert "unread-count" not in browser(client, api, "sp_in").page("/jobs")


def test_the_list_fragment_is_the_list_alone(client: TestClient, api: Api, jobs: World) -> None:
    admin = browser(client, api, "emp_admin")
    fragment = admin.page("/jobs/list.html", q="ward")
    assert "<html" not in fragment
    assert set(job_rows(fragment)) == {"job2"}


# --- a job's page --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "job"),
    [
        ("emp_other", "job1"),  # acme, but not on job1's team
        ("other_emp", "job1"),  # another employer
        ("sp_out", "job1"),  # a source partner job1 is not shared with
        ("sp_in", "job3"),
        ("emp_admin", "no-such-job"),
    ],
)
def test_a_job_the_viewer_cannot_see_is_not_found(
    client: TestClient, api: Api, jobs: World, who: str, job: str
) -> None:
    b = browser(client, api, who)
    for path in (f"/jobs/{job}", f"/jobs/{job}?tab=overview", f"/jobs/{job}/chats.html"):
        r = b.client.get(path)
        assert r.status_code == 404, path
        assert "There is no job with that id." in r.text
    # Starting one of its chats is refused the same way, and nothing is created.
    r = b.form("/conversations/start", {"kind": "job_partners", "job": job})
    assert r.status_code == 404


def test_the_overview_shows_the_job_its_team_partners_and_cases(
    client: TestClient, api: Api, world: World
) -> None:
    tess = browser(client, api, "emp_team")
    html = tess.page("/jobs/job1", tab="overview")
    assert re.search(r'<nav aria-label="Job" class="tabs">', html)
    assert re.search(r'aria-current="page">Overview</a>', html)
    assert "<h1>Registered Nurse</h1>" in html
    facts = " ".join(unescape(re.sub(r"<[^>]+>", " ", html.split("<dl>")[1])).split())
    assert "Employer Acme Health" in facts
    assert "Team Tess Team" in facts
    assert "Talent Beyond Boundaries source partner" in facts
    assert "HireCo Recruiting agency" in facts
    # Both cases, with the stage in words, each linking to the candidate's profile.
    assert 'href="/candidates/cand?application=app1">Carla Candidate</a>' in html
    assert 'href="/candidates/cand2?application=app2">Dan Candidate</a>' in html
    assert texts(html, "stage") == ["Offer accepted", "Interview"]

    # A partner sees only the cases it can see, and no links to the employer's profile pages.
    layla = browser(client, api, "sp_in").page("/jobs/job1", tab="overview")
    assert "Carla Candidate" in layla
    assert "Dan Candidate" not in layla
    assert "/candidates/" not in layla


def test_job_chats_is_the_default_tab(client: TestClient, api: Api, world: World) -> None:
    html = browser(client, api, "emp_team").page("/jobs/job1")
    assert re.search(r'aria-current="page">Job Chats', html)
    assert 'aria-label="Job chats"' in html
    assert "<dl>" not in html


def test_job_chats_rows_per_persona(client: TestClient, api: Api, world: World) -> None:
    """Employer staff: a chat per partner, the group and the relocation chat, each startable.
    A partner's staff: only their own partner chat (which they may start), and the group and
    relocation chats, which only the employer starts."""
    tess = slots(browser(client, api, "emp_team").page("/jobs/job1"))
    assert list(tess) == ["partner-tbb", "partner-hireco", "partners", "relocation"]
    assert all(conv is None and startable for conv, startable, _ in tess.values())
    assert "Carla Candidate" in tess["relocation"][2]
    assert "Dan Candidate" not in tess["relocation"][2]

    for who, own in (("sp_in", "partner-tbb"), ("agency_other", "partner-hireco")):
        theirs = slots(browser(client, api, who).page("/jobs/job1"))
        assert list(theirs) == [own, "partners", "relocation"], who
        assert theirs[own][:2] == (None, True)
        assert theirs["partners"][:2] == (None, False)
        assert "Not started yet" in theirs["partners"][2]
        assert theirs["relocation"][:2] == (None, False)

    # emp_admin is in E through the admin role.
    assert list(slots(browser(client, api, "emp_admin").page("/jobs/job1"))) == list(tess)


def test_a_partner_never_sees_another_partners_chat(
    client: TestClient, api: Api, world: World
) -> None:
    hireco_chat = start(world["emp_team"], "job_partner", job="job1", partner="hireco")
    sent(world["emp_team"].send(hireco_chat, "For HireCo only"))
    layla = browser(client, api, "sp_in")
    html = layla.page("/jobs/job1")
    assert hireco_chat not in conversation_ids(html)
    assert "HireCo" not in html and "For HireCo only" not in html
    # Asking to open it shows nothing of it.
    html = layla.page("/jobs/job1", open=str(hireco_chat))
    assert 'id="thread"' not in html
    assert "For HireCo only" not in html
    assert "That chat does not exist, or you are not in it." in html
    # HireCo's staff do see it, with its preview.
    aggie = slots(browser(client, api, "agency_other").page("/jobs/job1"))
    assert aggie["partner-hireco"][0] == hireco_chat
    assert "Tess Team: For HireCo only" in aggie["partner-hireco"][2]


def test_start_chat_creates_the_chat_once_and_opens_it_on_the_page(
    client: TestClient, api: Api, world: World, db: Database
) -> None:
    tess = browser(client, api, "emp_team")
    form = {"kind": "job_partner", "job": "job1", "partner": "tbb"}
    # The row links to the composer for exactly this chat, which makes nothing by itself.
    page = tess.page("/jobs/job1")
    tbb_row = page.split('data-slot="partner-tbb"')[1].split("</li>")[0]
    assert 'href="/conversations/new?kind=job_partner&amp;job=job1&amp;partner=tbb"' in tbb_row
    tess.page("/conversations/new", 200, **form)
    first = tess.form("/conversations/new", form | {"body": "Hi TBB", "idempotency_key": "k"})
    assert first.status_code == 303
    conv_id = int(first.headers["location"].rsplit("/", 1)[1])
    assert first.headers["location"] == f"/conversations/{conv_id}"
    again = tess.form("/conversations/new", form | {"body": "Hi TBB", "idempotency_key": "k"})
    assert again.headers["location"] == first.headers["location"]
    with db.read() as s:
        count = s.scalar(select(func.count()).where(Conversation.kind == Kind.job_partner))
        assert count == 1
    location = f"/jobs/job1?tab=chats&open={conv_id}"

    html = tess.page(location)
    # The chat is open beside the list: the whole thread with its composer.
    assert f'id="thread" data-conversation="{conv_id}"' in html
    assert re.search(rf'<form id="composer"[^>]*action="/conversations/{conv_id}/messages"', html)
    row = slots(html)["partner-tbb"]
    assert row[:2] == (conv_id, False)
    link = f'href="/jobs/job1?tab=chats&amp;open={conv_id}" class="row-link" data-key="partner-tbb"'
    assert f'{link} aria-current="true"' in html
    # The partner's side now has the chat as a link, not a button.
    assert slots(browser(client, api, "sp_in").page("/jobs/job1"))["partner-tbb"][:2] == (
        conv_id,
        False,
    )


def test_a_partner_starts_its_own_chat_but_not_the_group_chat(
    client: TestClient, api: Api, world: World, db: Database
) -> None:
    layla = browser(client, api, "sp_in")
    r = layla.form(
        "/conversations/start",
        {"kind": "job_partner", "job": "job1", "partner": "tbb", "next": "/jobs/job1?open={id}"},
    )
    assert r.status_code == 303
    for kind in ("job_partners", "job_relocation"):
        r = layla.form("/conversations/start", {"kind": kind, "job": "job1"})
        assert r.status_code == 403, kind
    r = layla.form(
        "/conversations/start", {"kind": "job_partner", "job": "job1", "partner": "hireco"}
    )
    assert r.status_code == 403
    with db.read() as s:
        assert s.scalars(select(Conversation.kind)).all() == ["job_partner"]


def test_a_chat_of_another_job_or_kind_is_not_embedded(
    client: TestClient, api: Api, world: World
) -> None:
    application_chat = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(application_chat, "About your offer"))
    html = browser(client, api, "emp_team").page("/jobs/job1", open=str(application_chat))
    assert 'id="thread"' not in html
    assert "About your offer" not in html
    assert "That chat is not one of this job&#39;s chats." in html


def test_the_relocation_chat_lists_its_candidates(
    client: TestClient, api: Api, world: World
) -> None:
    conv = start(world["emp_team"], "job_relocation", job="job1")
    api.application("app2", "job1", "cand2", "hired")
    for who in ("emp_team", "sp_in", "agency_user"):
        row = slots(browser(client, api, who).page("/jobs/job1"))["relocation"]
        assert row[0] == conv, who
        assert "Carla Candidate, Dan Candidate" in row[2], who


def test_the_chats_fragment_redraws_the_rows(client: TestClient, api: Api, world: World) -> None:
    conv = start(world["emp_team"], "job_partners", job="job1")
    tess = browser(client, api, "emp_team")
    before = tess.page(f"/jobs/job1/chats.html?open={conv}")
    assert "<html" not in before
    assert slots(before)["partners"][:2] == (conv, False)
    assert "unread-count" not in before
    sent(world["sp_in"].send(conv, "Hello all"))
    after = tess.page(f"/jobs/job1/chats.html?open={conv}")
    assert "Sam Partner: Hello all" in slots(after)["partners"][2]
    assert '<span class="unread-count" aria-label="1 unread">1</span>' in after
    assert 'aria-current="true"' in after
    # The page tells our script where to fetch it from.
    page = tess.page(f"/jobs/job1?tab=chats&open={conv}")
    assert f'data-live-src="/jobs/job1/chats.html?open={conv}"' in page
    assert re.search(r'<script src="/static/jobs\.js\?v=[0-9a-f]{12}" defer>', page)


def test_user_content_is_escaped(client: TestClient, api: Api, world: World) -> None:
    api.job("job1", f"Nurse {SCRIPT}", "acme", team=["emp_team"], partners=["tbb", "hireco"])
    api.org("tbb", f"TBB {SCRIPT}", "source_partner")
    conv = start(world["emp_team"], "job_partner", job="job1", partner="tbb")
    sent(world["sp_in"].send(conv, f"Body {SCRIPT}"))
    tess = browser(client, api, "emp_team")
    for path in (
        "/jobs",
        "/jobs/list.html",
        "/jobs/job1?tab=overview",
        f"/jobs/job1?tab=chats&open={conv}",
        "/jobs/job1/chats.html",
    ):
        html = tess.page(path)
        assert SCRIPT not in html, path
        assert ESCAPED in html, path
    assert f"Body {ESCAPED}" in tess.page(f"/jobs/job1?open={conv}")


def test_start_without_the_csrf_token_or_from_elsewhere_changes_nothing(
    client: TestClient, api: Api, world: World, db: Database
) -> None:
    tess = browser(client, api, "emp_team")
    fields = {"kind": "job_partners", "job": "job1"}
    r = tess.form("/conversations/start", fields, csrf=False)
    assert r.status_code == 403
    assert "expired or did not come from jobchat" in r.text
    r = tess.form("/conversations/start", fields | {"csrf": "forged"}, csrf=False)
    assert r.status_code == 403
    r = tess.client.post(
        "/conversations/start",
        data=fields | {"csrf": tess.csrf},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == 0
    assert slots(tess.page("/jobs/job1"))["partners"][:2] == (None, True)
