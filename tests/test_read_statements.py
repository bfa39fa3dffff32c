"""The statements the two hottest reads run, through the API: the inbox page reads its page,
its members and their people; the history page the caller's membership and kind, its messages,
their files and (for staff) their deliveries. Neither loads the caller's own row: each
statement is a round trip on PostgreSQL, and the row was one of every page."""

from __future__ import annotations

import pytest

from tests.support import World, start
from tests.test_mail_notifications import statements

# Transaction control, not a read of the page.
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")


def _reads(seen: list[str]) -> list[str]:
    return [s for s in seen if not s.upper().startswith(_CONTROL)]


@pytest.fixture
def chat(world: World) -> int:
    staff = world["emp_admin"]
    conv = start(staff, "application", application="app1")
    assert staff.send(conv, "By email", channel="email", subject="Hi").status_code == 201
    assert world["cand"].send(conv, "In the app").status_code == 201
    return conv


def test_the_inbox_page_reads_three_statements(world: World, chat: int) -> None:
    staff = world["emp_admin"]
    assert staff.inbox().status_code == 200  # the token is known from here on
    with statements() as seen:
        page = staff.inbox()
    assert page.status_code == 200, page.text
    assert [c["id"] for c in page.json()["items"]] == [chat]
    reads = _reads(seen)
    assert len(reads) == 3, reads  # the page with its context, its memberships, the people


@pytest.mark.parametrize(
    ("who", "statements_read", "deliveries_shown"),
    [("emp_admin", 4, True), ("cand", 3, False)],
)
def test_the_history_page_reads_the_callers_kind_with_their_membership(
    world: World, chat: int, who: str, statements_read: int, deliveries_shown: bool
) -> None:
    caller = world[who]
    assert caller.messages(chat).status_code == 200
    with statements() as seen:
        page = caller.messages(chat)
    assert page.status_code == 200, page.text
    by_email = page.json()["items"][0]
    assert by_email["body"] == "By email"
    # Staff see how the email went; the candidate does not.
    assert (by_email["deliveries"] is not None) is deliveries_shown
    reads = _reads(seen)
    assert len(reads) == statements_read, reads


def test_the_history_of_a_conversation_one_is_not_in_is_not_found(world: World, chat: int) -> None:
    outsider = world["cand2"]
    r = outsider.messages(chat)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
