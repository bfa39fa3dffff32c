"""Invariants that must hold after any sequence of changes, checked after random walks.

- The stored members of every conversation are exactly who the rules in DESIGN.md say.
- Every member's kept unread count equals an exact recount over the messages.
- Every member row carries its conversation's last activity time (the inbox index relies on it).
- Every user's badge totals (kept on their row) equal the count and the sum of their member
  rows' unread counts, and GET /api/v1/unread answers them.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobchat.access import access_conversation
from jobchat.clock import FrozenClock
from jobchat.conversations.membership import expected_member_ids
from jobchat.conversations.models import Conversation, Member
from jobchat.conversations.unread import change, shift_totals
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.messages.actions import Limits, Outgoing, do_send_message
from jobchat.messages.queries import count_unread
from tests.support import ROLES, World, start, user_id

STAGES = [
    "prospect",
    "applied",
    "screening",
    "cv_review",
    "interview",
    "offer",
    "offer_accepted",
    "hired",
    "rejected",
    "withdrawn",
]
ACTIONS = [
    "stage",
    "team",
    "partners",
    "source",
    "role",
    "send",
    "send",
    "send",
    "read",
    "read_up_to",
    "delete",
]
STARTS = [
    ("emp_admin", "job_partner", {"job": "job1", "partner": "tbb"}),
    ("emp_admin", "job_partner", {"job": "job1", "partner": "hireco"}),
    ("emp_admin", "job_partners", {"job": "job1"}),
    ("emp_admin", "job_relocation", {"job": "job1"}),
    ("cand", "candidate_partner", {"candidate": "cand"}),
    ("emp_admin", "case", {"application": "app1"}),
    ("emp_admin", "application", {"application": "app1"}),
    ("emp_admin", "application", {"application": "app2"}),
    ("emp_admin", "agency", {"application": "app1"}),
    ("emp_admin", "agency_private", {"application": "app1"}),
]


def check_invariants(db: Database) -> None:
    with db.read() as session:
        for conv in session.scalars(select(Conversation)):
            stored = {m.user_id for m in conv.members}
            assert stored == expected_member_ids(session, conv), f"members of {conv.context_key}"
            for member in conv.members:
                exact = count_unread(session, conv.id, member.user_id, member.last_read_message_id)
                assert member.unread_count == exact, (conv.context_key, member.user_id)
                assert member.last_activity_at == conv.last_activity_at
        check_unread_totals(session)


def check_unread_totals(session: Session) -> None:
    """Each user's kept totals equal the aggregate over their member rows."""
    summed = {
        user_id: (int(convs), int(msgs))
        for user_id, convs, msgs in session.execute(
            select(Member.user_id, func.count(), func.sum(Member.unread_count))
            .where(Member.unread_count > 0)
            .group_by(Member.user_id)
        )
    }
    for user in session.scalars(select(User)):
        kept = (user.unread_conversations, user.unread_messages)
        assert kept == summed.get(user.id, (0, 0)), (user.ext_id, kept, summed.get(user.id))


def check_badges(world: World) -> None:
    """GET /api/v1/unread answers the kept totals, which equal the inbox's own counts."""
    for role in ROLES:
        badge = world[role].get("/api/v1/unread").json()
        items = world[role].inbox(limit=200).json()["items"]
        counts = [c["unread_count"] for c in items if c["unread_count"] > 0]
        assert badge == {"conversations": len(counts), "messages": sum(counts)}, role


@pytest.mark.slow  # ~8 s each on the 2-core machine
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walk_keeps_invariants(
    world: World, db: Database, clock: FrozenClock, seed: int
) -> None:
    """Random ATS changes, sends, reads and deletes never break the invariants."""
    rng = random.Random(seed)
    api = world.api
    conversations: list[int] = []
    for role, kind, refs in STARTS:
        r = world[role].start(kind, **refs)
        assert r.status_code in (200, 201), r.text
        conversations.append(r.json()["id"])
    messages: list[tuple[str, int]] = []

    def member_roles(conv_id: int) -> list[str]:
        # In the world, each role's external id is the role's name.
        with db.read() as session:
            return sorted(
                session.scalars(
                    select(User.ext_id)
                    .join(Member, Member.user_id == User.id)
                    .where(Member.conversation_id == conv_id)
                )
            )

    for _step in range(60):
        clock.advance(seconds=rng.randint(1, 90))
        action = rng.choice(ACTIONS)
        if action == "stage":
            app, cand = rng.choice([("app1", "cand"), ("app2", "cand2")])
            api.application(app, "job1", cand, rng.choice(STAGES))
        elif action == "team":
            team = rng.sample(["emp_team", "emp_other", "emp_admin"], k=rng.randint(0, 2))
            api.job("job1", "Registered Nurse", "acme", team=team)
        elif action == "partners":
            partners = rng.sample(["tbb", "crs", "hireco"], k=rng.randint(0, 3))
            api.job("job1", "Registered Nurse", "acme", partners=partners)
        elif action == "source":
            api.candidate(
                "cand", "Carla Candidate", source_partner=rng.choice(["tbb", "crs", None])
            )
        elif action == "role":
            api.staff("emp_other", "Otto Other", "acme", role=rng.choice(["admin", "member"]))
        elif action == "send":
            conv_id = rng.choice(conversations)
            roles = member_roles(conv_id)
            if roles:
                role = rng.choice(roles)
                r = world[role].send(conv_id, f"step {_step}")
                if r.status_code == 201:
                    messages.append((role, r.json()["id"]))
                else:
                    assert r.json()["error"]["code"] == "conversation_ended"
        elif action == "read":
            conv_id = rng.choice(conversations)
            roles = member_roles(conv_id)
            if roles:
                world[rng.choice(roles)].post(f"/api/v1/conversations/{conv_id}/read")
        elif action == "read_up_to" and messages:
            # Up to a random message: of any conversation, so also a 422 now and then.
            _, up_to = rng.choice(messages)
            conv_id = rng.choice(conversations)
            roles = member_roles(conv_id)
            if roles:
                r = world[rng.choice(roles)].post(
                    f"/api/v1/conversations/{conv_id}/read", {"up_to": up_to}
                )
                assert r.status_code in (200, 422), r.text
        elif action == "delete" and messages:
            author, message_id = rng.choice(messages)
            if rng.random() < 0.5:
                world[author].delete(f"/api/v1/messages/{message_id}", **{"for": "everyone"})
            else:
                role = rng.choice(ROLES)
                world[role].delete(f"/api/v1/messages/{message_id}", **{"for": "me"})
        check_invariants(db)
    check_badges(world)


