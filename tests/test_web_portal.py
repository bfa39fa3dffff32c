"""The candidate portal, read and posted as a browser would (in-process): each application with
its chats (recruiter, case, and relocation from an accepted offer on), the source partner's chat,
only ever the candidate's own, counts and previews, the fragment, escaping and CSRF.

The world (tests/support.py): cand (Carla, tbb's candidate) is at offer_accepted on acme's job1
(app1, submitted by hireco's agency_user); cand2 (Dan, crs's) at interview on job1 (app2).
"""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jobchat.conversations.models import Conversation
from jobchat.db.engine import Database
from tests.support import Api, World, sent, start
from tests.web_support import Browser, conversation_ids

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def browser(client: TestClient, api: Api, who: str) -> Browser:
    return Browser.signed_in(client, api, who)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def applications(html: str) -> dict[str, dict[str, tuple[int | None, str]]]:
    """application ext id → {chat key → (conversation id or None, the row's text)}."""
    found: dict[str, dict[str, tuple[int | None, str]]] = {}
    for card in re.split(r'(?=<article class="application-card")', html)[1:]:
        card = card.split("</article>", 1)[0]
        ext = re.search(r'data-application="([^"]+)"', card)
        assert ext is not None
        found[ext.group(1)] = _slots(card)
    return found


def head(html: str, app: str) -> str:
    card = html.split(f'data-application="{app}"', 1)[1].split("</div>", 1)[0]
    return _text("<" + card)


def partner_section(html: str) -> str:
    return html.split('id="partner-title"', 1)[1].split("</section>", 1)[0]


def _slots(html: str) -> dict[str, tuple[int | None, str]]:
    found: dict[str, tuple[int | None, str]] = {}
    for row in re.split(r'(?=<li class="conversation-row chat-slot)', html)[1:]:
        row = row.split("</li>", 1)[0]
        key = re.search(r'data-slot="([^"]+)"', row)
        assert key is not None
        conv = re.search(r'data-conversation="(\d+)"', row)
        found[key.group(1)] = (int(conv.group(1)) if conv else None, _text("<" + row))
    return found


def test_the_jobs_tab_lists_each_application_with_its_chats(
    client: TestClient, api: Api, world: World
) -> None:
    carla = browser(client, api, "cand")
    html = carla.page("/portal")
    assert re.search(r'<a href="/portal" aria-current="page">Jobs', html)
    assert "<h1>Jobs</h1>" in html
    assert head(html, "app1").startswith("Registered Nurse Acme Health · Offer accepted · Applied")
    chats = applications(html)
    assert list(chats) == ["app1"]
    assert list(chats["app1"]) == ["application", "case", "relocation"]
    # Nothing started yet: no links, and nothing for a candidate to start.
    for conv, text in chats["app1"].values():
        assert conv is None
        assert "No messages yet" in text
    assert "Start chat" not in html.split('id="partner-title"')[0]
    assert "/conversations/start" not in html.split('id="partner-title"')[0]


def test_each_chat_is_a_link_with_its_preview_and_unread_count(
    client: TestClient, api: Api, world: World
) -> None:
    emp = world["emp_team"]
    recruiter = start(emp, "application", application="app1")
    case = start(world["sp_in"], "case", application="app1")
    relocation = start(emp, "job_relocation", job="job1")
    sent(emp.send(recruiter, "Welcome aboard"))
    sent(emp.send(recruiter, "Your contract is ready"))
    sent(world["sp_in"].send(case, "Visa papers next week"))
    carla = browser(client, api, "cand")
    chats = applications(carla.page("/portal"))["app1"]
    assert chats["application"][0] == recruiter
    assert "Tess Team: Your contract is ready" in chats["application"][1]
    assert chats["application"][1].endswith("2")
    assert chats["case"][0] == case
    assert "Sam Partner: Visa papers next week" in chats["case"][1]
    assert chats["relocation"] == (relocation, chats["relocation"][1])
    assert "No messages yet" in chats["relocation"][1]
    html = carla.page("/portal")
    for conv in (recruiter, case, relocation):
        assert f'href="/conversations/{conv}"' in html
    assert '<span class="unread-count" aria-label="2 unread">2</span>' in html
    # The candidate's own messages read as theirs; reading clears the count.
    sent(world["cand"].send(recruiter, "Thank you!"))
    chats = applications(carla.page("/portal"))["app1"]
    assert "You: Thank you!" in chats["application"][1]
    assert "unread-count" not in chats["application"][1]


