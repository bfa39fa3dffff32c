"""A conversation opened at a message (``/conversations/{id}?at=MSG``, where a search result
leads): the history around that message however old it is, the message marked to scroll to,
the older and newer pages from there, and an id the viewer cannot see falling back to the
newest page. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support import Api, World, sent, start
from tests.web_support import Browser, message_ids


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def test_opening_at_an_old_message_shows_the_history_around_it(
    tess: Browser, world: World, chat: int
) -> None:
    ids = [sent(world["cand"].send(chat, f"m{i}"))["id"] for i in range(80)]
    target = ids[10]  # far older than the newest page (the last 50)
    html = tess.page(f"/conversations/{chat}", at=target)
    # Half a page before it (it included) and half after, in order.
    assert message_ids(html) == ids[:36]
    assert f'data-at="{target}"' in html and f'data-notified="{target}"' in html
    # Nothing older here; newer ones follow from the last drawn.
    assert "data-before" not in html
    newer = re.search(r'class="load-newer" data-after="(\d+)"', html)
    assert newer is not None and int(newer.group(1)) == ids[35]

    # Scrolling down: the next page, with a button again only while more follow.
    page = tess.client.get(
        f"/conversations/{chat}/messages.html", params={"after": ids[35], "newer": "1"}
    )
    assert message_ids(page.text) == ids[36:80]
    assert "load-newer" not in page.text

    # In the middle of a longer history: older from it too.
    more = [sent(world["cand"].send(chat, f"n{i}"))["id"] for i in range(40)]
    everything = ids + more
    middle = everything[60]
    html = tess.page(f"/conversations/{chat}", at=middle)
    assert message_ids(html) == everything[36:86]
    older = re.search(r'data-before="(\d+)"', html)
    assert older is not None and int(older.group(1)) == everything[36]
    page = tess.client.get(
        f"/conversations/{chat}/messages.html", params={"after": everything[85], "newer": "1"}
    )
    assert message_ids(page.text) == everything[86:120]
    # A full page answers with the button for the next one.
    full = tess.client.get(
        f"/conversations/{chat}/messages.html", params={"after": everything[20], "newer": "1"}
    )
    assert message_ids(full.text) == everything[21:71]
    assert f'data-after="{everything[70]}"' in full.text
    # Without newer=1 (the live updates' fetch) there is never a button.
    live = tess.client.get(f"/conversations/{chat}/messages.html", params={"after": everything[20]})
    assert "load-newer" not in live.text


def test_opening_at_the_newest_message_is_the_usual_page(
    tess: Browser, world: World, chat: int
) -> None:
    ids = [sent(world["cand"].send(chat, f"m{i}"))["id"] for i in range(3)]
    html = tess.page(f"/conversations/{chat}", at=ids[-1])
    assert message_ids(html) == ids
    assert "load-newer" not in html and f'data-at="{ids[-1]}"' in html


def test_a_message_the_viewer_cannot_see_opens_the_newest_page(
    client: TestClient, api: Api, tess: Browser, world: World, chat: int
) -> None:
    ids = [sent(world["cand"].send(chat, f"m{i}"))["id"] for i in range(3)]
    # Deleted for Tess herself: not shown, so the page is the usual one, nothing highlighted.
    assert (
        world["emp_team"].delete(f"/api/v1/messages/{ids[0]}", **{"for": "me"}).status_code == 204
    )
    html = tess.page(f"/conversations/{chat}", at=ids[0])
    assert message_ids(html) == ids[1:]
    assert "data-at=" not in html
    # A message of another conversation, or none at all: the usual page, nothing told.
    other = start(world["emp_team"], "application", application="app2")
    elsewhere = sent(world["emp_team"].send(other, "elsewhere"))["id"]
    for at in (elsewhere, 999_999):
        html = tess.page(f"/conversations/{chat}", at=at)
        assert message_ids(html) == ids[1:] and "data-at=" not in html
    # Not a number, or out of range: the one error shape, never a 500.
    assert tess.client.get(f"/conversations/{chat}", params={"at": "x"}).status_code == 422
    # A stranger still gets nothing.
    outsider = Browser.signed_in(client, api, "other_emp")
    outsider.page(f"/conversations/{chat}", status=404, at=ids[1])