def test_unread_totals_follow_every_kind_of_change(
    world: World, db: Database, clock: FrozenClock
) -> None:
    """The kept totals after each kind of change of an unread count: sends (with the writer's
    own unread cleared), reads, reads up to a message, deletes for me and for everyone, members
    removed with something unread, members added."""
    api = world.api

    def check(label: str) -> None:
        clock.advance(seconds=5)
        with db.read() as session:
            try:
                check_unread_totals(session)
            except AssertionError as exc:
                raise AssertionError(f"after {label}: {exc}") from None
        check_badges(world)

    def sent_id(role: str, conv_id: int, text: str) -> int:
        r = world[role].send(conv_id, text)
        assert r.status_code == 201, r.text
        message_id: int = r.json()["id"]
        return message_id

    case = world["emp_admin"].start("case", application="app1").json()["id"]
    partners = world["emp_admin"].start("job_partners", job="job1").json()["id"]
    check("starting conversations")
    first = sent_id("emp_admin", case, "one")
    sent_id("emp_admin", case, "two")
    sent_id("emp_admin", partners, "to the partners")
    check("sends")
    reply = sent_id("cand", case, "a reply")
    check("a send by someone with unread messages (marks them read)")
    sent_id("emp_team", case, "three")
    check("a send by someone with unread messages in several conversations")
    world["sp_in"].post(f"/api/v1/conversations/{case}/read", {"up_to": first})
    check("a read up to a message")
    world["sp_in"].post(f"/api/v1/conversations/{case}/read", {"up_to": first})
    check("a read up to the same message again")
    world["agency_user"].post(f"/api/v1/conversations/{partners}/read")
    check("a read")
    world["sp_in"].delete(f"/api/v1/messages/{reply}", **{"for": "me"})
    check("a delete for me of an unread message")
    world["emp_admin"].delete(f"/api/v1/messages/{first}", **{"for": "me"})
    check("a delete for me of one's own message")
    world["cand"].delete(f"/api/v1/messages/{reply}", **{"for": "everyone"})
    check("a delete for everyone")
    sent_id("emp_team", partners, "more for the partners")
    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], partners=["tbb"])
    check("partner staff with unread messages removed")
    api.candidate("cand", "Carla Candidate", source_partner="crs")
    check("the candidate's source partner changed (its staff leave the case, others join)")
    api.job("job1", "Registered Nurse", "acme", team=[], partners=["tbb", "hireco"])
    check("the job's team dropped (the employer joins), partners back")
    with db.read() as session:
        assert any(u.unread_messages for u in session.scalars(select(User)))


def test_shift_totals_moves_each_user_by_their_own_delta(world: World, db: Database) -> None:
    """One statement for users with different deltas (and none): each gets their own, users
    already loaded in the session see their new totals, and the change is committed."""
    admin, team, cand = (user_id(db, ext) for ext in ("emp_admin", "emp_team", "cand"))
    with db.write() as session:
        loaded = session.get_one(User, admin)
        assert (loaded.unread_conversations, loaded.unread_messages) == (0, 0)
        totals = shift_totals(session, {admin: (1, 3), team: (1, 1), cand: (0, 0)})
        assert totals == {admin: (1, 3), team: (1, 1), cand: (0, 0)}
        assert (loaded.unread_conversations, loaded.unread_messages) == (1, 3)
        assert shift_totals(session, {admin: change(3, 1), team: change(1, 0)}) == {
            admin: (1, 1),
            team: (0, 0),
        }
        assert shift_totals(session, {cand: (0, 0)}) == {cand: (0, 0)}
        assert shift_totals(session, {}) == {}
        assert (loaded.unread_conversations, loaded.unread_messages) == (1, 1)
    with db.read() as session:
        assert session.get_one(User, admin).unread_messages == 1
        assert session.get_one(User, team).unread_messages == 0


def test_a_send_leaves_members_loaded_in_its_session_up_to_date(
    world: World, db: Database, clock: FrozenClock
) -> None:
    """The recipients' counts are bumped by a plain UPDATE; member rows the session had loaded
    already show the new counts all the same."""
    conv_id = start(world["emp_admin"], "application", application="app1")
    admin = user_id(db, "emp_admin")
    clock.advance(seconds=10)
    with db.write() as session:
        user = session.get_one(User, admin)
        conv, member = access_conversation(session, user, conv_id)
        others = [m for m in conv.members if m.user_id != admin]
        assert others and all(m.unread_count == 0 for m in others)
        limits = Limits(max_chars=1000, max_sms_chars=100, default_region="US")
        do_send_message(
            session,
            actor=user,
            conv=conv,
            member=member,
            out=Outgoing(body="hi"),
            limits=limits,
            now=clock.now(),
        )
        assert [m.unread_count for m in others] == [1] * len(others)
        assert all(m.last_activity_at == clock.now() for m in others)
    check_badges(world)
