"""Who beyond its conversation hears of a new message, asked by one statement
(jobchat.messages.audience): anyone who could be pushed or texted, and the enabled webhooks,
whatever the number of either."""

from __future__ import annotations

import json
from datetime import timedelta

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.messages.audience import Audience, audience
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
    with db.read() as session:
        return audience(
            session,
            conversation_id=chat,
            author_id=user_id(db, author),
            sent_at=clock.now() + timedelta(seconds=1),
        )


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
