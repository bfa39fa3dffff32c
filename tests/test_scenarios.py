"""Scenarios from the requirement documents, end to end through the HTTP API.

Each test plays one story from ``requirements/`` with the standard cast (see ``World``): job chats
between an employer, its source partners and candidates; recruiter and applicant messaging with
ended conversations; agency messaging with private threads.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import httpx
import pytest

from jobchat.clock import FrozenClock
from tests.support import HIRECO, ROLES, TBB, Api, As, E, World, body, inbox_ids, members


def unread(user: As, conv_id: int) -> int:
    count: int = body(user.get(f"/api/v1/conversations/{conv_id}"), 200)["unread_count"]
    return count


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def assert_visible_only_to(world: World, conv_id: int, allowed: AbstractSet[str]) -> None:
    """Members read the conversation; everyone else gets 404, as if it did not exist."""
    for role in ROLES:
        user = world[role]
        got = user.get(f"/api/v1/conversations/{conv_id}")
        if role in allowed:
            assert got.status_code == 200, (role, got.text)
            assert conv_id in inbox_ids(user), role
        else:
            assert got.status_code == 404, (role, got.text)
            assert error_code(got) == "not_found"
            assert user.messages(conv_id).status_code == 404, role
            assert conv_id not in inbox_ids(user), role


# --- job chats: relocation ---------------------------------------------------------------------


def test_relocation_chat_follows_offer_acceptance_and_withdrawal(
    world: World, api: Api, clock: FrozenClock
) -> None:
    """The relocation group chat of a job holds the employer, the job's partners and the
    candidates at offer_accepted or hired. A candidate whose application moves to offer_accepted
    joins it: they read the earlier history but start with nothing unread, and the next message
    counts as unread for them. A candidate who withdraws leaves it: they get 404 for it and it
    is gone from their inbox."""
    conv = body(world["emp_team"].start("job_relocation", job="job1"), 201)
    assert members(conv) == E | TBB | HIRECO | {"cand"}
    first = body(world["emp_team"].send(conv["id"], "Flights are booked for March."), 201)
    clock.advance(minutes=1)
    second = body(world["cand"].send(conv["id"], "Thank you!"), 201)

    clock.advance(minutes=1)
    api.application("app2", "job1", "cand2", "offer_accepted")
    got = body(world["emp_team"].get(f"/api/v1/conversations/{conv['id']}"), 200)
    assert members(got) == E | TBB | HIRECO | {"cand", "cand2"}

    joined = body(world["cand2"].get(f"/api/v1/conversations/{conv['id']}"), 200)
    assert joined["unread_count"] == 0
    history = body(world["cand2"].messages(conv["id"]), 200)
    assert [m["id"] for m in history["items"]] == [first["id"], second["id"]]
    assert history["next_cursor"] is None
    assert body(world["cand2"].get("/api/v1/unread"), 200) == {"conversations": 0, "messages": 0}

    clock.advance(minutes=1)
    api.application("app1", "job1", "cand", "withdrawn")
    got = body(world["emp_team"].get(f"/api/v1/conversations/{conv['id']}"), 200)
    assert members(got) == E | TBB | HIRECO | {"cand2"}
    gone = world["cand"].get(f"/api/v1/conversations/{conv['id']}")
    assert gone.status_code == 404, gone.text
    assert error_code(gone) == "not_found"
    assert world["cand"].messages(conv["id"]).status_code == 404
    assert world["cand"].send(conv["id"], "Still here?").status_code == 404
    assert conv["id"] not in inbox_ids(world["cand"])

    clock.advance(minutes=1)
    body(world["emp_team"].send(conv["id"], "Welcome Dan, you're travelling with the group."), 201)
    mine = body(world["cand2"].get(f"/api/v1/conversations/{conv['id']}"), 200)
    assert mine["unread_count"] == 1
    assert body(world["cand2"].get("/api/v1/unread"), 200) == {"conversations": 1, "messages": 1}
    assert inbox_ids(world["cand2"], filter="unread") == [conv["id"]]


def test_relocation_chat_can_be_reached_by_every_member_but_started_only_by_the_employer(
    world: World,
) -> None:
    """Only employer staff with access to the job open the relocation chat; once it exists the
    partners and candidates in it reach the same conversation (200)."""
    refused = world["sp_in"].start("job_relocation", job="job1")
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "cannot_start"
    conv = body(world["emp_admin"].start("job_relocation", job="job1"), 201)
    for role in ("sp_in", "agency_user", "cand", "emp_team"):
        again = body(world[role].start("job_relocation", job="job1"), 200)
        assert again["id"] == conv["id"], role
    assert_visible_only_to(world, conv["id"], E | TBB | HIRECO | {"cand"})


# --- agency messaging: private threads ---------------------------------------------------------


def test_agency_private_threads_with_stage_owner_and_previous_private_partners(
    world: World, api: Api
) -> None:
    """The agency user may open a private thread with the candidate's stage owner, but not with
    another hiring-team user (403 cannot_start) until that user has talked to them privately;
    after that the agency user may open one with them about another candidate too."""
    with_owner = body(
        world["agency_user"].start("agency_private", application="app1", with_user="emp_team"),
        201,
    )
    assert with_owner["kind"] == "agency_private"
    assert members(with_owner) == {"emp_team", "agency_user"}

    refused = world["agency_user"].start(
        "agency_private", application="app1", with_user="emp_admin"
    )
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "cannot_start"

    by_admin = body(world["emp_admin"].start("agency_private", application="app1"), 201)
    assert members(by_admin) == {"emp_admin", "agency_user"}
    assert by_admin["id"] != with_owner["id"]
    reached = body(
        world["agency_user"].start("agency_private", application="app1", with_user="emp_admin"),
        200,
    )
    assert reached["id"] == by_admin["id"]

    api.candidate("cand3", "Erin Candidate")
    api.application(
        "app3", "job1", "cand3", "screening", agency_user="agency_user", stage_owner="emp_team"
    )
    other_case = body(
        world["agency_user"].start("agency_private", application="app3", with_user="emp_admin"),
        201,
    )
    assert other_case["application"] == "app3"
    assert members(other_case) == {"emp_admin", "agency_user"}

    assert_visible_only_to(world, with_owner["id"], {"emp_team", "agency_user"})
    assert_visible_only_to(world, by_admin["id"], {"emp_admin", "agency_user"})
    assert_visible_only_to(world, other_case["id"], {"emp_admin", "agency_user"})


def test_agency_shared_thread_is_seen_by_the_hiring_team_and_one_agency_user(
    world: World,
) -> None:
    """The shared agency thread on a candidate: every hiring-team user with access to the
    candidate and the application's agency user; the agency user's colleague does not see it."""
    conv = body(world["agency_user"].start("agency", application="app1"), 201)
    assert members(conv) == E | {"agency_user"}
    body(world["agency_user"].send(conv["id"], "Carla is available from May."), 201)
    body(world["emp_team"].send(conv["id"], "Great, thanks."), 201)
    assert_visible_only_to(world, conv["id"], E | {"agency_user"})
    refused = world["agency_other"].start("agency", application="app1")
    assert refused.status_code == 404, refused.text


# --- recruiter and applicant: ending a conversation --------------------------------------------


def test_ended_conversation_blocks_the_candidate_until_the_recruiter_writes_again(
    world: World, clock: FrozenClock
) -> None:
    """When the recruiter ends a conversation the candidate can no longer post (409
    conversation_ended, nothing stored); the recruiter reopens it by sending a message, and then
    the candidate can reply again."""
    conv = body(world["emp_team"].start("application", application="app1"), 201)
    body(world["emp_team"].send(conv["id"], "Thanks for applying."), 201)
    clock.advance(minutes=1)
    body(world["cand"].send(conv["id"], "Happy to chat."), 201)

    clock.advance(minutes=1)
    ended = body(world["emp_team"].post(f"/api/v1/conversations/{conv['id']}/end"), 200)
    assert ended["status"] == "ended"
    assert body(world["cand"].get(f"/api/v1/conversations/{conv['id']}"), 200)["status"] == "ended"

    refused = world["cand"].send(conv["id"], "One more question")
    assert refused.status_code == 409, refused.text
    assert error_code(refused) == "conversation_ended"
    assert len(body(world["cand"].messages(conv["id"]), 200)["items"]) == 2

    clock.advance(minutes=1)
    body(world["emp_team"].send(conv["id"], "Actually, one more thing."), 201)
    reopened = body(world["emp_team"].get(f"/api/v1/conversations/{conv['id']}"), 200)
    assert reopened["status"] == "open"
    assert body(world["cand"].get(f"/api/v1/conversations/{conv['id']}"), 200)["status"] == "open"
    body(world["cand"].send(conv["id"], "Sure, go ahead."), 201)
    assert len(body(world["emp_team"].messages(conv["id"]), 200)["items"]) == 4


def test_only_staff_end_conversations(world: World) -> None:
    """A candidate may not end a conversation (403 cannot_end); it stays open."""
    conv = body(world["emp_team"].start("application", application="app1"), 201)
    refused = world["cand"].post(f"/api/v1/conversations/{conv['id']}/end")
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "cannot_end"
    assert body(world["cand"].get(f"/api/v1/conversations/{conv['id']}"), 200)["status"] == "open"


# --- source partners and candidates ------------------------------------------------------------


@pytest.mark.parametrize("starter", ["cand", "sp_in"])
def test_source_partner_talks_one_to_one_with_its_candidate(world: World, starter: str) -> None:
    """Either the candidate or a staff user of the candidate's source partner opens their
    one-to-one chat; it holds exactly the two sides, and the other side reaches the same one."""
    conv = body(world[starter].start("candidate_partner", candidate="cand"), 201)
    assert conv["kind"] == "candidate_partner"
    assert conv["candidate"] == "cand"
    assert members(conv) == {"cand", "sp_in"}
    other = "sp_in" if starter == "cand" else "cand"
    assert body(world[other].start("candidate_partner", candidate="cand"), 200)["id"] == conv["id"]
    assert_visible_only_to(world, conv["id"], {"cand", "sp_in"})


def test_candidate_sees_partner_and_case_chats_in_their_jobs_tab(
    world: World, clock: FrozenClock
) -> None:
    """The source partner talks with the candidate alone, and with the candidate and the
    employer about the case. Both chats are in the candidate's inbox with their unread counts;
    the agency users of the job see neither."""
    one_to_one = body(world["sp_in"].start("candidate_partner", candidate="cand"), 201)
    body(world["sp_in"].send(one_to_one["id"], "How is the visa paperwork going?"), 201)
    clock.advance(minutes=1)
    case = body(world["sp_in"].start("case", application="app1"), 201)
    assert case["kind"] == "case"
    assert members(case) == {"cand", "sp_in"} | E
    body(world["sp_in"].send(case["id"], "Carla's offer letter is signed."), 201)
    clock.advance(minutes=1)
    body(world["emp_team"].send(case["id"], "Wonderful, welcome aboard!"), 201)

    items = body(world["cand"].inbox(), 200)["items"]
    assert [(c["id"], c["kind"], c["unread_count"]) for c in items] == [
        (case["id"], "case", 2),
        (one_to_one["id"], "candidate_partner", 1),
    ]
    assert body(world["cand"].get("/api/v1/unread"), 200) == {"conversations": 2, "messages": 3}
    body(world["cand"].send(case["id"], "Thank you both!"), 201)
    assert unread(world["sp_in"], case["id"]) == 2  # the employer's reply and the candidate's

    for role in ("agency_user", "agency_other"):
        assert inbox_ids(world[role]) == [], role
    assert_visible_only_to(world, one_to_one["id"], {"cand", "sp_in"})
    assert_visible_only_to(world, case["id"], {"cand", "sp_in"} | E)


def test_candidate_cannot_open_the_case_chat(world: World) -> None:
    """The case chat is opened by the employer or the source partner, not by the candidate."""
    refused = world["cand"].start("case", application="app1")
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "cannot_start"


def test_an_unrelated_source_partner_cannot_reach_the_candidate(world: World) -> None:
    """A source partner that does not manage the candidate cannot see them: 404, never 403."""
    refused = world["sp_out"].start("candidate_partner", candidate="cand")
    assert refused.status_code == 404, refused.text
    refused = world["sp_out"].start("case", application="app1")
    assert refused.status_code == 404, refused.text


# --- employer and source partners --------------------------------------------------------------


def test_employer_group_chat_with_all_partners_of_a_job(world: World) -> None:
    """The employer's group chat about a job holds the employer side and the staff of every
    partner organisation of the job; a message reaches each of them as unread."""
    conv = body(world["emp_team"].start("job_partners", job="job1"), 201)
    assert conv["kind"] == "job_partners"
    assert members(conv) == E | TBB | HIRECO
    body(world["emp_team"].send(conv["id"], "We are hiring 5 more nurses."), 201)
    for role in TBB | HIRECO | {"emp_admin"}:
        got = body(world[role].get(f"/api/v1/conversations/{conv['id']}"), 200)
        assert got["unread_count"] == 1, role
    assert unread(world["emp_team"], conv["id"]) == 0
    assert_visible_only_to(world, conv["id"], E | TBB | HIRECO)


def test_partners_cannot_open_the_group_chat(world: World) -> None:
    """Only the employer opens the all-partners group chat; a partner gets 403 cannot_start."""
    refused = world["sp_in"].start("job_partners", job="job1")
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "cannot_start"


@pytest.mark.parametrize("starter", ["emp_team", "sp_in"])
def test_employer_talks_one_to_one_with_one_partner(world: World, starter: str) -> None:
    """The employer and one partner organisation talk about a job; either side opens it, and
    the other partners of the job do not see it."""
    conv = body(world[starter].start("job_partner", job="job1", partner="tbb"), 201)
    assert conv["kind"] == "job_partner"
    assert conv["partner"] == "tbb"
    assert members(conv) == E | TBB
    body(world["sp_in"].send(conv["id"], "We have three strong nurses for you."), 201)
    assert unread(world["emp_team"], conv["id"]) == 1
    assert_visible_only_to(world, conv["id"], E | TBB)


def test_a_partner_cannot_open_a_one_to_one_chat_for_another_partner(world: World) -> None:
    """A partner of the job may not open the employer's one-to-one chat with another partner."""
    refused = world["agency_user"].start("job_partner", job="job1", partner="tbb")
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "cannot_start"


def test_one_to_one_chat_needs_a_partner_of_the_job(world: World) -> None:
    """Naming an organisation that is not a partner of the job is invalid input (422)."""
    refused = world["emp_team"].start("job_partner", job="job1", partner="crs")
    assert refused.status_code == 422, refused.text
    assert set(refused.json()["error"]["fields"]) == {"partner"}