def test_the_relocation_chat_appears_only_from_an_accepted_offer(
    client: TestClient, api: Api, world: World
) -> None:
    relocation = start(world["emp_team"], "job_relocation", job="job1")
    dan = browser(client, api, "cand2")

    def keys() -> list[str]:
        return list(applications(dan.page("/portal"))["app2"])

    assert keys() == ["application", "case"]  # interview
    assert relocation not in conversation_ids(dan.page("/portal"))
    api.application("app2", "job1", "cand2", "offer_accepted")
    assert keys() == ["application", "case", "relocation"]
    assert applications(dan.page("/portal"))["app2"]["relocation"][0] == relocation
    api.application("app2", "job1", "cand2", "hired")
    assert applications(dan.page("/portal"))["app2"]["relocation"][0] == relocation
    api.application("app2", "job1", "cand2", "withdrawn")
    assert keys() == ["application", "case"]
    assert relocation not in conversation_ids(dan.page("/portal"))


def test_a_candidate_sees_only_their_own_chats_and_never_the_agency_ones(
    client: TestClient, api: Api, world: World
) -> None:
    emp = world["emp_team"]
    carla_chat = start(emp, "application", application="app1")
    dan_chat = start(emp, "application", application="app2")
    dan_case = start(emp, "case", application="app2")
    agency = start(emp, "agency", application="app1")
    private = start(emp, "agency_private", application="app1")
    dan_partner = start(world["sp_out"], "candidate_partner", candidate="cand2")
    job_partner = start(emp, "job_partner", job="job1", partner="tbb")
    group = start(emp, "job_partners", job="job1")
    for conv in (carla_chat, dan_chat, dan_case, agency, private, dan_partner, job_partner, group):
        sent(
            emp.send(conv, f"secret {conv}")
            if conv != dan_partner
            else world["sp_out"].send(conv, f"secret {conv}")
        )

    carla = browser(client, api, "cand").page("/portal")
    assert conversation_ids(carla) == [carla_chat]
    for conv in (dan_chat, dan_case, agency, private, dan_partner, job_partner, group):
        assert f"secret {conv}" not in carla
    assert "Dan Candidate" not in carla
    assert "HireCo" not in carla and "Aggie" not in carla

    dan = browser(client, api, "cand2").page("/portal")
    assert sorted(conversation_ids(dan)) == sorted([dan_chat, dan_case, dan_partner])
    assert f"secret {carla_chat}" not in dan and "Carla" not in dan


def test_the_source_partner_section(
    client: TestClient, api: Api, world: World, db: Database
) -> None:
    carla = browser(client, api, "cand")
    section = partner_section(carla.page("/portal"))
    assert "Your source partner" in carla.page("/portal")
    rows = _slots(section)
    assert list(rows) == ["partner"]
    assert rows["partner"][0] is None
    assert rows["partner"][1].startswith("Talent Beyond Boundaries")
    # A candidate may open the chat with their source partner (DESIGN.md: "either").
    assert "Start chat" in rows["partner"][1]
    r = carla.form(
        "/conversations/start",
        {"kind": "candidate_partner", "candidate": "cand", "next": "/conversations/{id}"},
    )
    assert r.status_code == 303
    conv = int(r.headers["location"].rsplit("/", 1)[1])
    assert (
        carla.form(
            "/conversations/start",
            {"kind": "candidate_partner", "candidate": "cand", "next": "/conversations/{id}"},
        ).headers["location"]
        == f"/conversations/{conv}"
    )
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == 1
    sent(world["sp_in"].send(conv, "Hi Carla, Sam from TBB"))
    rows = _slots(partner_section(carla.page("/portal")))
    assert rows["partner"][0] == conv
    assert "Sam Partner: Hi Carla, Sam from TBB" in rows["partner"][1]

    # A candidate with no source partner is told so.
    api.candidate("cand3", "Eve Candidate")
    api.application("app3", "job1", "cand3", "applied")
    eve = browser(client, api, "cand3").page("/portal")
    assert "You are not working with a source partner." in eve
    # ... and has no case chat to wait for (it is the partner's and the employer's together).
    assert list(applications(eve)["app3"]) == ["application"]


