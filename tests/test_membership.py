"""Members follow their context, in the same transaction as the change.

When the ATS changes a job's team or partners, a candidate's source partner, a staff user's role
or organisation, or an application's agency user, the response to that upsert already reflects
the new members of every conversation it touched: newcomers read the conversation, and those
who left get 404 for it, exactly as for one that does not exist.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from jobchat.clock import FrozenClock
from tests.support import HIRECO, Api, As, E, World, body, inbox_ids, members


def members_of(user: As, conv_id: int) -> set[str]:
    return members(body(user.get(f"/api/v1/conversations/{conv_id}"), 200))


def assert_left(user: As, conv_id: int) -> None:
    """The user is no longer a member: 404 on every door, and gone from the inbox."""
    got = user.get(f"/api/v1/conversations/{conv_id}")
    assert got.status_code == 404, got.text
    assert got.json()["error"]["code"] == "not_found"
    assert user.messages(conv_id).status_code == 404
    assert user.send(conv_id, "Anyone?").status_code == 404
    assert conv_id not in inbox_ids(user)


def assert_joined(user: As, conv_id: int, history: int) -> None:
    """The user is a member: reads the conversation and its history, with nothing unread."""
    got = body(user.get(f"/api/v1/conversations/{conv_id}"), 200)
    assert got["unread_count"] == 0
    assert len(body(user.messages(conv_id), 200)["items"]) == history
    assert conv_id in inbox_ids(user)


# --- a job's team --------------------------------------------------------------------------------


def test_team_change_moves_members_of_job_and_application_conversations(
    world: World, api: Api
) -> None:
    """Replacing a job's team: the removed team member leaves the job-level and the
    application-level conversations of the job, the added one joins them; the employer's admin
    stays in all of them."""
    group = body(world["emp_team"].start("job_partners", job="job1"), 201)
    relocation = body(world["emp_team"].start("job_relocation", job="job1"), 201)
    chat = body(world["emp_team"].start("application", application="app1"), 201)
    case = body(world["emp_team"].start("case", application="app1"), 201)
    agency = body(world["emp_team"].start("agency", application="app1"), 201)
    for conv in (group, relocation, chat, case, agency):
        body(world["emp_team"].send(conv["id"], "Before the change"), 201)

    api.job("job1", "Registered Nurse", "acme", team=["emp_other"], partners=["tbb", "hireco"])

    new_e = {"emp_admin", "emp_other"}
    assert members_of(world["emp_admin"], group["id"]) == new_e | {"sp_in"} | HIRECO
    assert members_of(world["emp_admin"], relocation["id"]) == new_e | {"sp_in", "cand"} | HIRECO
    assert members_of(world["emp_admin"], chat["id"]) == new_e | {"cand"}
    assert members_of(world["emp_admin"], case["id"]) == new_e | {"cand", "sp_in"}
    assert members_of(world["emp_admin"], agency["id"]) == new_e | {"agency_user"}
    for conv in (group, relocation, chat, case, agency):
        assert_left(world["emp_team"], conv["id"])
        assert_joined(world["emp_other"], conv["id"], history=1)


def test_emptying_the_team_opens_the_job_to_the_whole_employer(world: World, api: Api) -> None:
    """A job with no team is worked by the whole employer organisation: every acme staff user
    joins its conversations, and no one else's staff does."""
    chat = body(world["emp_team"].start("application", application="app2"), 201)
    api.job("job1", "Registered Nurse", "acme", team=[], partners=["tbb", "hireco"])
    assert members_of(world["emp_team"], chat["id"]) == E | {"emp_other", "cand2"}
    assert_joined(world["emp_other"], chat["id"], history=0)
    assert world["other_emp"].get(f"/api/v1/conversations/{chat['id']}").status_code == 404


def test_a_rejected_team_change_leaves_members_untouched(world: World, api: Api) -> None:
    """An upsert that fails validation changes nothing: no half-written team, no member moved."""
    chat = body(world["emp_team"].start("application", application="app1"), 201)
    refused = api.integration.put(
        "/api/v1/jobs/job1",
        {"title": "Registered Nurse", "employer": "acme", "team": ["emp_other", "other_emp"]},
    )
    assert refused.status_code == 422, refused.text
    assert set(refused.json()["error"]["fields"]) == {"team"}
    assert members_of(world["emp_team"], chat["id"]) == E | {"cand"}
    assert world["emp_other"].get(f"/api/v1/conversations/{chat['id']}").status_code == 404


