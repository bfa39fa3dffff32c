"""A new message's row, written by one prepared statement instead of the unit of work.

Flushing one new ``Message`` through the session cost a send about a tenth of its CPU at 32
senders (bench/bench_send.py: the unit of work sorting, diffing and bookkeeping one object),
more than the INSERT it ends in. Here the row goes straight to the driver's cursor
(``jobchat.db.prepared``), and only then is the object made, with every column's value, as
loading makes one (``jobchat.db.loaded``): nothing is left for a flush to write, and reading
it back costs nothing. Building it through the model's instrumented constructor and making
that loaded after (``make_transient_to_detached``, ``Session.add``) was 5% of a send's CPU at
32 senders (bench_send.py --py-spy).

The idempotency key is kept by the same statement: ``ON CONFLICT (author_id, idempotency_key)
DO NOTHING`` writes nothing when the author already stored a message with that key (a retry,
or a concurrent one that won the race), so no savepoint is needed to survive the conflict.
NULL keys never conflict. Both databases speak this form (SQLite since 3.24, RETURNING since
3.35; PostgreSQL waits for a concurrent insert of the same key to commit or roll back, then
decides).

The message's search index entry is written with it (``jobchat.search.index``): on PostgreSQL by
the same statement (the INSERT of the message and that of its entry, INSERT ... SELECT from it,
CTEs of one query, so a message its key already stored indexes nothing either), each statement
being a round trip and about 0.1 ms of the driver's and the database's CPU
(bench/bench_send.py); SQLite's index is an FTS5 table a CTE cannot write, so there it is a
second statement. The same query then asks who beyond the conversation could hear of the
message (``jobchat.messages.audience``), which the send asks next: one round trip less again.
On SQLite the INSERT asks it in its RETURNING: one statement less there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import ReturningInsert

from jobchat.db.loaded import Loader
from jobchat.db.prepared import Prepared
from jobchat.directory.models import User
from jobchat.messages.audience import (
    ASK,
    RETURNED,
    Audience,
    answered,
    answered_returning,
    ask_params,
)
from jobchat.messages.models import Delivery, Message
from jobchat.search.index import add_entry, entries_of, new_entry

_MESSAGES = cast(Table, Message.__table__)

# What a new message is given; every other column starts empty (None).
_GIVEN = (
    "conversation_id",
    "author_id",
    "body",
    "subject",
    "channel",
    "created_at",
    "idempotency_key",
)
_EMPTY = tuple(c.key for c in _MESSAGES.columns if c.key not in _GIVEN and c.key != "id")
_NONE = dict.fromkeys(_EMPTY)
_LOADED = Loader(Message)


def _insert(dialect: Any) -> ReturningInsert[tuple[int]]:
    given = {key: bindparam(f"b_{key}", type_=_MESSAGES.c[key].type) for key in _GIVEN}
    insert: ReturningInsert[tuple[int]] = (
        dialect.insert(_MESSAGES)
        .values(given)
        .on_conflict_do_nothing(index_elements=[_MESSAGES.c.author_id, _MESSAGES.c.idempotency_key])
        .returning(_MESSAGES.c.id)
    )
    return insert


# The channels of the messages a transaction sent, in its session's info: the metrics count them
# once it commits (jobchat.ops.metrics), and forget them if it rolls back.
SENT_CHANNELS = "jobchat_sent_channels"

# PostgreSQL's, for a message with no index entry (one made only of attachments); SQLite's asks
# who could hear of it in its RETURNING.
_INSERT = Prepared(_insert(postgresql))
_INSERT_ASKING = Prepared(_insert(sqlite).returning(*RETURNED))


def _insert_indexed_asking() -> Select[Any]:
    """PostgreSQL: the message and its index entry, returning the new id with the rows of who
    could hear of it (``jobchat.messages.audience.ASK``); nothing when its key was used
    already. A data-modifying CTE runs once whether or not the query reads it."""
    inserted = _insert(postgresql).cte("inserted")
    asked = ASK.subquery("asked")
    return (
        select(inserted.c.id, *asked.c)
        .select_from(inserted.join(asked, true()))
        .add_cte(entries_of(inserted).cte("indexed"))
    )


_INSERT_INDEXED_ASKING = Prepared(_insert_indexed_asking())


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What a new message is given; every other column starts empty."""

    conversation_id: int
    author: User | None
    body: str
    subject: str | None
    channel: str
    created_at: datetime
    idempotency_key: str | None

    @property
    def author_id(self) -> int | None:
        return self.author.id if self.author is not None else None

    def given(self) -> dict[str, Any]:
        """Its columns' values, by column name (``_GIVEN``'s)."""
        return {key: getattr(self, key) for key in _GIVEN}


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing a message came to."""

    # None when its author already had a message with its idempotency key: nothing written.
    message: Message | None
    # Who could hear of it, when its INSERT asked too (always but on PostgreSQL for a message
    # with no index entry); else None: ask ``jobchat.messages.audience.audience``.
    audience: Audience | None = None


def store_message(
    session: Session,
    new: NewMessage,
    *,
    deliveries: Sequence[Delivery] = (),
    filenames: Sequence[str] = (),
) -> Stored:
    """Insert the message ``new`` describes and its search index entry (with ``filenames``, its
    files' names); the message is then a persistent object of ``session``, with its author
    and ``deliveries`` (new, not in the session) as its collection.

    Nothing is written when its author already has a message with its idempotency key. The
    same statement asks who could hear of it (on PostgreSQL, when there is an index entry).
    The deliveries are added to the session with the message's id, to be inserted by the next
    flush."""
    # Anything pending (a conversation just opened, say) is written first, as the unit of
    # work would have: the row below refers to it.
    session.flush()
    connection = session.connection()
    dialect = connection.dialect.name
    columns = new.given()
    given = {f"b_{key}": value for key, value in columns.items()}
    entry = new_entry(dialect, new.subject, new.body, filenames)
    heard_by = None
    if dialect == "sqlite":
        asked = ask_params(new.conversation_id, new.author_id, new.created_at)
        inserted = _INSERT_ASKING.run(connection, given | asked)
        if inserted.rows:
            _, anyone, webhooks = inserted.rows[0]
            heard_by = answered_returning(anyone, webhooks)
            if entry is not None:
                add_entry(connection, inserted.rows[0][0], entry)
    elif entry is not None:
        asked = ask_params(new.conversation_id, new.author_id, new.created_at)
        inserted = _INSERT_INDEXED_ASKING.run(connection, given | entry | asked)
        if inserted.rows:
            heard_by = answered([row[1:] for row in inserted.rows])
    else:
        inserted = _INSERT.run(connection, given)
    if not inserted.rows:
        return Stored(message=None)
    new_id = inserted.rows[0][0]
    columns |= _NONE
    columns["id"] = new_id
    message = _LOADED.make(session, [columns[key] for key in _LOADED.keys])
    set_committed_value(message, "author", new.author)
    set_committed_value(message, "deliveries", list(deliveries))
    for delivery in deliveries:
        # Set here: the collection above is as loaded, which the unit of work does not read.
        delivery.message_id = new_id
        session.add(delivery)
    return Stored(message=message, audience=heard_by)


def note_sent(session: Session, message: Message) -> None:
    """``message`` was sent in this session's transaction (for the metrics)."""
    session.info.setdefault(SENT_CHANNELS, []).append(message.channel)
