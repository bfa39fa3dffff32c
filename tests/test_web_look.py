"""How the pages name things and what the inbox rows and the frame show, read in-process:
conversation titles from the reader's side for every kind, inbox rows, empty states with a next
step, the frame's account menu and shortcut list, avatars, the plain pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient

from jobchat.conversations.models import Kind, Status
from jobchat.conversations.schemas import ConversationOut, Names
from jobchat.directory.models import Organization, OrgKind, User, UserKind
from jobchat.web.labels import ConversationLabel, conversation_label, conversation_title, initials
from jobchat.web.labels import tone as avatar_tone
from tests.support import Api, World, body, start
from tests.web_support import Browser

# --- titles, as a unit: every kind, every reader ----------------------------------------------

NAMES = Names(
    job_title="Registered Nurse",
    employer="Acme Health",
    candidate_id=7,
    candidate="Carla Candidate",
    partner="Talent Beyond Boundaries",
    employer_user="Tess Team",
    agency_user="Aggie Agent",
)
TBB = Organization(name="Talent Beyond Boundaries", kind=OrgKind.source_partner)
READERS = {
    "candidate": User(id=7, kind=UserKind.candidate, name="Carla Candidate", source_partner=TBB),
    "employer": User(
        id=1,
        kind=UserKind.staff,
        name="Tess Team",
        organization=Organization(name="Acme Health", kind=OrgKind.employer),
    ),
    "partner": User(id=2, kind=UserKind.staff, name="Sam Partner", organization=TBB),
    "agency": User(
        id=3,
        kind=UserKind.staff,
        name="Aggie Agent",
        organization=Organization(name="HireCo Recruiting", kind=OrgKind.agency),
    ),
}


def conversation(kind: Kind, names: Names = NAMES) -> ConversationOut:
    at = datetime(2026, 5, 1, tzinfo=UTC)
    c = ConversationOut(
        id=1,
        kind=kind,
        title="the API's title",
        status=Status.open,
        members=[],
        unread_count=0,
        last_read_message_id=0,
        created_at=at,
        updated_at=at,
    )
    c._names = names
    return c


# (kind, reader) → (title, who, kind chip): the reader's side of every conversation they can be in
# (DESIGN.md's table of kinds and members).
ACME, CARLA, RN, PARTNER = "Acme Health", "Carla Candidate", "Registered Nurse", TBB.name
TITLES: list[tuple[Kind, str, str, str, str]] = [
    (Kind.job_partner, "employer", f"{PARTNER} · {RN}", PARTNER, "Job partner"),
    (Kind.job_partner, "partner", f"Acme Health · {RN}", ACME, "Employer"),
    (Kind.job_partner, "agency", f"Acme Health · {RN}", ACME, "Employer"),
    (Kind.job_partners, "employer", f"Job partners · {RN}", "All partners", "Job partners"),
    (Kind.job_partners, "partner", f"Job partners · {RN}", f"{ACME} and partners", "Job partners"),
    (Kind.job_relocation, "employer", f"Relocation · {RN}", "Partners and new hires", "Relocation"),
    (Kind.job_relocation, "partner", f"Relocation · {RN}", f"{ACME} and new hires", "Relocation"),
    (Kind.job_relocation, "candidate", f"Relocation · {RN}", ACME, "Relocation"),
    (Kind.candidate_partner, "candidate", PARTNER, PARTNER, "Source partner"),
    (Kind.candidate_partner, "partner", CARLA, CARLA, "Direct"),
    (Kind.case, "employer", f"Case chat · {CARLA} · {RN}", CARLA, "Case chat"),
    (Kind.case, "partner", f"Case chat · {CARLA} · {RN}", CARLA, "Case chat"),
    (Kind.case, "candidate", f"Case chat · {RN}", f"{PARTNER} and {ACME}", "Case chat"),
    (Kind.application, "employer", f"{CARLA} · {RN}", CARLA, "Application"),
    (Kind.application, "candidate", f"Acme Health · {RN}", ACME, "Hiring team"),
    (Kind.agency, "employer", f"Agency · {CARLA} · {RN}", "Aggie Agent", "Agency"),
    (Kind.agency, "agency", f"Hiring team · {CARLA} · {RN}", "Hiring team", "Agency"),
    (Kind.agency_private, "employer", f"Private · Aggie Agent · {CARLA}", "Aggie Agent", "Private"),
    (Kind.agency_private, "agency", f"Private · Tess Team · {CARLA}", "Tess Team", "Private"),
]


@pytest.mark.parametrize(
    ("kind", "reader", "title", "who", "chip"),
    TITLES,
    ids=[f"{kind.value}-{reader}" for kind, reader, *_ in TITLES],
)
def test_every_kind_is_named_from_the_readers_side(
    kind: Kind, reader: str, title: str, who: str, chip: str
) -> None:
    label = conversation_label(conversation(kind), READERS[reader])
    assert (label.title, label.who, label.kind) == (title, who, chip)
    assert conversation_title(conversation(kind), READERS[reader]) == title


def test_every_kind_has_a_reader_in_the_table() -> None:
    assert {kind for kind, *_ in TITLES} == set(Kind)


def test_nobody_reads_their_own_side_as_the_other_one() -> None:
    for kind, reader, *_ in TITLES:
        me = READERS[reader]
        label = conversation_label(conversation(kind), me)
        assert label.who != me.name
        if me.organization is not None:
            assert me.organization.name not in label.title
    # The agency user reads "Hiring team", never HireCo twice.
    agency = conversation_label(conversation(Kind.agency), READERS["agency"])
    assert "HireCo" not in agency.title and agency.who == "Hiring team"


def test_a_candidate_never_reads_internal_words() -> None:
    internal = re.compile(r"agency|partners|application|direct|private", re.IGNORECASE)
    for kind, reader, *_ in TITLES:
        if reader == "candidate":
            label = conversation_label(conversation(kind), READERS["candidate"])
            assert not internal.search(f"{label.title} {label.who} {label.kind} {label.about}")


def test_conversations_about_the_same_job_read_differently() -> None:
    """The inbox's problem: rows that truncated to the same text. Who and kind tell them apart."""
    staff: list[ConversationLabel] = [
        conversation_label(conversation(kind), READERS["employer"])
        for kind in Kind
        if kind is not Kind.candidate_partner
    ]
    assert len({(label.who, label.kind) for label in staff}) == len(staff)


