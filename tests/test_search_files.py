"""A file's name is searched with its message: a recruiter finds "the CV" by its name even when
the message only said "here is my resume"; the snippet is then the name, with the match highlighted.
``jobchat search reindex`` indexes the names too. SQLite and PostgreSQL."""

from __future__ import annotations

from jobchat.db.engine import Database
from jobchat.search.actions import do_reindex
from tests.files_support import PDF, uploaded
from tests.support import As, World, body, sent, start


def search(user: As, q: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = body(user.get("/api/v1/search", q=q), 200)["items"]
    return items


def test_a_file_is_found_by_its_name(world: World) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    cv = uploaded(world["cand"], chat, "Carla_Okafor_CV.pdf", PDF)
    message = sent(world["cand"].send(chat, "Here is my resume", attachments=[cv["id"]]))

    [hit] = search(world["emp_team"], "okafor cv")

    assert hit["message"]["id"] == message["id"]  # type: ignore[index]
    assert hit["snippet"] == "Carla_Okafor_CV.pdf"
    assert hit["highlights"] == [[6, 12], [13, 15]]
    # The text still wins the snippet when it matches.
    assert search(world["emp_team"], "resume")[0]["snippet"] == "Here is my resume"
    # Nobody outside the conversation finds it by its name either.
    assert search(world["emp_other"], "okafor") == []


def test_reindex_keeps_the_names(world: World, db: Database) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    cv = uploaded(world["cand"], chat, "Offer_letter_signed.pdf", PDF)
    sent(world["cand"].send(chat, "Done!", attachments=[cv["id"]]))

    with db.write() as session:
        assert do_reindex(session) >= 1

    [hit] = search(world["emp_team"], "signed")
    assert hit["snippet"] == "Offer_letter_signed.pdf"