def test_a_chat_with_a_former_source_partner_stays_listed(
    client: TestClient, api: Api, world: World
) -> None:
    old = start(world["sp_in"], "candidate_partner", candidate="cand")
    sent(world["sp_in"].send(old, "From TBB"))
    api.candidate("cand", "Carla Candidate", source_partner="crs")
    rows = _slots(partner_section(browser(client, api, "cand").page("/portal")))
    assert list(rows) == ["partner", f"partner-{old}"]
    assert rows["partner"][0] is None
    assert rows["partner"][1].startswith("CRS")
    assert rows[f"partner-{old}"][0] == old
    assert "Your earlier source partner" in rows[f"partner-{old}"][1]


def test_the_applied_date_is_in_the_candidates_time_zone(
    client: TestClient, api: Api, world: World
) -> None:
    api.application(
        "app1",
        "job1",
        "cand",
        "offer_accepted",
        stage_owner="emp_team",
        agency_user="agency_user",
        applied_at="2026-01-05T23:30:00Z",
    )
    carla = browser(client, api, "cand")
    assert head(carla.page("/portal"), "app1").endswith("Applied 5 January 2026")
    assert carla.api("PATCH", "/api/v1/me", {"timezone": "Asia/Tokyo"}).status_code == 200
    html = carla.page("/portal")
    assert head(html, "app1").endswith("Applied 6 January 2026")
    assert '<time datetime="2026-01-05T23:30:00+00:00">' in html


def test_applications_come_newest_first_with_the_stage_in_words(
    client: TestClient, api: Api, world: World
) -> None:
    api.job("job2", "Ward Clerk", "acme", team=[], partners=[])
    api.application("app3", "job2", "cand", "cv_review", applied_at="2030-01-01T09:00:00Z")
    html = browser(client, api, "cand").page("/portal")
    assert list(applications(html)) == ["app3", "app1"]
    assert "CV under review" in head(html, "app3")


def test_staff_get_the_not_allowed_page(client: TestClient, api: Api, world: World) -> None:
    for who in ("emp_team", "sp_in", "agency_user"):
        b = browser(client, api, who)
        for path in ("/portal", "/portal/jobs.html"):
            r = b.client.get(path)
            assert r.status_code == 403, (who, path)
            assert "Not allowed" in r.text


def test_the_fragment_redraws_the_counts(client: TestClient, api: Api, world: World) -> None:
    recruiter = start(world["emp_team"], "application", application="app1")
    carla = browser(client, api, "cand")
    page = carla.page("/portal")
    assert 'data-live-src="/portal/jobs.html"' in page
    assert re.search(r'<script src="/static/jobs\.js\?v=[0-9a-f]{12}" defer>', page)
    sent(world["emp_team"].send(recruiter, "New!"))
    fragment = carla.page("/portal/jobs.html")
    assert "<html" not in fragment
    assert applications(fragment)["app1"]["application"][0] == recruiter
    assert '<span class="unread-count" aria-label="1 unread">1</span>' in fragment


def test_user_content_is_escaped(client: TestClient, api: Api, world: World) -> None:
    api.job("job1", f"Nurse {SCRIPT}", "acme", team=["emp_team"], partners=["tbb", "hireco"])
    api.org("tbb", f"TBB {SCRIPT}", "source_partner")
    recruiter = start(world["emp_team"], "application", application="app1")
    sent(world["emp_team"].send(recruiter, f"Body {SCRIPT}"))
    carla = browser(client, api, "cand")
    for path in ("/portal", "/portal/jobs.html"):
        html = carla.page(path)
        assert SCRIPT not in html, path
        assert f"Nurse {ESCAPED}" in html, path
        assert f"Body {ESCAPED}" in html, path
        assert f"TBB {ESCAPED}" in html, path


def test_starting_without_the_csrf_token_changes_nothing(
    client: TestClient, api: Api, world: World, db: Database
) -> None:
    carla = browser(client, api, "cand")
    fields = {"kind": "candidate_partner", "candidate": "cand"}
    assert carla.form("/conversations/start", fields, csrf=False).status_code == 403
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == 0
    assert "Start chat" in partner_section(carla.page("/portal"))