# --- a job's partners ----------------------------------------------------------------------------


def test_partner_removed_from_job_leaves_its_job_conversations(world: World, api: Api) -> None:
    """A partner organisation taken off a job: its staff leave the all-partners chat, the
    relocation chat and that partner's one-to-one chat. Their candidate case conversations stay,
    since those follow the candidate's source partner, not the job's."""
    group = body(world["emp_team"].start("job_partners", job="job1"), 201)
    relocation = body(world["emp_team"].start("job_relocation", job="job1"), 201)
    one_to_one = body(world["emp_team"].start("job_partner", job="job1", partner="tbb"), 201)
    agency_one = body(world["emp_team"].start("job_partner", job="job1", partner="hireco"), 201)
    case = body(world["emp_team"].start("case", application="app1"), 201)

    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], partners=["hireco"])

    assert members_of(world["emp_team"], group["id"]) == E | HIRECO
    assert members_of(world["emp_team"], relocation["id"]) == E | HIRECO | {"cand"}
    assert members_of(world["emp_team"], one_to_one["id"]) == E
    assert members_of(world["emp_team"], agency_one["id"]) == E | HIRECO
    assert members_of(world["emp_team"], case["id"]) == E | {"sp_in", "cand"}
    for conv in (group, relocation, one_to_one):
        assert_left(world["sp_in"], conv["id"])
    assert inbox_ids(world["sp_in"]) == [case["id"]]


def test_partner_added_to_job_joins_its_job_conversations(
    world: World, api: Api, clock: FrozenClock
) -> None:
    """A partner organisation added to a job: its staff join the all-partners chat and the
    relocation chat, with the history and nothing unread, and may open a one-to-one chat; a
    partner re-added rejoins its own one-to-one chat."""
    group = body(world["emp_team"].start("job_partners", job="job1"), 201)
    relocation = body(world["emp_team"].start("job_relocation", job="job1"), 201)
    one_to_one = body(world["emp_team"].start("job_partner", job="job1", partner="tbb"), 201)
    body(world["emp_team"].send(group["id"], "Welcome, partners"), 201)
    body(world["emp_team"].send(one_to_one["id"], "Just for TBB"), 201)
    clock.advance(minutes=1)

    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], partners=["hireco"])
    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], partners=["hireco", "crs"])

    assert members_of(world["emp_team"], group["id"]) == E | HIRECO | {"sp_out"}
    assert members_of(world["emp_team"], relocation["id"]) == E | HIRECO | {"sp_out", "cand"}
    assert_joined(world["sp_out"], group["id"], history=1)
    assert_joined(world["sp_out"], relocation["id"], history=0)
    crs_chat = body(world["sp_out"].start("job_partner", job="job1", partner="crs"), 201)
    assert members(crs_chat) == E | {"sp_out"}

    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], partners=["hireco", "tbb"])
    assert members_of(world["emp_team"], one_to_one["id"]) == E | {"sp_in"}
    assert members_of(world["emp_team"], crs_chat["id"]) == E
    assert_joined(world["sp_in"], one_to_one["id"], history=1)
    assert_left(world["sp_out"], group["id"])


# --- a candidate's source partner ----------------------------------------------------------------


