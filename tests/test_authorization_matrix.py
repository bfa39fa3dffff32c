"""The authorization matrix: every conversation kind x every role x every action, from DESIGN.md.

The expectations below are written from the table "Conversation kinds and who is in them" in
DESIGN.md, applied to the cast ``tests.support.build_world`` makes (see ``World``), and from the
error rules in CONTRACT.md. They are data, not code under test: if a cell fails, the code
disagrees with the design.

With this world:

- E (employer staff with access to job1) is the job's team [emp_team] and acme's admins
  [emp_admin]; emp_other (acme, off the team) is not in E.
- job1's partner organisations are tbb (sp_in) and hireco (agency_user, agency_other).
- app1 is cand's application (offer_accepted, stage owner emp_team, agency user agency_user);
  cand's source partner is tbb. cand2 is at interview on job1 (app2).

Actions and what each answers:

- read: ``GET /conversations/{id}`` and ``GET /conversations/{id}/messages``. 200 for members,
  404 for everyone else (never 403).
- post: ``POST /conversations/{id}/messages``. 201 for members, 404 for everyone else.
- start: ``POST /conversations`` before the conversation exists. 201 for a role that may start
  it, 404 for a role that cannot see the context (job1, app1 or cand), 403 for one that can see
  it but may not start this kind.
- start_existing: the same once it exists. A member reaches it (200, same id); anyone else gets
  what ``start`` gives them (so an employer user starting agency_private opens their own thread).
- end: ``POST /conversations/{id}/end``. 200 for staff members of a kind with exactly one
  candidate; 403 for other members (a candidate, or a kind with several or no candidates); 404
  for non-members.
- delete: ``DELETE /messages/{id}?for=everyone`` on another member's message. 403 for members
  (only the author may), 404 for non-members.
- delete_own: ``for=everyone`` on the actor's own message. 204 (members only: others cannot post).
- delete_for_me: ``for=me`` on another member's message. 204 for members, 404 for non-members.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.support import ROLES, World

# --- the design, with this world --------------------------------------------------------------

E = frozenset({"emp_admin", "emp_team"})
TBB_STAFF = frozenset({"sp_in"})  # cand's source partner, a partner of job1
HIRECO_STAFF = frozenset({"agency_user", "agency_other"})  # agency partner of job1
CANDIDATES = frozenset({"cand", "cand2"})

# Who can see each context at all (anyone else gets 404 when naming it).
SEES_JOB1 = E | TBB_STAFF | HIRECO_STAFF | {"cand", "cand2"}
SEES_APP1 = E | {"cand", "sp_in", "agency_user"}
SEES_CAND = E | {"cand", "sp_in", "agency_user"}


@dataclass(frozen=True)
class Kind:
    """One row of the DESIGN table, applied to this world."""

    refs: dict[str, str]  # the context named in POST /conversations
    sees_context: frozenset[str]
    members: frozenset[str]
    may_start: frozenset[str]
    opener: str  # a role that may start it: it creates the conversation for the cell
    second_author: str  # another member, who also posts a message


KINDS: dict[str, Kind] = {
    # E, staff of that partner org; either side may start.
    "job_partner": Kind(
        refs={"job": "job1", "partner": "tbb"},
        sees_context=SEES_JOB1,
        members=E | TBB_STAFF,
        may_start=E | TBB_STAFF,
        opener="emp_team",
        second_author="sp_in",
    ),
    # E, staff of every partner org of the job; E starts.
    "job_partners": Kind(
        refs={"job": "job1"},
        sees_context=SEES_JOB1,
        members=E | TBB_STAFF | HIRECO_STAFF,
        may_start=E,
        opener="emp_team",
        second_author="agency_user",
    ),
    # ... and the job's candidates at offer_accepted or hired (cand, not cand2); E starts.
    "job_relocation": Kind(
        refs={"job": "job1"},
        sees_context=SEES_JOB1,
        members=E | TBB_STAFF | HIRECO_STAFF | {"cand"},
        may_start=E,
        opener="emp_team",
        second_author="cand",
    ),
    # The candidate, staff of the candidate's source partner; either may start.
    "candidate_partner": Kind(
        refs={"candidate": "cand"},
        sees_context=SEES_CAND,
        members=frozenset({"cand"}) | TBB_STAFF,
        may_start=frozenset({"cand"}) | TBB_STAFF,
        opener="sp_in",
        second_author="cand",
    ),
    # The candidate, staff of the candidate's source partner, E; E or the partner starts.
    "case": Kind(
        refs={"application": "app1"},
        sees_context=SEES_APP1,
        members=E | TBB_STAFF | {"cand"},
        may_start=E | TBB_STAFF,
        opener="emp_team",
        second_author="cand",
    ),
    # E, the candidate; E starts.
    "application": Kind(
        refs={"application": "app1"},
        sees_context=SEES_APP1,
        members=E | {"cand"},
        may_start=E,
        opener="emp_team",
        second_author="cand",
    ),
    # E, the application's agency user; either may start.
    "agency": Kind(
        refs={"application": "app1"},
        sees_context=SEES_APP1,
        members=E | {"agency_user"},
        may_start=E | {"agency_user"},
        opener="emp_team",
        second_author="agency_user",
    ),
    # That employer user (here emp_team, the stage owner) and the agency user. An employer user
    # who starts one is that thread's employer user (so emp_admin opens (app1, emp_admin,
    # agency_user)); the agency user may open it with the stage owner.
    "agency_private": Kind(
        refs={"application": "app1"},
        sees_context=SEES_APP1,
        members=frozenset({"emp_team", "agency_user"}),
        may_start=E | {"agency_user"},
        opener="emp_team",
        second_author="agency_user",
    ),
}

ONE_CANDIDATE_KINDS = frozenset({"candidate_partner", "case", "application"})

ACTIONS = (
    "read",
    "post",
    "start",
    "start_existing",
    "end",
    "delete",
    "delete_own",
    "delete_for_me",
)

# Cells where the rule below is not the whole story: (kind, role, action) -> status.
OVERRIDES: dict[tuple[str, str, str], int] = {}


def refs_for(kind: str, role: str) -> dict[str, str]:
    """What ``role`` names to start ``kind``: agency staff name the stage owner privately."""
    refs = dict(KINDS[kind].refs)
    if kind == "agency_private" and role in HIRECO_STAFF:
        refs["with_user"] = "emp_team"
    return refs


def start_status(kind: str, role: str) -> int:
    spec = KINDS[kind]
    if role in spec.may_start:
        return 201
    return 403 if role in spec.sees_context else 404


def expected(kind: str, role: str, action: str) -> int:
    if (kind, role, action) in OVERRIDES:
        return OVERRIDES[kind, role, action]
    member = role in KINDS[kind].members
    if action == "start":
        return start_status(kind, role)
    if action == "start_existing":
        return 200 if member else start_status(kind, role)
    if not member:
        return 404
    if action == "read":
        return 200
    if action == "post":
        return 201
    if action == "end":
        return 200 if role not in CANDIDATES and kind in ONE_CANDIDATE_KINDS else 403
    if action == "delete":
        return 403
    assert action in ("delete_own", "delete_for_me")
    return 204


def cells() -> list[tuple[str, str, str]]:
    return [
        (kind, role, action)
        for kind in KINDS
        for role in ROLES
        for action in ACTIONS
        # Only a member has a message of their own to delete.
        if action != "delete_own" or role in KINDS[kind].members
    ]


# --- the world for one cell --------------------------------------------------------------------


@dataclass
class Thread:
    id: int
    message_by: dict[str, int]  # role -> id of a message they wrote


def open_thread(world: World, kind: str) -> Thread:
    """Create the conversation of ``kind`` as its opener; opener and second author each post."""
    spec = KINDS[kind]
    r = world[spec.opener].start(kind, **refs_for(kind, spec.opener))
    assert r.status_code == 201, r.text
    thread = Thread(id=r.json()["id"], message_by={})
    for author in (spec.opener, spec.second_author):
        r = world[author].send(thread.id, f"Hello from {author}")
        assert r.status_code == 201, r.text
        thread.message_by[author] = r.json()["id"]
    return thread


def someone_elses_message(thread: Thread, role: str) -> int:
    return next(mid for author, mid in thread.message_by.items() if author != role)


def act(world: World, kind: str, role: str, action: str) -> httpx.Response:
    """Perform ``action`` as ``role`` and return the response whose status is the cell."""
    me = world[role]
    if action == "start":
        return me.start(kind, **refs_for(kind, role))

    thread = open_thread(world, kind)
    if action == "read":
        r = me.get(f"/api/v1/conversations/{thread.id}")
        messages = me.messages(thread.id)
        assert messages.status_code == r.status_code, messages.text
        return r
    if action == "post":
        return me.send(thread.id, "A word from " + role)
    if action == "start_existing":
        r = me.start(kind, **refs_for(kind, role))
        if r.status_code == 200:
            assert r.json()["id"] == thread.id
        if r.status_code == 201:
            assert r.json()["id"] != thread.id, "a non-member reached an existing conversation"
        return r
    if action == "end":
        return me.post(f"/api/v1/conversations/{thread.id}/end")
    if action == "delete":
        return _delete(world, role, someone_elses_message(thread, role), "everyone")
    if action == "delete_own":
        mine = thread.message_by.get(role)
        if mine is None:
            r = me.send(thread.id, "Mine to delete")
            assert r.status_code == 201, r.text
            mine = r.json()["id"]
        return _delete(world, role, mine, "everyone")
    assert action == "delete_for_me"
    return _delete(world, role, someone_elses_message(thread, role), "me")


def _delete(world: World, role: str, message_id: int, for_: str) -> httpx.Response:
    return world[role].delete(f"/api/v1/messages/{message_id}", **{"for": for_})


# --- the matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "role", "action"), [pytest.param(*c, id="-".join(c)) for c in cells()]
)
def test_cell(world: World, kind: str, role: str, action: str) -> None:
    r = act(world, kind, role, action)
    assert r.status_code == expected(kind, role, action), r.text
    if r.status_code in (403, 404):
        assert "error" in r.json(), r.text


@pytest.mark.parametrize("kind", list(KINDS))
def test_members_are_the_design(world: World, kind: str) -> None:
    """The stored members of a new conversation are exactly the table's, in this world."""
    thread = open_thread(world, kind)
    r = world[KINDS[kind].opener].get(f"/api/v1/conversations/{thread.id}")
    assert r.status_code == 200, r.text
    assert {m["id"] for m in r.json()["members"]} == KINDS[kind].members


