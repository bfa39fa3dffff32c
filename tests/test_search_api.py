"""GET /api/v1/search: the query language, ranking, snippets, pages, filters and bad input.

Every test runs on SQLite and, with JOBCHAT_TEST_DATABASE_URL, on PostgreSQL, asserting exact
ids, order, snippets and highlights: so the two databases give the same results.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.search import queries
from tests.support import As, World, body, sent, start


def search(user: As, q: str, **params: Any) -> dict[str, Any]:
    return body(user.get("/api/v1/search", q=q, **params), 200)


def found(user: As, q: str, **params: Any) -> list[int]:
    """The ids of the messages found, in the order given."""
    return [item["message"]["id"] for item in search(user, q, limit=50, **params)["items"]]


class Thread:
    """An application conversation (emp_team and cand) to post into, a second apart."""

    def __init__(self, world: World, clock: FrozenClock) -> None:
        self.world = world
        self.clock = clock
        self.id = start(world["emp_team"], "application", application="app1")

    def post(self, text_: str, who: str = "emp_team", **extra: Any) -> int:
        self.clock.advance(seconds=1)
        message_id: int = sent(self.world[who].send(self.id, text_, **extra))["id"]
        return message_id


@pytest.fixture
def thread(world: World, clock: FrozenClock) -> Thread:
    return Thread(world, clock)


def test_any_form_of_a_word_finds_the_others(world: World, thread: Thread) -> None:
    monday = thread.post("We interview on Monday")
    ing = thread.post("She is interviewing elsewhere", who="cand")
    ed = thread.post("He was interviewed twice")
    thread.post("Nothing to see here")
    tess = world["emp_team"]
    # An exact form ranks above other forms of the word; among equals, the newest first.
    assert found(tess, "interviewing") == [ing, ed, monday]
    assert found(tess, "interviews") == [ed, ing, monday]
    assert found(tess, "INTERVIEWED") == [ed, ing, monday]
    # The candidate, a member too, finds the same.
    assert found(world["cand"], "interview") == [monday, ed, ing]


def test_every_word_is_required(world: World, thread: Thread) -> None:
    both = thread.post("Interview moved to Monday morning")
    thread.post("Interview on Tuesday")
    thread.post("Monday is a holiday")
    assert found(world["emp_team"], "monday interview") == [both]
    assert found(world["emp_team"], "monday interview friday") == []


def test_stop_words_are_ignored(world: World, thread: Thread) -> None:
    offer = thread.post("The offer is in the post")
    tess = world["emp_team"]
    assert found(tess, "the offer") == [offer]
    assert found(tess, "offer of the") == [offer]
    # Only stop words: nothing to look for, and not an error.
    assert search(tess, "the of and") == {"items": [], "next_cursor": None}
    assert search(tess, '"to be or not to be"') == {"items": [], "next_cursor": None}


def test_a_phrase_matches_its_words_in_order(world: World, thread: Thread) -> None:
    exact = thread.post("We are making you an offer of employment today")
    gapless = thread.post("Offer employment paperwork attached")
    reverse = thread.post("Employment offer attached")
    apart = thread.post("An offer for permanent employment")
    tess = world["emp_team"]
    # "of" is a stop word: left out of the phrase as it was left out of the index.
    assert found(tess, '"offer of employment"') == [gapless, exact]
    assert found(tess, '"offers employed"') == [gapless, exact]
    assert found(tess, '"employment offer"') == [reverse]
    # Unquoted, order does not matter.
    assert set(found(tess, "employment offer")) == {exact, gapless, reverse, apart}
    # An unbalanced quote runs to the end.
    assert found(tess, '"offer of employment') == [gapless, exact]
    hit = search(tess, '"offer of employment" today')["items"][0]
    assert hit["snippet"] == "We are making you an offer of employment today"
    assert hit["highlights"] == [[21, 26], [30, 40], [41, 46]]


def test_a_star_makes_a_prefix(world: World, thread: Thread) -> None:
    interview = thread.post("Interview booked")
    intern = thread.post("The internship starts in May")
    internal = thread.post("Nothing internal-sounding here, just int")
    tess = world["emp_team"]
    assert found(tess, "interv*") == [interview]
    # The shorter message first (the same one match in fewer words).
    assert found(tess, "intern*") == [intern, internal]
    hit = search(tess, "intern*")["items"][0]
    assert hit["snippet"] == "The internship starts in May"
    assert hit["highlights"] == [[4, 14]]
    # With a plain word too: both required.
    assert found(tess, "intern* may") == [intern]
    r = tess.get("/api/v1/search", q="i*")
    assert body(r, 422)["error"]["fields"] == {
        "q": "a prefix needs at least 2 letters before the *"
    }


def test_diacritics_and_case_do_not_matter(world: World, thread: Thread) -> None:
    zoe = thread.post("Zoë starts on Monday")
    plain = thread.post("ZOE confirmed")
    tess = world["emp_team"]
    for q in ("zoe", "Zoë", "ZOË", "zoe\u0308", "zo*"):
        assert found(tess, q) == [plain, zoe], q
    hit = search(tess, "zoe")["items"][1]
    assert hit["snippet"] == "Zoë starts on Monday"
    assert hit["highlights"] == [[0, 3]]


def test_the_subject_is_searched_too(world: World, thread: Thread) -> None:
    email = thread.post(
        "Please sign and return it by Friday.", channel="email", subject="Your offer letter"
    )
    tess = world["emp_team"]
    hit = search(tess, "letter")["items"][0]
    assert hit["message"]["id"] == email
    # Only the subject matched: the snippet is the subject.
    assert (hit["snippet"], hit["highlights"]) == ("Your offer letter", [[11, 17]])
    hit = search(tess, "letter friday")["items"][0]
    assert hit["snippet"] == "Please sign and return it by Friday."
    assert hit["highlights"] == [[29, 35]]
    # Staff see the deliveries, as in the history; the candidate does not.
    assert hit["message"]["deliveries"][0]["channel"] == "email"
    assert search(world["cand"], "letter")["items"][0]["message"]["deliveries"] is None


LONG = (
    "Thanks for coming in yesterday. We spoke with the ward manager about the rota for the "
    "first month, the parking permit and the induction week, which starts with two days of "
    "training at the central site. After that, your references were checked and everything "
    "came back fine, so the contract is ready for you to sign whenever suits you. Let us "
    "know if anything in it is unclear and we will go through it together on a call."
)


def test_a_snippet_is_cut_around_the_matches(world: World, thread: Thread) -> None:
    thread.post(LONG)
    hit = search(world["emp_team"], "contract sign")["items"][0]
    # At most 200 characters, cut between words, "…" where text was left out (here only
    # before: the matches are near the end, so the snippet runs to it); highlights are ranges
    # in the snippet.
    snippet = hit["snippet"]
    assert snippet == (
        "…were checked and everything came back fine, so the contract is ready for you to sign "
        "whenever suits you. Let us know if anything in it is unclear and we will go through it "
        "together on a call."
    )
    assert [snippet[a:b] for a, b in hit["highlights"]] == ["contract", "sign"]
    assert hit["highlights"] == [[52, 60], [81, 85]]
    # The first words: no "…" before.
    hit = search(world["emp_team"], "yesterday")["items"][0]
    assert hit["snippet"].startswith("Thanks for coming in yesterday. We spoke")
    assert hit["snippet"].endswith("…")
    assert hit["highlights"] == [[21, 30]]


def test_a_snippet_is_plain_text_on_one_line(world: World, thread: Thread) -> None:
    thread.post("First line\nsecond line with the salary\tfigure")
    hit = search(world["emp_team"], "salary")["items"][0]
    assert hit["snippet"] == "First line second line with the salary figure"
    assert hit["highlights"] == [[32, 38]]


def test_equal_matches_come_newest_first(world: World, thread: Thread, clock: FrozenClock) -> None:
    first = thread.post("Reminder: bring your passport")
    second = thread.post("Reminder: bring your passport")
    # Sent at the same instant: the later id is the newer.
    third = sent(world["emp_team"].send(thread.id, "Reminder: bring your passport"))["id"]
    assert found(world["emp_team"], "passport") == [third, second, first]


def test_pages_cover_every_match_once_across_windows(
    world: World, thread: Thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows of 3 matches: 8 matches are ranked in three windows, newest window first.
    monkeypatch.setattr(queries, "WINDOW", 3)
    ids = [thread.post("budget " * (1 + i % 3) + "approved") for i in range(8)]
    tess = world["emp_team"]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = search(tess, "budget", **params)
        seen += [item["message"]["id"] for item in page["items"]]
        pages += 1
        if pages == 1:
            # Sent after the first page: not mixed into this walk.
            thread.post("budget approved again")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    # Within each window, best first (more "budget" in the same length), then newest.
    assert seen[:3] == [ids[5], ids[7], ids[6]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "?!\u2026\u2013 _"}, "q"),
        ({"q": "a" * 201}, "q"),
        ({"q": "x", "limit": 0}, "limit"),
        ({"q": "x", "limit": 51}, "limit"),
        ({"q": "x", "cursor": "nonsense"}, "cursor"),
        ({"q": "x", "cursor": "eyJiIjoxfQ"}, "cursor"),  # {"b":1}
        ({"q": "x", "cursor": "eyJiIjotMSwibyI6MH0"}, "cursor"),  # {"b":-1,"o":0}
        ({"q": "x", "cursor": "eyJiIjp0cnVlLCJvIjowfQ"}, "cursor"),  # {"b":true,"o":0}
        ({"q": "x", "conversation": 0}, "conversation"),
    ],
)
def test_bad_input_is_a_422(world: World, params: dict[str, Any], field: str) -> None:
    r = world["emp_team"].get("/api/v1/search", **params)
    error = body(r, 422)["error"]
    assert field in error["fields"], error


def test_q_is_required(world: World) -> None:
    r = world["emp_team"].get("/api/v1/search")
    assert "q" in body(r, 422)["error"]["fields"]


def test_a_query_of_200_characters_is_fine(world: World, thread: Thread) -> None:
    alpha = thread.post("alpha")
    # A token over 64 characters is ignored, as the index ignores it.
    assert found(world["emp_team"], "alpha " + "b" * 194) == [alpha]
    assert found(world["emp_team"], "alpha" + " " * 195) == [alpha]


def test_filters(world: World, thread: Thread) -> None:
    app1 = thread.post("Schedule the onboarding call")
    partners = start(world["emp_team"], "job_partners", job="job1")
    shared = sent(world["emp_team"].send(partners, "Onboarding for all partners"))["id"]
    tess = world["emp_team"]
    assert found(tess, "onboarding") == [shared, app1]
    assert found(tess, "onboarding", conversation=thread.id) == [app1]
    assert found(tess, "onboarding", job="job1") == [shared, app1]
    assert found(tess, "onboarding", candidate="cand") == [app1]
    assert found(tess, "onboarding", candidate="cand", job="job1") == [app1]
    # Unknown job or candidate: nothing, as in the inbox (existence is not told).
    assert found(tess, "onboarding", job="nope") == []
    assert found(tess, "onboarding", candidate="cand2") == []
    # A conversation the caller is not in: 404, as for its history.
    r = world["sp_out"].get("/api/v1/search", q="onboarding", conversation=thread.id)
    assert body(r, 404)["error"]["code"] == "not_found"
    r = world["sp_out"].get("/api/v1/search", q="onboarding", conversation=999999)
    assert body(r, 404)["error"]["code"] == "not_found"


def test_deleting_for_everyone_removes_it_from_the_index(
    world: World, thread: Thread, db: Database
) -> None:
    gone = thread.post("The secret salary figure")
    kept = thread.post("Another salary note")
    assert found(world["cand"], "salary") == [kept, gone]
    r = world["emp_team"].delete(f"/api/v1/messages/{gone}", **{"for": "everyone"})
    assert r.status_code == 204, r.text
    assert found(world["cand"], "salary") == [kept]
    assert found(world["emp_team"], "secret") == []
    with db.read() as session:
        column = "rowid" if session.get_bind().dialect.name == "sqlite" else "message_id"
        rows = session.execute(text(f"SELECT {column} FROM message_search")).scalars().all()
    assert sorted(rows) == [kept]


def test_the_same_answer_on_both_databases(world: World, thread: Thread) -> None:
    """The whole answer, exactly: this test passes on SQLite and on PostgreSQL alike."""
    move = thread.post("Can we move the interview to Tuesday afternoon?", who="cand")
    panel = thread.post("Tuesday works. The interview panel is three people.")
    email = thread.post(
        "Interviewing on Tuesday: bring your certificates", channel="email", subject="Hi"
    )
    answer = search(world["emp_team"], "interviews tuesday", limit=2)
    assert answer["next_cursor"] is not None
    for item in answer["items"]:
        item["message"].pop("created_at")
    conversation = {
        "id": thread.id,
        "title": "Carla Candidate · Registered Nurse",
        "kind": "application",
    }
    # Each matches both words once; "tuesday" exactly, "interviews" in another form. The
    # fewer words a message has, the better it ranks: 4 (move), 5 (email: with its subject),
    # 6 (panel).
    assert answer["items"] == [
        {
            "message": {
                "id": move,
                "conversation": thread.id,
                "author": {"id": "cand", "name": "Carla Candidate", "kind": "candidate"},
                "body": "Can we move the interview to Tuesday afternoon?",
                "subject": None,
                "channel": "app",
                "deleted": False,
                "deliveries": None,
                "attachments": [],
            },
            "conversation": conversation,
            "snippet": "Can we move the interview to Tuesday afternoon?",
            "highlights": [[16, 25], [29, 36]],
        },
        {
            "message": {
                "id": email,
                "conversation": thread.id,
                "author": {"id": "emp_team", "name": "Tess Team", "kind": "staff"},
                "body": "Interviewing on Tuesday: bring your certificates",
                "subject": "Hi",
                "channel": "email",
                "deleted": False,
                "deliveries": [
                    {
                        "recipient": "cand",
                        "channel": "email",
                        "status": "queued",
                        "until": None,
                        "attempts": 0,
                        "last_error": None,
                        "error_code": None,
                    }
                ],
                "attachments": [],
            },
            "conversation": conversation,
            "snippet": "Interviewing on Tuesday: bring your certificates",
            "highlights": [[0, 12], [16, 23]],
        },
    ]
    rest = search(world["emp_team"], "interviews tuesday", limit=2, cursor=answer["next_cursor"])
    assert [i["message"]["id"] for i in rest["items"]] == [panel]
    assert rest["items"][0]["snippet"] == "Tuesday works. The interview panel is three people."
    assert rest["items"][0]["highlights"] == [[0, 7], [19, 28]]
    assert rest["next_cursor"] is None