def test_candidate_source_partner_change_moves_partner_staff(world: World, api: Api) -> None:
    """A candidate managed by a new source partner: the old partner's staff leave the
    candidate's one-to-one and case chats. The new partner's staff join the case chat, which is
    about the application and shared with the employer; the one-to-one chat stays between the
    candidate and the old partner, so the new partner starts a fresh one and never reads the
    old one. The application chat between employer and candidate is untouched."""
    one_to_one = body(world["sp_in"].start("candidate_partner", candidate="cand"), 201)
    case = body(world["sp_in"].start("case", application="app1"), 201)
    chat = body(world["emp_team"].start("application", application="app1"), 201)
    body(world["sp_in"].send(one_to_one["id"], "Hello Carla"), 201)
    body(world["sp_in"].send(case["id"], "Case notes"), 201)

    api.candidate("cand", "Carla Candidate", source_partner="crs")

    assert members_of(world["cand"], one_to_one["id"]) == {"cand"}
    assert members_of(world["cand"], case["id"]) == E | {"cand", "sp_out"}
    assert members_of(world["cand"], chat["id"]) == E | {"cand"}
    assert_left(world["sp_in"], one_to_one["id"])
    assert_left(world["sp_in"], case["id"])
    assert_joined(world["sp_out"], case["id"], history=1)
    assert_left(world["sp_out"], one_to_one["id"])

    fresh = body(world["sp_out"].start("candidate_partner", candidate="cand"), 201)
    assert fresh["id"] != one_to_one["id"]
    assert fresh["partner"] == "crs"
    assert members(fresh) == {"cand", "sp_out"}
    assert body(world["sp_out"].messages(fresh["id"]), 200)["items"] == []
    # The candidate keeps both: the old one-to-one with its history, and the new one.
    assert {one_to_one["id"], fresh["id"]} <= set(inbox_ids(world["cand"]))


def test_candidate_without_source_partner_keeps_only_themself_in_partner_chat(
    world: World, api: Api
) -> None:
    """Clearing a candidate's source partner removes the partner's staff from the chats that
    depend on it."""
    one_to_one = body(world["cand"].start("candidate_partner", candidate="cand"), 201)
    case = body(world["sp_in"].start("case", application="app1"), 201)
    api.candidate("cand", "Carla Candidate", source_partner=None)
    assert members_of(world["cand"], one_to_one["id"]) == {"cand"}
    assert members_of(world["cand"], case["id"]) == E | {"cand"}
    assert_left(world["sp_in"], one_to_one["id"])
    assert_left(world["sp_in"], case["id"])


# --- a staff user's role and organisation ------------------------------------------------------


def test_staff_promoted_to_admin_joins_team_restricted_job_conversations(
    world: World, api: Api
) -> None:
    """An employer member off a job's team, made admin, joins the conversations of the job
    (job-level and application-level) with the history and nothing unread; made member again,
    they leave."""
    group = body(world["emp_team"].start("job_partners", job="job1"), 201)
    chat = body(world["emp_team"].start("application", application="app1"), 201)
    private = body(world["emp_team"].start("agency_private", application="app1"), 201)
    body(world["emp_team"].send(chat["id"], "Hi Carla"), 201)

    api.staff("emp_other", "Otto Other", "acme", role="admin")

    assert members_of(world["emp_team"], group["id"]) == E | {"emp_other", "sp_in"} | HIRECO
    assert members_of(world["emp_team"], chat["id"]) == E | {"emp_other", "cand"}
    assert members_of(world["emp_team"], private["id"]) == {"emp_team", "agency_user"}
    assert_joined(world["emp_other"], group["id"], history=0)
    assert_joined(world["emp_other"], chat["id"], history=1)

    api.staff("emp_other", "Otto Other", "acme", role="member")
    assert_left(world["emp_other"], group["id"])
    assert_left(world["emp_other"], chat["id"])


@pytest.mark.parametrize("who", ["emp_admin", "emp_team"])
def test_staff_moved_to_another_organisation_leaves(world: World, api: Api, who: str) -> None:
    """An employer user (an admin, or a member of the job's team) who moves to another
    organisation leaves every conversation of their former employer's jobs, private threads
    included."""
    group = body(world["emp_team"].start("job_partners", job="job1"), 201)
    chat = body(world["emp_team"].start("application", application="app1"), 201)
    agency = body(world["emp_team"].start("agency", application="app1"), 201)
    private = body(world[who].start("agency_private", application="app1"), 201)

    api.staff(who, "Moved Away", "globex", role="admin" if who == "emp_admin" else "member")

    stays = E - {who}
    assert members_of(world["agency_user"], group["id"]) == stays | {"sp_in"} | HIRECO
    assert members_of(world["agency_user"], agency["id"]) == stays | {"agency_user"}
    assert members_of(world["cand"], chat["id"]) == stays | {"cand"}
    assert members_of(world["agency_user"], private["id"]) == {"agency_user"}
    for conv in (group, chat, agency, private):
        assert_left(world[who], conv["id"])
    assert inbox_ids(world[who]) == []


