"""A message takes the files its author uploaded: in order, once, into the same conversation;
history and the event stream show them; deleting the message for everyone removes them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from jobchat.background import build_worker
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.events.models import Event, EventType
from jobchat.files.actions import remove_attachments
from jobchat.files.models import Attachment
from tests.files_support import PDF, TEXT, download, image_bytes, uploaded
from tests.support import World, assert_error, body, start, user_id


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def stored(settings: Settings) -> set[str]:
    folder = Path(settings.storage_url.removeprefix("file://"))
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def drain(client: TestClient) -> int:
    worker = build_worker(client.app.state.mail, name="test")  # type: ignore[attr-defined]
    return asyncio.run(worker.drain())


def shown(attachment: dict[str, Any]) -> dict[str, Any]:
    return {**attachment, "url": f"/api/v1/attachments/{attachment['id']}"}


def test_a_message_takes_files_in_order_and_shows_them(world: World, chat: int) -> None:
    cand = world["cand"]
    cv = uploaded(cand, chat, "cv.pdf", PDF)
    photo = uploaded(cand, chat, "permit.png", image_bytes("PNG"))
    message = body(cand.send(chat, "CV and permit", attachments=[photo["id"], cv["id"]]), 201)
    assert message["attachments"] == [shown(photo), shown(cv)]
    history = body(world["emp_team"].messages(chat), 200)["items"]
    assert history[-1]["attachments"] == [shown(photo), shown(cv)]
    assert download(world["emp_team"], cv["id"]).content == PDF


def test_the_body_may_be_empty_with_files_only(world: World, chat: int) -> None:
    cv = uploaded(world["cand"], chat, "cv.pdf", PDF)
    message = body(
        world["cand"].post(f"/api/v1/conversations/{chat}/messages", {"attachments": [cv["id"]]}),
        201,
    )
    assert message["body"] == "" and [a["id"] for a in message["attachments"]] == [cv["id"]]
    message = body(
        world["cand"].send(
            chat, "   ", attachments=[uploaded(world["cand"], chat, "b.txt", TEXT)["id"]]
        ),
        201,
    )
    assert message["body"] == ""
    r = world["cand"].post(f"/api/v1/conversations/{chat}/messages", {"attachments": []})
    assert_error(r, 422, fields={"body"})


def test_the_created_event_carries_the_files(world: World, chat: int, db: Database) -> None:
    cv = uploaded(world["cand"], chat, "cv.pdf", PDF)
    message = body(world["cand"].send(chat, "CV", attachments=[cv["id"]]), 201)
    with db.read() as session:
        event = session.scalars(
            select(Event).where(
                Event.type == EventType.message_created, Event.message_id == message["id"]
            )
        ).one()
        assert event.data["attachments"] == [shown(cv)]


def test_a_retry_with_the_same_key_is_stored_once(world: World, chat: int) -> None:
    cand = world["cand"]
    cv = uploaded(cand, chat, "cv.pdf", PDF)
    first = body(cand.send(chat, "CV", attachments=[cv["id"]], idempotency_key="k1"), 201)
    again = cand.send(chat, "CV", attachments=[cv["id"]], idempotency_key="k1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first
    other = uploaded(cand, chat, "b.txt", TEXT)
    r = cand.send(chat, "CV", attachments=[other["id"]], idempotency_key="k1")
    assert_error(r, 409, "idempotency_key_reused")
    r = cand.send(chat, "CV", idempotency_key="k1")
    assert_error(r, 409, "idempotency_key_reused")


def test_files_from_elsewhere_are_refused(world: World, chat: int) -> None:
    cand, team = world["cand"], world["emp_team"]
    other_chat = start(world["sp_in"], "candidate_partner", candidate="cand")
    elsewhere = uploaded(cand, other_chat, "cv.pdf", PDF)
    theirs = uploaded(team, chat, "offer.pdf", PDF)
    mine = uploaded(cand, chat, "cv.pdf", PDF)
    for ids in ([elsewhere["id"]], [theirs["id"]], [999_999], [mine["id"], mine["id"]]):
        r = cand.send(chat, "CV", attachments=ids)
        assert_error(r, 422, fields={"attachments"})
    body(cand.send(chat, "CV", attachments=[mine["id"]]), 201)
    r = cand.send(chat, "CV again", attachments=[mine["id"]])
    assert_error(r, 422, fields={"attachments"})
    assert "already sent" in r.json()["error"]["fields"]["attachments"]
    eleven = [uploaded(cand, chat, f"{i}.txt", TEXT)["id"] for i in range(11)]
    assert_error(cand.send(chat, "Many", attachments=eleven), 422, fields={"attachments"})
    # Nothing of the refused sends was kept: the ten first can still go together.
    message = body(cand.send(chat, "Ten", attachments=eleven[:10]), 201)
    assert [a["id"] for a in message["attachments"]] == eleven[:10]


def test_attachments_cannot_be_scheduled_yet(world: World, chat: int, clock: FrozenClock) -> None:
    cv = uploaded(world["emp_team"], chat, "cv.pdf", PDF)
    send_at = (clock.now() + timedelta(hours=1)).isoformat()
    r = world["emp_team"].send(chat, "Later", attachments=[cv["id"]], send_at=send_at)
    assert_error(r, 422, fields={"attachments"})


def test_delete_for_everyone_removes_the_files(
    world: World, chat: int, client: TestClient, settings: Settings
) -> None:
    cand = world["cand"]
    photo = uploaded(cand, chat, "permit.png", image_bytes("PNG"))
    kept = uploaded(cand, chat, "cv.pdf", PDF)
    message = body(cand.send(chat, "Permit", attachments=[photo["id"]]), 201)
    body(cand.send(chat, "CV", attachments=[kept["id"]]), 201)
    before = stored(settings)
    assert len(before) == 3  # the photo, its thumbnail, the CV
    assert (
        cand.delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"}).status_code == 204
    )
    for who in ("cand", "emp_team"):
        assert_error(download(world[who], photo["id"]), 404, "not_found")
    history = body(world["emp_team"].messages(chat), 200)["items"]
    assert [m["attachments"] for m in history if m["id"] == message["id"]] == [[]]
    assert drain(client) >= 1
    assert len(stored(settings)) == 1
    assert download(world["emp_team"], kept["id"]).content == PDF


def test_delete_for_me_hides_the_files_from_that_member_only(world: World, chat: int) -> None:
    cv = uploaded(world["cand"], chat, "cv.pdf", PDF)
    message = body(world["cand"].send(chat, "CV", attachments=[cv["id"]]), 201)
    r = world["emp_team"].delete(f"/api/v1/messages/{message['id']}", **{"for": "me"})
    assert r.status_code == 204
    # Gone from their history, so its files are not found for them either; the others keep it.
    assert_error(download(world["emp_team"], cv["id"]), 404, "not_found")
    assert download(world["emp_admin"], cv["id"]).status_code == 200
    assert download(world["cand"], cv["id"]).status_code == 200


def test_uploads_no_message_took_are_swept_after_a_day(
    world: World,
    chat: int,
    client: TestClient,
    clock: FrozenClock,
    settings: Settings,
    db: Database,
) -> None:
    cand = world["cand"]
    taken = uploaded(cand, chat, "cv.pdf", PDF)
    body(cand.send(chat, "CV", attachments=[taken["id"]]), 201)
    old = uploaded(cand, chat, "old.png", image_bytes("PNG"))
    clock.advance(hours=23)
    recent = uploaded(cand, chat, "recent.txt", TEXT)
    drain(client)
    assert len(stored(settings)) == 4
    clock.advance(hours=2)
    drain(client)
    assert len(stored(settings)) == 2  # the sent CV and the recent upload
    assert_error(download(cand, old["id"]), 404, "not_found")
    assert download(cand, recent["id"]).status_code == 200
    assert download(cand, taken["id"]).status_code == 200
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 2
    assert_error(cand.send(chat, "late", attachments=[old["id"]]), 422, fields={"attachments"})


def test_history_loads_the_files_of_a_page_in_one_query(
    world: World, chat: int, db: Database
) -> None:
    cand = world["cand"]

    def attachment_reads_for_history() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            # (The event stream's poller reads in the background: only reads of the files
            # are counted.)
            statement = str(args[2])
            if "FROM attachments" in statement:
                seen.append(statement)

        sqlalchemy_event.listen(db.engine, "before_cursor_execute", count)
        try:
            body(world["emp_team"].messages(chat), 200)
        finally:
            sqlalchemy_event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    body(cand.send(chat, "one", attachments=[uploaded(cand, chat, "a.txt", TEXT)["id"]]), 201)
    one = attachment_reads_for_history()
    for i in range(6):
        files = [uploaded(cand, chat, f"{i}-{j}.txt", TEXT)["id"] for j in range(2)]
        body(cand.send(chat, f"more {i}", attachments=files), 201)
    assert attachment_reads_for_history() == one == 1


def test_removing_a_persons_uploads_takes_their_files_away(
    world: World,
    chat: int,
    client: TestClient,
    db: Database,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    """What an erasure (issue 19) calls: every file the candidate uploaded, sent or not."""
    cand, team = world["cand"], world["emp_team"]
    sent_cv = uploaded(cand, chat, "cv.pdf", PDF)
    body(cand.send(chat, "CV", attachments=[sent_cv["id"]]), 201)
    unsent = uploaded(cand, chat, "draft.png", image_bytes("PNG"))
    offer = uploaded(team, chat, "offer.pdf", PDF)
    body(team.send(chat, "Offer", attachments=[offer["id"]]), 201)
    with db.write() as session:
        removed = remove_attachments(
            session,
            select(Attachment.id).where(Attachment.uploader_id == user_id(db, "cand")),
            clock.now(),
        )
    assert removed == 2
    assert_error(download(team, sent_cv["id"]), 404, "not_found")
    assert_error(download(cand, unsent["id"]), 404, "not_found")
    history = body(team.messages(chat), 200)["items"]
    assert [m["attachments"] for m in history] == [[], [shown(offer)]]
    drain(client)
    assert len(stored(settings)) == 1  # the employer's offer
    with db.write() as session:
        assert remove_attachments(session, [sent_cv["id"], unsent["id"]], clock.now()) == 0
    clock.advance(hours=25)
    drain(client)  # the sweep takes the unsent row too; its objects went already
    assert len(stored(settings)) == 1
