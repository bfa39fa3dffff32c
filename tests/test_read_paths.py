"""The API's fast read paths show exactly what the ORM paths show.

The inbox and history routes render from plain rows (``render_inbox``, ``history_page``) for
speed, the inbox straight to JSON (``page_json``); the pages and the other callers use
``inbox()`` + ``render_conversations()`` and ``history()`` + ``MessageOut.of``. Whatever the data
(every kind of conversation, email and SMS deliveries, attachments-free and deleted messages, one
hidden "for me"), filters and cursors, both give the same JSON."""

from __future__ import annotations

from sqlalchemy import select

from jobchat import plain_json
from jobchat.conversations.models import Kind, Member
from jobchat.conversations.queries import InboxQuery, inbox
from jobchat.conversations.render import page_json, render_conversations, render_inbox
from jobchat.conversations.schemas import ConversationPage
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.messages.history import history_page
from jobchat.messages.queries import history
from jobchat.messages.schemas import MessageOut, MessagePage
from tests.support import World, body, start, user_id


def _busy_world(world: World) -> list[int]:
    """Conversations of several kinds with app, email and SMS messages, a message deleted for
    everyone and one deleted "for me"."""
    team, cand, sp, agency = world["emp_team"], world["cand"], world["sp_in"], world["agency_user"]
    started = [
        (team, start(team, "application", application="app1")),
        (team, start(team, "application", application="app2")),
        (team, start(team, "job_partners", job="job1")),
        (team, start(team, "case", application="app1")),
        (team, start(team, "agency", application="app1")),
        (sp, start(sp, "candidate_partner", candidate="cand")),
        (team, start(team, "job_partner", job="job1", partner="tbb")),
    ]
    for i, (who, conv) in enumerate(started):
        for j in range(4):
            body(who.send(conv, f"message {i}.{j}"), 201)
    convs = [conv for _, conv in started]
    body(team.send(convs[0], "by email", channel="email", subject="Hello"), 201)
    body(team.send(convs[0], "by text", channel="sms"), 201)
    body(cand.send(convs[0], "a reply"), 201)
    gone = body(team.send(convs[3], "oops"), 201)["id"]
    assert team.delete(f"/api/v1/messages/{gone}", **{"for": "everyone"}).status_code == 204
    mine = body(agency.send(convs[4], "newest, hidden for me"), 201)["id"]
    assert team.delete(f"/api/v1/messages/{mine}", **{"for": "me"}).status_code == 204
    return convs


def test_inbox_page_is_the_same_through_both_paths(world: World, db: Database) -> None:
    _busy_world(world)
    queries = [
        InboxQuery(),
        InboxQuery(filter="unread"),
        InboxQuery(filter="messaged"),
        InboxQuery(filter="ended"),
        InboxQuery(kind=Kind.application),
        InboxQuery(job="job1"),
        InboxQuery(candidate="cand"),
        InboxQuery(application="app1"),
        InboxQuery(q="carla"),
        InboxQuery(job="no-such-job"),
    ]
    compared = 0
    # The fast path on its own connection, as the route reads (a filter by job, candidate or
    # application and the message hidden "for me" open its session).
    with db.read() as s, db.reading() as reading:
        for ext in ("emp_team", "emp_admin", "cand", "sp_in", "agency_user"):
            viewer = s.get_one(User, user_id(db, ext))
            for query in queries:
                old_cursor = new_cursor = None
                while True:
                    rows, old_next = inbox(s, viewer, query, limit=2, cursor=old_cursor)
                    old = ConversationPage(
                        items=render_conversations(s, viewer, rows), next_cursor=old_next
                    )
                    new = render_inbox(reading, viewer.id, query, limit=2, cursor=new_cursor)
                    assert page_json(new) == old.model_dump_json().encode()
                    assert new.names == [c.names for c in old.items]
                    compared += len(new.items)
                    if old_next is None:
                        break
                    old_cursor, new_cursor = old_next, new.next_cursor
    assert compared > 30


def test_history_page_is_the_same_through_both_paths(world: World, db: Database) -> None:
    convs = _busy_world(world)
    compared = 0
    with db.read() as s, db.reading() as reading:
        pairs = s.execute(
            select(Member.conversation_id, Member.user_id).where(Member.conversation_id.in_(convs))
        ).all()
        for conv_id, uid in pairs:
            viewer = s.get_one(User, uid)
            old_before = new_before = None
            while True:
                page, old_next = history(s, viewer, conv_id, before=old_before, limit=3)
                old = MessagePage(
                    items=[MessageOut.of(m, show_deliveries=viewer.is_staff) for m in page],
                    next_cursor=old_next,
                )
                items, new_next = history_page(
                    reading.connection,
                    viewer.id,
                    conv_id,
                    staff=viewer.is_staff,
                    before=new_before,
                    limit=3,
                )
                assert plain_json.page_json(items, new_next) == old.model_dump_json().encode()
                # And it is a MessagePage as documented.
                assert MessagePage.model_validate_json(plain_json.page_json(items, new_next)) == old
                compared += len(items)
                if old_next is None:
                    break
                old_before, new_before = old_next, new_next
    assert compared > 50