def test_source_partner_staff_moved_to_another_partner_changes_sides(
    world: World, api: Api
) -> None:
    """A source partner's staff user who moves to another source partner leaves the old
    partner's candidate chats and job chats, and joins the new partner's."""
    own = body(world["sp_in"].start("candidate_partner", candidate="cand"), 201)
    group = body(world["emp_team"].start("job_partners", job="job1"), 201)
    other = body(world["sp_out"].start("candidate_partner", candidate="cand2"), 201)

    api.staff("sp_in", "Sam Partner", "crs")

    assert members_of(world["cand"], own["id"]) == {"cand"}
    assert members_of(world["emp_team"], group["id"]) == E | HIRECO
    assert members_of(world["cand2"], other["id"]) == {"cand2", "sp_out", "sp_in"}
    assert_left(world["sp_in"], own["id"])
    assert_left(world["sp_in"], group["id"])
    assert_joined(world["sp_in"], other["id"], history=0)


# --- an application's agency user ----------------------------------------------------------------


def test_new_agency_user_gets_a_fresh_thread_and_cannot_read_the_old_one(
    world: World, api: Api
) -> None:
    """When an application passes to another agency user, the previous one leaves the agency
    thread (and their private threads) of that application. The new agency user starts a fresh
    agency thread, which the hiring team reaches too, and cannot read the old one."""
    old = body(world["agency_user"].start("agency", application="app1"), 201)
    body(world["agency_user"].send(old["id"], "Carla's references are attached."), 201)
    private = body(
        world["agency_user"].start("agency_private", application="app1", with_user="emp_team"),
        201,
    )

    api.application("app1", "job1", "cand", "offer_accepted", agency_user="agency_other")

    assert members_of(world["emp_team"], old["id"]) == E
    assert members_of(world["emp_team"], private["id"]) == {"emp_team"}
    assert_left(world["agency_user"], old["id"])
    assert_left(world["agency_user"], private["id"])
    gone = world["agency_user"].start("agency", application="app1")
    assert gone.status_code == 404, gone.text

    fresh = body(world["agency_other"].start("agency", application="app1"), 201)
    assert fresh["id"] != old["id"]
    assert members(fresh) == E | {"agency_other"}
    assert body(world["agency_other"].messages(fresh["id"]), 200)["items"] == []
    assert world["agency_other"].get(f"/api/v1/conversations/{old['id']}").status_code == 404
    assert world["agency_other"].messages(old["id"]).status_code == 404
    assert inbox_ids(world["agency_other"]) == [fresh["id"]]
    assert body(world["emp_team"].start("agency", application="app1"), 200)["id"] == fresh["id"]


# --- get or create -------------------------------------------------------------------------------


def test_starting_an_existing_conversation_returns_it(world: World) -> None:
    """There is one conversation per kind and context: a second POST answers 200 with the same
    conversation, whoever of its members asks."""
    first = body(world["emp_team"].start("application", application="app1"), 201)
    again = body(world["emp_team"].start("application", application="app1"), 200)
    assert again["id"] == first["id"]
    by_admin = body(world["emp_admin"].start("application", application="app1"), 200)
    assert by_admin["id"] == first["id"]
    assert members(by_admin) == E | {"cand"}
    assert inbox_ids(world["emp_team"]) == [first["id"]]


def test_concurrent_starts_create_one_conversation(world: World) -> None:
    """Eight requests racing to open the same conversation: exactly one creates it (201), the
    others get it (200), all with the same id, and the inbox lists it once."""
    user = world["emp_team"]
    barrier = threading.Barrier(8)

    def start(_: int) -> httpx.Response:
        barrier.wait(timeout=10)
        return user.start("job_relocation", job="job1")

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(start, range(8)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201], [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert inbox_ids(user) == list(ids)
    assert members_of(user, ids.pop()) == E | {"sp_in", "cand"} | HIRECO