def test_missing_names_still_read_as_words() -> None:
    bare = Names(candidate_id=None)
    for kind in Kind:
        for me in READERS.values():
            label = conversation_label(conversation(kind, bare), me)
            assert label.who and label.title and "None" not in label.title


def test_initials_and_their_colour_follow_the_name() -> None:
    assert initials("Omar Al-Sayed") == "OA"
    assert initials("Talent Beyond Boundaries") == "TB"
    assert initials("CRS") == "C"
    assert initials("  ") == "?"
    assert initials("lucía fernández") == "LF"
    # The same name keeps its colour (crc32, not Python's salted hash); names spread over tones.
    assert avatar_tone("Omar Al-Sayed") == avatar_tone("Omar Al-Sayed") == 7
    tones = {avatar_tone(name) for name in ("Ada", "Bea", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal")}
    assert len(tones) >= 4


# --- the pages --------------------------------------------------------------------------------


@pytest.fixture
def chats(world: World) -> dict[str, int]:
    """One conversation of every kind around job1 / app1 / cand."""
    tess, sam, aggie = world["emp_team"], world["sp_in"], world["agency_user"]
    return {
        "application": start(tess, "application", application="app1"),
        "case": start(tess, "case", application="app1"),
        "agency": start(tess, "agency", application="app1"),
        "agency_private": start(aggie, "agency_private", application="app1", with_user="emp_team"),
        "job_partner": start(tess, "job_partner", job="job1", partner="tbb"),
        "job_partners": start(tess, "job_partners", job="job1"),
        "job_relocation": start(tess, "job_relocation", job="job1"),
        "candidate_partner": start(sam, "candidate_partner", candidate="cand"),
    }


def rows(html: str) -> dict[int, dict[str, str]]:
    """Each inbox row's parts, by conversation id."""
    found: dict[int, dict[str, str]] = {}
    for conv_id, row in re.findall(r'data-conversation="(\d+)">(.*?)</li>', html, re.S):
        parts = {
            name: " ".join(unescape(re.sub(r"<[^>]+>", " ", m.group(1))).split())
            for name in ("row-who", "kind-chip", "row-context", "row-preview", "unread-count")
            if (m := re.search(rf'class="{name}"[^>]*>(.*?)</span>', row, re.S))
        }
        # The link's name: its content (no aria-labelledby, which would leave out visible text
        # voice control users say), the decorative initials aside.
        link = re.search(r'<a href="/conversations/\d+" class="row-link">(.*?)</a>', row, re.S)
        assert link is not None, row
        shown = re.sub(
            r'<span class="avatar[^"]*" aria-hidden="true">[^<]*</span>', "", link.group(1)
        )
        parts["name"] = " ".join(unescape(re.sub(r"<[^>]+>", " ", shown)).split())
        parts["avatar"] = " ".join(
            re.findall(r'class="avatar avatar-40 tone-\d" aria-hidden="true">([^<]*)<', row)
        )
        parts["ended"] = "yes" if 'class="tag">Ended<' in row else "no"
        found[int(conv_id)] = parts
    return found


def named(row: dict[str, str], who: str, about: str) -> bool:
    """The row link's name starts with who (then the time) and goes on with the kind and job."""
    return bool(re.match(rf"{re.escape(who)} \S.*? {re.escape(about)}( |$)", row["name"]))


def test_inbox_rows_name_the_other_side_the_kind_and_the_job(
    client: TestClient, api: Api, world: World, chats: dict[str, int]
) -> None:
    tess = Browser.signed_in(client, api, "emp_team")
    seen = rows(tess.page("/inbox"))
    assert named(seen[chats["case"]], "Carla Candidate", "Case chat Registered Nurse")
    assert seen[chats["agency"]]["row-who"] == "Aggie Agent"
    assert seen[chats["agency"]]["kind-chip"] == "Agency"
    assert seen[chats["agency"]]["row-context"] == "Carla Candidate · Registered Nurse"
    assert seen[chats["job_partner"]]["row-who"] == "Talent Beyond Boundaries"
    assert seen[chats["job_partner"]]["avatar"] == "TB"
    assert seen[chats["application"]]["avatar"] == "CC"
    # Every row tells itself apart by who and kind alone.
    assert len({(r["row-who"], r["kind-chip"]) for r in seen.values()}) == len(seen)

    aggie = rows(Browser.signed_in(client, api, "agency_user").page("/inbox"))
    assert named(aggie[chats["agency"]], "Hiring team", "Agency Carla Candidate · Registered Nurse")
    assert aggie[chats["agency_private"]]["row-who"] == "Tess Team"

    carla = rows(Browser.signed_in(client, api, "cand").page("/inbox"))
    assert set(carla) == {
        chats[k] for k in ("application", "case", "job_relocation", "candidate_partner")
    }
    assert named(carla[chats["application"]], "Acme Health", "Hiring team Registered Nurse")
    assert carla[chats["application"]]["kind-chip"] == "Hiring team"
    assert named(
        carla[chats["candidate_partner"]],
        "Talent Beyond Boundaries",
        "Source partner Your caseworkers",
    )


def test_inbox_rows_show_the_last_message_its_author_unread_count_and_ended_tag(
    client: TestClient, api: Api, world: World, chats: dict[str, int]
) -> None:
    tess, carla = world["emp_team"], world["cand"]
    body(tess.send(chats["application"], "Are you free on Friday?"), 201)
    body(carla.send(chats["case"], "Thank you, I will be there."), 201)
    body(carla.send(chats["case"], "See you then."), 201)
    body(tess.post(f"/api/v1/conversations/{chats['application']}/end"), 200)

    seen = rows(Browser.signed_in(client, api, "emp_team").page("/inbox"))
    application, case = seen[chats["application"]], seen[chats["case"]]
    assert application["row-preview"] == "You: Are you free on Friday?"
    assert (application["ended"], "unread-count" in application) == ("yes", False)
    assert case["row-preview"] == "Carla Candidate: See you then."
    assert (case["unread-count"], case["ended"]) == ("2", "no")
    assert seen[chats["job_partners"]]["row-preview"] == "No messages yet"
    # The live redraw serves the same rows.
    fragment = rows(Browser.signed_in(client, api, "emp_team").page("/inbox/list.html"))
    assert fragment == seen


@pytest.mark.parametrize(
    ("who", "params", "says", "action", "href"),
    [
        ("emp_team", {}, "No conversations yet.", "Find a candidate", "/candidates"),
        ("cand", {}, "No conversations yet.", "See your jobs", "/portal"),
        (
            "emp_team",
            {"filter": "unread"},
            "You are all caught up.",
            "See all conversations",
            "/inbox",
        ),
        (
            "emp_team",
            {"filter": "ended"},
            "No ended conversations.",
            "See all conversations",
            "/inbox",
        ),
        ("emp_team", {"q": "zebra"}, "No conversations match “zebra”.", "Clear search", "/inbox"),
        (
            "emp_team",
            {"q": "zebra", "filter": "unread"},
            "No conversations match “zebra”.",
            "Clear search",
            "/inbox?filter=unread",
        ),
    ],
)
def test_empty_inbox_says_what_to_do_next(
    client: TestClient,
    api: Api,
    world: World,
    who: str,
    params: dict[str, str],
    says: str,
    action: str,
    href: str,
) -> None:
    response = Browser.signed_in(client, api, who).client.get("/inbox", params=params)
    assert response.status_code == 200
    html = response.text
    state = re.search(r'<div class="empty-state">(.*?)</div>', html, re.S)
    assert state is not None, html
    assert f'<p class="empty-title">{says}</p>' in unescape(state.group(1))
    assert f'<a class="button" href="{href}">{action}</a>' in state.group(1)


def test_the_frame_has_an_account_menu_a_shortcut_list_and_marks_the_current_tab(
    client: TestClient, api: Api, world: World
) -> None:
    html = Browser.signed_in(client, api, "agency_user").page("/inbox")
    assert re.search(r'<script src="/static/keys\.js\?v=[0-9a-f]{12}" defer></script>', html)
    menu = re.search(r'<details class="whoami">(.*?)</details>', html, re.S)
    assert menu is not None
    assert "aria-label" not in menu.group(1).split("</summary>")[0]
    assert (
        '<span class="visually-hidden">Account: </span><span class="whoami-short">Aggie Agent<'
        in (menu.group(1))
    )
    assert 'class="avatar avatar-32 tone-' in menu.group(1) and ">AA</span>" in menu.group(1)
    assert "HireCo Recruiting" in menu.group(1)
    assert re.search(
        r'<form method="post" action="/logout">\s*<input type="hidden" name="csrf"', menu.group(1)
    )
    dialog = re.search(
        r'<dialog id="shortcuts"[^>]*aria-labelledby="shortcuts-title">(.*?)</dialog>', html, re.S
    )
    assert dialog is not None and "Go to candidates" in dialog.group(1)
    nav = re.search(r'<nav aria-label="Main" class="mainnav">(.*?)</nav>', html, re.S)
    assert nav is not None
    assert re.findall(r'<a href="(/[a-z]+)" aria-current="page">', nav.group(1)) == ["/inbox"]
    # A candidate has no candidates page to go to.
    carla = Browser.signed_in(client, api, "cand").page("/portal")
    assert "Go to candidates" not in carla


def test_plain_pages_share_the_look(client: TestClient, api: Api, world: World) -> None:
    tess = Browser.signed_in(client, api, "emp_team")
    html = tess.page("/conversations/999999", status=404)
    assert '<main id="main" class="plain-main">' in html
    assert re.search(r'<link rel="stylesheet" href="/static/app\.css\?v=[0-9a-f]{12}">', html)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert re.search(r'<a class="button" href="[^"]+">Go back</a>', html)


def test_the_stylesheet_has_both_themes_and_reduced_motion(client: TestClient) -> None:
    css = client.get("/static/app.css").text
    assert "color-scheme: light dark" in css
    light, dark = css.split("@media (prefers-color-scheme: dark)")[:2]
    colour = r"(--[a-z0-9-]+):\s*(?:#|rgb)"
    tokens = set(re.findall(colour, light))
    dark_tokens = set(re.findall(colour, dark.split("\n}\n")[0]))
    # Every colour token has a dark value.
    assert tokens and tokens == dark_tokens
    # Outside :root's tokens, no colour is written as a literal.
    rules = re.sub(r":root\s*\{.*?\n\}", "", css, flags=re.S)
    assert re.findall(r"#[0-9a-fA-F]{3,8}\b|rgba?\(", rules) == []
    motion = css.split("@media (prefers-reduced-motion: reduce)")[1]
    assert "transition-duration: .01ms" in motion and "animation-duration: .01ms" in motion


def test_an_empty_portal_says_what_happens_next(client: TestClient, api: Api, world: World) -> None:
    api.candidate("cand-new", "Nia New")
    html = Browser.signed_in(client, api, "cand-new").page("/portal")
    states = re.findall(r'<div class="empty-state">(.*?)</div>', html, re.S)
    assert len(states) == 2
    assert "You have no applications yet." in states[0]
    assert '<a class="button" href="/inbox">Open your inbox</a>' in states[0]
    assert "You are not working with a source partner." in states[1]
