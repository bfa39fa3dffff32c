"""Invariants that must hold after any sequence of changes, checked after random walks.

- The stored members of every conversation are exactly who the rules in DESIGN.md say.
- Every member's kept unread count equals an exact recount over the messages.
- Every member row carries its conversation's last activity time (the inbox index relies on it).
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from jobchat.clock import FrozenClock
from jobchat.conversations.membership import expected_member_ids
from jobchat.conversations.models import Conversation, Member
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.messages.queries import count_unread
from tests.support import ROLES, World

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
ACTIONS = ["stage", "team", "partners", "source", "role", "send", "send", "read", "delete"]
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
        elif action == "delete" and messages:
            author, message_id = rng.choice(messages)
            if rng.random() < 0.5:
                world[author].delete(f"/api/v1/messages/{message_id}", **{"for": "everyone"})
            else:
                role = rng.choice(ROLES)
                world[role].delete(f"/api/v1/messages/{message_id}", **{"for": "me"})
        check_invariants(db)
