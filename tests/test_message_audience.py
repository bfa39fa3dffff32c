"""Who beyond its conversation hears of a new message, asked by one statement
(jobchat.messages.audience): anyone who could be pushed or texted, and the enabled webhooks,
whatever the number of either. The message's own INSERT asks it too (jobchat.messages.store:
on PostgreSQL in a CTE, on SQLite in its RETURNING), and answers alike."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.messages.audience import Audience, audience
from jobchat.messages.models import Channel
from jobchat.messages.store import NewMessage, store_message
from jobchat.webhooks.models import Webhook
from tests.notify_support import chat_fixture, subscribe
from tests.support import World, user_id

__all__ = ["chat_fixture"]


def _add_webhook(db: Database, clock: FrozenClock, events: list[str], *, disabled: bool) -> int:
    with db.write() as session:
        hook = Webhook(
            url="https://ats.example/hooks",
            events=events,
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            created_at=clock.now(),
            disabled_at=clock.now() if disabled else None,
        )
        session.add(hook)
        session.flush()
        return hook.id


def _heard(db: Database, chat: int, author: str, clock: FrozenClock) -> Audience:
    """Who could hear of a message by ``author`` sent a second from now; the message's INSERT
    asks the same and must answer alike."""
    with db.read() as session:
        asked = audience(
            session,
            conversation_id=chat,
            author_id=user_id(db, author),
            sent_at=clock.now() + timedelta(seconds=1),
        )
    stored = _heard_when_stored(db, chat, author, clock)
    assert stored is not None
    assert _sorted(stored) == _sorted(asked)
    return asked


class _Undone(Exception):
    pass


def _heard_when_stored(db: Database, chat: int, author: str, clock: FrozenClock) -> Audience | None:
    """What storing a message by ``author`` a second from now says of who could hear of it
    (the message rolled back after)."""
    heard = None
    with contextlib.suppress(_Undone), db.write() as session:
        user = session.get(User, user_id(db, author))
        assert user is not None
        new = NewMessage(
            conversation_id=chat,
            author=user,
            body="Are you free on Friday?",
            subject=None,
            channel=Channel.app,
            created_at=clock.now() + timedelta(seconds=1),
            idempotency_key=None,
        )
        stored = store_message(session, new)
        assert stored.message is not None
        heard = stored.audience
        raise _Undone
    return heard


def _sorted(heard: Audience) -> tuple[bool, list[tuple[int, str]]]:
    return heard.anyone_to_tell, sorted(heard.webhooks)


def test_nobody_to_tell_and_no_webhook(
    world: World, db: Database, chat: int, clock: FrozenClock
) -> None:
    assert _heard(db, chat, "emp_team", clock) == Audience(anyone_to_tell=False, webhooks=[])


def test_a_subscribed_member_and_every_enabled_webhook_with_its_events(
    world: World, db: Database, chat: int, clock: FrozenClock
) -> None:
    first = _add_webhook(db, clock, ["message.created"], disabled=False)
    _add_webhook(db, clock, ["message.created"], disabled=True)
    third = _add_webhook(db, clock, ["conversation.ended"], disabled=False)
    # Nobody else in the chat has a device yet; the webhooks are there all the same.
    heard = _heard(db, chat, "emp_team", clock)
    assert not heard.anyone_to_tell
    assert sorted((hook, json.loads(events)) for hook, events in heard.webhooks) == [
        (first, ["message.created"]),
        (third, ["conversation.ended"]),
    ]
    subscribe(db, clock, "cand")
    heard = _heard(db, chat, "emp_team", clock)
    assert heard.anyone_to_tell and len(heard.webhooks) == 2
    # The author's own device tells nobody else anything.
    assert not _heard(db, chat, "cand", clock).anyone_to_tell
