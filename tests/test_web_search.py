"""The search page, ``/search?q=``: results with the conversation, the author, the time and the
matching words marked, only from highlights (a message's own markup is text), nothing from a
conversation the reader is not in, the empty states, "Load more", and the header's field on
every page. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from jobchat.web.search_page import marked
from tests.support import Api, World, sent, start
from tests.web_support import Browser


@pytest.fixture
def chat(world: World) -> int:
    """Tess (employer team) and Carla (candidate) on application app1."""
    return start(world["emp_team"], "application", application="app1")


def results(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="search-result" data-message-id="(\d+)"', html)]


def marks(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", html, re.S)]


def test_results_link_to_the_message_with_the_words_marked(
    tess: Browser, carla: Browser, world: World, chat: int
) -> None:
    sent(world["emp_team"].send(chat, "Hello Carla, thanks for applying"))
    hit = sent(world["cand"].send(chat, "I can do the interview on Tuesday afternoon"))
    html = tess.page("/search", q="tuesday")
    assert results(html) == [hit["id"]]
    assert f'href="/conversations/{chat}?at={hit["id"]}"' in html
    assert marks(html) == ["Tuesday"]
    # The conversation, its kind, the author and the time are on the result.
    item = html.split('class="search-result"', 1)[1].split("</li>", 1)[0]
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", item)).split())
    assert "Application" in text and "Carla" in text
    assert re.search(r'<time class="result-time" datetime="[^"]+"', item)
    # Any form of the word: stemming, as the API.
    assert results(tess.page("/search", q="interviews")) == [hit["id"]]
    # The candidate finds it too (a member), and the header field keeps the words.
    html = carla.page("/search", q="tuesday")
    assert results(html) == [hit["id"]]
    assert 'id="topsearch-q" name="q" placeholder="Search messages"' in html
    assert re.search(r'id="search-q" name="q" value="tuesday"', html)


def test_a_message_s_markup_is_text_and_only_highlights_are_marked(
    tess: Browser, world: World, chat: int
) -> None:
    body_text = '<script>alert("x")</script> <mark>fake</mark> offer <b>bold</b> & co'
    hit = sent(world["cand"].send(chat, body_text))
    html = tess.page("/search", q="offer")
    assert results(html) == [hit["id"]]
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(" in html
    assert "&lt;mark&gt;fake&lt;/mark&gt;" in html
    assert marks(html) == ["offer"]


def test_no_words_no_results_and_bad_input(tess: Browser, world: World, chat: int) -> None:
    sent(world["cand"].send(chat, "Nothing to see"))
    empty = tess.page("/search")
    assert "Search every conversation you are in" in empty
    assert "use quotes" in empty.lower() or "Use quotes" in empty
    assert results(empty) == []
    none = tess.page("/search", q="zebra")
    assert "No messages match “zebra”" in none and results(none) == []
    # Only stop words: nothing, not an error, and the page says why.
    common = tess.page("/search", q="the")
    assert results(common) == []
    assert "“the” is too common a word to search for; add another word." in unescape(common)
    assert "No messages match" not in common
    # A cursor this server never gave: said on the page, never a 500.
    bad = tess.page("/search", q="nothing", cursor="garbage")
    assert 'class="notice" role="alert"' in bad
    # Too long for a query (the header field's limit is 200, a link may hold more), or not
    # text a database can store: a notice next to the kept search box, not an error page.
    for q, problem in (
        ("x" * 201, "Search may be at most 200 characters."),
        ("x" * 500, "Search may be at most 200 characters."),
        ("a\x00b", "Search must not contain NUL characters."),
        ("***", "Search must contain a word (letters or digits)."),
    ):
        page = tess.client.get("/search", params={"q": q})
        assert page.status_code == 200, q
        assert f'<p class="notice" role="alert">{problem}</p>' in page.text
        for field in ("search-q", "topsearch-q"):
            assert re.search(rf'<input type="search" id="{field}"[^>]*maxlength="200"', page.text)
        assert results(page.text) == []


def test_a_partial_word_that_finds_nothing_offers_its_prefix_form(
    tess: Browser, world: World, chat: int
) -> None:
    sent(world["cand"].send(chat, "I can start on Tuesday"))
    page = tess.page("/search", q="tues")
    assert results(page) == []
    assert 'Search for <a href="/search?q=tues%2A">tues*</a> instead?' in page
    assert len(results(tess.page("/search", q="tues*"))) == 1
    # Not offered when the prefix form was asked for, for a phrase, or when something matched.
    for q in ("zebr*", '"start on tues"', "tuesday"):
        assert "instead?" not in tess.page("/search", q=q), q
    # Scoped to a conversation, the link keeps the scope.
    scoped = tess.page("/search", q="tues", conversation=str(chat))
    assert f'href="/search?q=tues%2A&amp;conversation={chat}"' in scoped


def test_nothing_from_a_conversation_the_reader_is_not_in(
    client: TestClient, api: Api, tess: Browser, world: World, chat: int
) -> None:
    secret = sent(world["cand"].send(chat, "confidential salary figures"))
    outsider = Browser.signed_in(client, api, "other_emp")
    assert results(outsider.page("/search", q="salary")) == []
    assert results(tess.page("/search", q="salary")) == [secret["id"]]
    # Deleted for everyone: gone for every member.
    assert (
        world["cand"].delete(f"/api/v1/messages/{secret['id']}", **{"for": "everyone"}).status_code
        == 204
    )
    assert results(tess.page("/search", q="salary")) == []


def test_load_more_follows_the_cursor_without_repeats(
    tess: Browser, world: World, chat: int
) -> None:
    ids = [sent(world["cand"].send(chat, f"reminder number {i}"))["id"] for i in range(25)]
    first = tess.page("/search", q="reminder")
    shown = results(first)
    assert len(shown) == 20
    more = re.search(r'href="(/search\?[^"]+)" data-more', first)
    assert more is not None
    second = tess.page(unescape(more.group(1)))
    assert len(results(second)) == 5 and "data-more" not in second
    assert sorted(shown + results(second)) == sorted(ids)
    # A filter to one conversation keeps to it, and says so.
    other = start(world["emp_team"], "application", application="app2")
    sent(world["emp_team"].send(other, "reminder elsewhere"))
    scoped = tess.page("/search", q="reminder elsewhere", conversation=chat)
    assert results(scoped) == [] and "Only this conversation" in scoped


def test_marked_cuts_at_ranges_and_never_loses_text() -> None:
    assert marked("abc def ghi", [[4, 7]]) == [("abc ", False), ("def", True), (" ghi", False)]
    # Out of range, reversed, overlapping and touching ranges: clipped and merged.
    assert marked("abcdef", [[4, 99], [-3, 1], [3, 2], [1, 2], [2, 3]]) == [
        ("abc", True),
        ("d", False),
        ("ef", True),
    ]
    assert "".join(t for t, _ in marked("xyz", [[0, 3], [1, 2]])) == "xyz"
    assert marked("", [[0, 1]]) == []