# --- the privacy promise, directly -------------------------------------------------------------


def _inbox(world: World, role: str) -> list[dict[str, object]]:
    r = world[role].inbox(limit=200)
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    return items


def test_agency_and_candidate_never_see_private_threads(world: World) -> None:
    threads = {kind: open_thread(world, kind) for kind in KINDS}
    # A second private thread on app1: emp_admin with the agency user.
    r = world["emp_admin"].start("agency_private", application="app1")
    assert r.status_code == 201, r.text
    admin_private = r.json()["id"]
    assert world["emp_admin"].send(admin_private, "Between us").status_code == 201

    hidden_from_agency_other = {
        threads["agency"].id,
        threads["agency_private"].id,
        admin_private,
    }
    seen = {c["id"] for c in _inbox(world, "agency_other")}
    assert not seen & hidden_from_agency_other
    for conversation_id in hidden_from_agency_other:
        r = world["agency_other"].get(f"/api/v1/conversations/{conversation_id}")
        assert r.status_code == 404, r.text
        assert world["agency_other"].messages(conversation_id).status_code == 404

    kinds_cand_sees = {c["kind"] for c in _inbox(world, "cand")}
    assert kinds_cand_sees == {"job_relocation", "candidate_partner", "case", "application"}
    assert not kinds_cand_sees & {"agency", "agency_private", "job_partner", "job_partners"}
