"""Who beyond its conversation hears of a new message, asked in one statement: whether anyone
could be pushed or texted about it (then the send queues the notification ladder's job,
``jobchat.notifications.queue``) and which webhooks are enabled (those that take
``message.created`` are given it, ``jobchat.webhooks.events``).

They were two statements of every send. Each statement is a round trip and about 0.1 ms of the
driver's and the database's CPU (bench/bench_send.py on PostgreSQL), more than either question
costs to answer: the webhooks (a handful of rows at most) are joined to the one-row answer of
the other. The message's own INSERT asks it (jobchat.messages.store): on PostgreSQL as a CTE
joined to the new row (``ASK``), on SQLite, whose INSERT cannot be a CTE, in its RETURNING
(``RETURNED``: the webhooks as one JSON array).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from jobchat.db.prepared import Prepared
from jobchat.notifications.queue import ANYONE_TO_TELL
from jobchat.webhooks.events import ENABLED, ENABLED_COLUMNS
from jobchat.webhooks.models import Webhook

_anyone = select(ANYONE_TO_TELL.label("anyone")).subquery("anyone")
# One row with no webhook when none is enabled, else one row per enabled webhook. Parameters:
# conversation_id, author_id (0 for none), before (the message's time): ``ask_params``.
# PostgreSQL's send asks it in its message's INSERT (jobchat.messages.store).
ASK = select(_anyone.c.anyone, *ENABLED_COLUMNS).select_from(
    _anyone.outerjoin(cast(Table, Webhook.__table__), ENABLED)
)
_ASK = Prepared(ASK)
# The same as two columns of one row, for SQLite's RETURNING: anyone, and the enabled webhooks
# as a JSON array of [id, events as JSON text] (``answered_returning``). Each is a SELECT of
# its own: SQLAlchemy writes a RETURNING clause's columns without their tables' names, and
# unqualified names inside it would be read as the nearest table's ("id = user_id" within
# push_subscriptions); within a SELECT of their own they keep them.
_WEBHOOKS_JSON = select(func.json_group_array(func.json_array(*ENABLED_COLUMNS))).where(ENABLED)
RETURNED = (
    select(ANYONE_TO_TELL).scalar_subquery().label("anyone"),
    select(_WEBHOOKS_JSON.scalar_subquery()).scalar_subquery().label("webhooks"),
)


@dataclass(frozen=True, slots=True)
class Audience:
    # Someone other than the author could be pushed or texted about it.
    anyone_to_tell: bool
    # The enabled webhooks, (id, the events it takes as JSON text) each.
    webhooks: list[tuple[int, str]]


def audience(
    session: Session, *, conversation_id: int, author_id: int | None, sent_at: datetime
) -> Audience:
    """Who could hear of a message by ``author_id`` (None: nobody's) sent at ``sent_at``."""
    rows = _ASK.run(session.connection(), ask_params(conversation_id, author_id, sent_at)).rows
    return answered(rows)


def ask_params(conversation_id: int, author_id: int | None, sent_at: datetime) -> dict[str, Any]:
    """``ASK``'s parameters for a message by ``author_id`` (None: nobody's) sent at
    ``sent_at``."""
    return {"conversation_id": conversation_id, "author_id": author_id or 0, "before": sent_at}


def answered_returning(anyone: Any, webhooks: str) -> Audience:
    """The audience ``RETURNED``'s two values say."""
    return Audience(
        anyone_to_tell=bool(anyone),
        webhooks=[(hook_id, events) for hook_id, events in json.loads(webhooks)],
    )


def answered(rows: Sequence[Sequence[Any]]) -> Audience:
    """The audience ``ASK``'s rows (anyone, webhook id, its events) say."""
    return Audience(
        anyone_to_tell=bool(rows[0][0]),
        webhooks=[(hook_id, events) for _, hook_id, events in rows if hook_id is not None],
    )
