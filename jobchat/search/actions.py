"""Rebuilding the search index from the messages (``jobchat search reindex``)."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from jobchat.files.models import Attachment
from jobchat.messages.models import Message
from jobchat.search.index import index_many

# Messages read, tokenised and written per statement.
_BATCH = 2000


def do_reindex(session: Session) -> int:
    """Empty the index and index every message not deleted for everyone, in the caller's one
    transaction (searches meanwhile see the old index, then the new one, never half of it).
    Returns how many messages were indexed.

    For after a change of the tokenizer (stop words, stemmer version) or messages sent with
    indexing switched off."""
    connection = session.connection()
    connection.execute(text("DELETE FROM message_search"))
    after = count = 0
    while True:
        rows = connection.execute(
            select(Message.id, Message.subject, Message.body)
            .where(Message.deleted_at.is_(None), Message.id > after)
            .order_by(Message.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return count
        names: dict[int, list[str]] = {}
        for taken_by, filename in connection.execute(
            select(Attachment.message_id, Attachment.filename)
            .where(Attachment.message_id.in_([r.id for r in rows]), Attachment.removed_at.is_(None))
            .order_by(Attachment.message_id, Attachment.position)
        ):
            if taken_by is not None:  # always: the IN above matched it to a message
                names.setdefault(taken_by, []).append(filename)
        index_many(connection, [(r.id, r.subject, r.body) for r in rows], names)
        count += len(rows)
        after = rows[-1].id
