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

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.realtime.hub import Hub
from tests.support import API_KEY, HIRECO, ROLES, TBB, Api, E, World, build_world
from tests.world_rows import standard_world

# --- the design, with this world --------------------------------------------------------------

CANDIDATES = frozenset({"cand", "cand2"})

# Who can see each context at all (anyone else gets 404 when naming it).
SEES_JOB1 = E | TBB | HIRECO | {"cand", "cand2"}
SEES_APP1 = E | {"cand", "sp_in", "agency_user"}
SEES_CAND = E | {"cand", "sp_in", "agency_user"}


@dataclass(frozen=True)
class Row:
    """One row of the DESIGN table, applied to this world."""

    refs: dict[str, str]  # the context named in POST /conversations
    sees_context: frozenset[str]
    members: frozenset[str]
    may_start: frozenset[str]
    opener: str  # a role that may start it: it creates the conversation for the cell
    second_author: str  # another member, who also posts a message


KINDS: dict[str, Row] = {
    # E, staff of that partner org; either side may start.
    "job_partner": Row(
        refs={"job": "job1", "partner": "tbb"},
        sees_context=SEES_JOB1,
        members=E | TBB,
        may_start=E | TBB,
        opener="emp_team",
        second_author="sp_in",
    ),
    # E, staff of every partner org of the job; E starts.
    "job_partners": Row(
        refs={"job": "job1"},
        sees_context=SEES_JOB1,
        members=E | TBB | HIRECO,
        may_start=E,
        opener="emp_team",
        second_author="agency_user",
    ),
    # ... and the job's candidates at offer_accepted or hired (cand, not cand2); E starts.
    "job_relocation": Row(
        refs={"job": "job1"},
        sees_context=SEES_JOB1,
        members=E | TBB | HIRECO | {"cand"},
        may_start=E,
        opener="emp_team",
        second_author="cand",
    ),
    # The candidate, staff of the candidate's source partner; either may start.
    "candidate_partner": Row(
        refs={"candidate": "cand"},
        sees_context=SEES_CAND,
        members=frozenset({"cand"}) | TBB,
        may_start=frozenset({"cand"}) | TBB,
        opener="sp_in",
        second_author="cand",
    ),
    # The candidate, staff of the candidate's source partner, E; E or the partner starts.
    "case": Row(
        refs={"application": "app1"},
        sees_context=SEES_APP1,
        members=E | TBB | {"cand"},
        may_start=E | TBB,
        opener="emp_team",
        second_author="cand",
    ),
    # E, the candidate; E starts.
    "application": Row(
        refs={"application": "app1"},
        sees_context=SEES_APP1,
        members=E | {"cand"},
        may_start=E,
        opener="emp_team",
        second_author="cand",
    ),
    # E, the application's agency user; either may start.
    "agency": Row(
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
    "agency_private": Row(
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


def refs_for(kind: str, role: str) -> dict[str, str]:
    """What ``role`` names to start ``kind``: agency staff name the stage owner privately."""
    refs = dict(KINDS[kind].refs)
    if kind == "agency_private" and role in HIRECO:
        refs["with_user"] = "emp_team"
    return refs


def start_status(kind: str, role: str) -> int:
    spec = KINDS[kind]
    if role in spec.may_start:
        return 201
    return 403 if role in spec.sees_context else 404


def expected(kind: str, role: str, action: str) -> int:
    member = role in KINDS[kind].members
    if action == "start":
        return start_status(kind, role)
    if action == "start_existing":
        # A non-member gets what starting gives them. The one non-member who may start is
        # emp_admin on agency_private: that opens their own (app1, emp_admin) thread, so 201.
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


# --- the matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "role", "action", "prepared"),
    [
        pytest.param(
            kind, role, action, None if action == "start" else kind, id=f"{kind}-{role}-{action}"
        )
        for kind, role, action in cells()
    ],
)
def test_cell(world: World, thread: Thread | None, kind: str, role: str, action: str) -> None:
    r = act(world, thread, kind, role, action)
    assert r.status_code == expected(kind, role, action), r.text
    if r.status_code in (403, 404):
        assert "error" in r.json(), r.text


@pytest.mark.parametrize(("kind", "prepared"), [pytest.param(k, k, id=k) for k in KINDS])
def test_members_are_the_design(world: World, thread: Thread, kind: str) -> None:
    """The stored members of a new conversation are exactly the table's, in this world."""
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
    assert seen == {threads["job_partners"].id, threads["job_relocation"].id}
    assert not seen & hidden_from_agency_other
    for conversation_id in hidden_from_agency_other:
        r = world["agency_other"].get(f"/api/v1/conversations/{conversation_id}")
        assert r.status_code == 404, r.text
        assert world["agency_other"].messages(conversation_id).status_code == 404

    kinds_cand_sees = {c["kind"] for c in _inbox(world, "cand")}
    assert kinds_cand_sees == {"job_relocation", "candidate_partner", "case", "application"}
    hidden_from_cand = {"agency", "agency_private", "job_partner", "job_partners"}
    assert not kinds_cand_sees & hidden_from_cand
    for kind in hidden_from_cand:
        r = world["cand"].get(f"/api/v1/conversations/{threads[kind].id}")
        assert r.status_code == 404, r.text


# --- the world for one cell: fixtures and the actions --------------------------------------------


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


# Every test gets a fresh database holding the world, and (unless the cell starts it) the
# conversation of its kind, all made through the API. On PostgreSQL, which conftest empties
# between tests, they are made for every test on conftest's app (the world as the rows of the
# run's first build, tests/world_rows.py; the conversation through the API). On SQLite, to keep
# ~600 cells fast, each is built once per module and copied back before every test, behind one
# app (a new app spends tens of milliseconds preparing its routes on first use, a world a third
# of a second).


class Snapshots:
    """SQLite only: one app over a live database file, and saved copies to put back into it."""

    def __init__(self, template: Path, folder: Path) -> None:
        self.folder = folder
        self.live = folder / "live.db"
        shutil.copyfile(template, self.live)
        settings = Settings(
            database_url=f"sqlite:///{self.live}",
            api_key=API_KEY,
            public_url="http://testserver",
            send_rate_per_minute=1_000_000,  # the app outlives a test; rate limits are not tested
            run_worker=False,  # nothing may read the file in the background while it is swapped
            _env_file=None,
        )
        self.db = Database(settings.sqlalchemy_url)
        self.app = create_app(settings, db=self.db, clock=FrozenClock())
        self.client = TestClient(self.app)
        self.world = World(api=Api(self.client))  # built by the fixture, with the client open
        self.files: dict[str | None, Path] = {}
        self.threads: dict[str, Thread] = {}

    def _pause_stream(self) -> None:
        """The app's real-time hub reads the database in the background: stop it while the
        file is swapped (a connection open across the swap sees a torn database)."""
        hub: Hub = self.app.state.hub
        assert self.client.portal is not None
        self.client.portal.call(hub.stop)

    def _resume_stream(self) -> None:
        hub: Hub = self.app.state.hub
        assert self.client.portal is not None
        self.client.portal.call(hub.start)

    def save(self, name: str | None) -> None:
        self._pause_stream()
        with self.db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.dispose()
        self.files[name] = self.folder / f"{name or 'world'}.db"
        shutil.copyfile(self.live, self.files[name])
        self._resume_stream()

    def restore(self, name: str | None) -> None:
        self._pause_stream()
        self.db.dispose()
        for leftover in ("-wal", "-shm"):
            Path(f"{self.live}{leftover}").unlink(missing_ok=True)
        shutil.copyfile(self.files[name], self.live)
        self._resume_stream()


@pytest.fixture(scope="module")
def snapshots(
    _template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Snapshots | None]:
    if os.environ.get("JOBCHAT_TEST_DATABASE_URL"):
        yield None
        return
    snaps = Snapshots(Path(_template), tmp_path_factory.mktemp("worlds"))
    with snaps.client:
        snaps.world = build_world(Api(snaps.client))
        snaps.save(None)
        for kind in KINDS:
            snaps.restore(None)
            snaps.threads[kind] = open_thread(snaps.world, kind)
            snaps.save(kind)
        yield snaps
    snaps.db.dispose()


@pytest.fixture
def prepared() -> str | None:
    """The kind whose conversation the test's world already holds (test_cell parametrizes it)."""
    return None


@pytest.fixture
def world(
    request: pytest.FixtureRequest, snapshots: Snapshots | None, prepared: str | None
) -> World:
    if snapshots is None:
        return standard_world(
            request.getfixturevalue("api"),
            request.getfixturevalue("db"),
            request.getfixturevalue("settings"),
            request.getfixturevalue("clock"),
        )
    snapshots.restore(prepared)
    return snapshots.world


@pytest.fixture
def thread(world: World, snapshots: Snapshots | None, prepared: str | None) -> Thread | None:
    if prepared is None:
        return None
    return open_thread(world, prepared) if snapshots is None else snapshots.threads[prepared]


def someone_elses_message(thread: Thread, role: str) -> int:
    return next(mid for author, mid in thread.message_by.items() if author != role)


def act(world: World, thread: Thread | None, kind: str, role: str, action: str) -> httpx.Response:
    """Perform ``action`` as ``role`` and return the response whose status is the cell."""
    me = world[role]
    if action == "start":
        assert thread is None
        r = me.start(kind, **refs_for(kind, role))
        if r.status_code == 201:
            assert r.json()["kind"] == kind
            assert role in {m["id"] for m in r.json()["members"]}
        return r

    assert thread is not None
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
            # Only an employer user starting agency_private (their own thread) may get here.
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
