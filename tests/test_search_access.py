"""Who finds what: every conversation kind x every role x every deleted state, and members who
leave. Search answers exactly what reading the history would show, and nothing else.

The kinds, their members and openers are the authorization matrix's (DESIGN.md's table applied
to ``tests.support.build_world``). In each kind's conversation four messages hold the word
"matrixcheck": one plainly visible, one deleted for everyone, one the opener deleted for
themself and one the second author deleted for themself. So each role meets each state both as
the one who hid a message and as someone else.
"""

from __future__ import annotations

from typing import Any

from tests.support import ROLES, As, World, body, sent
from tests.test_authorization_matrix import KINDS, refs_for

STATES = ("visible", "for_everyone", "hidden_by_opener", "hidden_by_second")


def found(user: As, q: str, **params: Any) -> set[int]:
    ids: set[int] = set()
    cursor = None
    while True:
        extra = dict(params) | ({"cursor": cursor} if cursor else {})
        page = body(user.get("/api/v1/search", q=q, limit=50, **extra), 200)
        ids |= {item["message"]["id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def readable(user: As, conversation_id: int) -> set[int]:
    """The messages the user's history of the conversation shows, but tombstones."""
    r = user.messages(conversation_id, limit=200)
    if r.status_code == 404:
        return set()
    return {m["id"] for m in body(r, 200)["items"] if not m["deleted"]}


def expected(kind: str, state: str, role: str) -> bool:
    spec = KINDS[kind]
    if role not in spec.members or state == "for_everyone":
        return False
    if state == "hidden_by_opener":
        return role != spec.opener
    if state == "hidden_by_second":
        return role != spec.second_author
    return True


def test_the_access_matrix(world: World) -> None:
    message: dict[tuple[str, str], int] = {}
    conversations: dict[str, int] = {}
    for kind, spec in KINDS.items():
        r = world[spec.opener].start(kind, **refs_for(kind, spec.opener))
        conv = conversations[kind] = body(r, 201)["id"]
        opener, second = world[spec.opener], world[spec.second_author]
        marker = kind.replace("_", "")
        for state in STATES:
            # The message one of them hides is the other's: hiding is not only for one's own.
            author = second if state == "hidden_by_opener" else opener
            message[kind, state] = sent(author.send(conv, f"matrixcheck {marker} {state}"))["id"]
        deletions = [
            (opener, "for_everyone", "everyone"),
            (opener, "hidden_by_opener", "me"),
            (second, "hidden_by_second", "me"),
        ]
        for who, state, for_ in deletions:
            r = who.delete(f"/api/v1/messages/{message[kind, state]}", **{"for": for_})
            assert r.status_code == 204, r.text

    wrong = []
    for role in ROLES:
        got = found(world[role], "matrixcheck")
        for (kind, state), message_id in message.items():
            if (message_id in got) != expected(kind, state, role):
                wrong.append(f"{kind} / {role} / {state}: found={message_id in got}")
        # The same as reading: what the role's histories show, exactly.
        shown = set().union(*(readable(world[role], c) for c in conversations.values()))
        assert got == shown, role
        # And per conversation, with the filter.
        for kind, conv in conversations.items():
            r = world[role].get("/api/v1/search", q="matrixcheck", conversation=conv)
            if role in KINDS[kind].members:
                assert {i["message"]["id"] for i in body(r, 200)["items"]} == readable(
                    world[role], conv
                )
            else:
                assert body(r, 404)["error"]["code"] == "not_found"
    assert not wrong, "\n".join(wrong)
    # The word for the kind alone finds only that kind's messages.
    assert found(world["emp_admin"], "agencyprivate") == set()
    # emp_team opened it and hid one message; the agency user hid another.
    assert found(world["emp_team"], "agencyprivate matrixcheck") == {
        message["agency_private", "visible"],
        message["agency_private", "hidden_by_second"],
    }


def test_a_team_member_who_leaves_finds_nothing_more(world: World) -> None:
    conv = body(world["emp_team"].start("application", application="app1"), 201)["id"]
    salary = sent(world["cand"].send(conv, "My salary expectations are attached"))["id"]
    assert found(world["emp_team"], "salary") == {salary}
    assert found(world["emp_other"], "salary") == set()
    # The job's team is now emp_other alone: emp_team leaves the conversation, emp_other joins.
    partners = ["tbb", "hireco"]
    world.api.job("job1", "Registered Nurse", "acme", team=["emp_other"], partners=partners)
    assert world["emp_team"].messages(conv).status_code == 404
    assert found(world["emp_team"], "salary") == set()
    assert found(world["emp_other"], "salary") == {salary}


def test_an_agency_user_replaced_finds_nothing_more(world: World) -> None:
    conv = body(world["agency_user"].start("agency", application="app1"), 201)["id"]
    fee = sent(world["agency_user"].send(conv, "Our placement fee is attached"))["id"]
    assert found(world["agency_user"], "placement") == {fee}
    world.api.application(
        "app1", "job1", "cand", "offer_accepted", stage_owner="emp_team", agency_user="agency_other"
    )
    assert world["agency_user"].messages(conv).status_code == 404
    assert found(world["agency_user"], "placement fee") == set()
    # The new agency user gets a thread of their own, and never the previous one's messages.
    assert found(world["agency_other"], "placement fee") == set()
    # The hiring team still has it.
    assert found(world["emp_team"], "placement fee") == {fee}
