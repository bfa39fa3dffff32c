"""Attachments taken by a message, removed, and swept: the only code that changes attachment
rows once they exist (``intake.add_attachment`` writes them). Stored objects are deleted by a
job queued in the same transaction, so a file goes exactly when its removal commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from jobchat.errors import Invalid
from jobchat.files.models import Attachment
from jobchat.jobqueue.actions import enqueue
from jobchat.messages.models import Message

# The job that deletes stored objects (jobchat.files.jobs runs it); keys in its payload.
REMOVE_FILES_JOB = "files.remove"
# Keys one removal job deletes: an erasure of a busy candidate makes several small jobs, each
# quick to retry, rather than one long one.
KEYS_PER_JOB = 200
# An upload no message took within this time is removed.
UNCLAIMED_FOR = timedelta(days=1)
SWEEP_BATCH = 500
MAX_PER_MESSAGE = 10


def take_attachments(
    session: Session, *, author_id: int, conversation_id: int, ids: Sequence[int]
) -> list[Attachment]:
    """The attachments a new message of ``author_id`` in ``conversation_id`` may take, in the
    order given: each uploaded by the author into this conversation, not removed, not taken by
    another message, named once. 422 (field ``attachments``) otherwise. Locks the rows
    (PostgreSQL) so that two sends cannot take one file, nor the sweep remove it meanwhile."""
    if not ids:
        return []
    if len(ids) > MAX_PER_MESSAGE:
        raise Invalid({"attachments": f"at most {MAX_PER_MESSAGE} files per message"})
    if len(set(ids)) != len(ids):
        raise Invalid({"attachments": "each file may be named once"})
    rows = session.scalars(
        select(Attachment).where(Attachment.id.in_(ids)).order_by(Attachment.id).with_for_update()
    ).all()
    found = {a.id: a for a in rows}
    unknown = [
        i
        for i in ids
        if i not in found
        or found[i].uploader_id != author_id
        or found[i].conversation_id != conversation_id
    ]
    if unknown:
        raise Invalid(
            {
                "attachments": f"no upload of yours in this conversation has the id "
                f"{', '.join(map(str, unknown))}"
            },
            code="invalid_attachments",
        )
    gone = [i for i in ids if found[i].removed_at is not None]
    if gone:
        raise Invalid(
            {"attachments": f"removed (upload it again): {', '.join(map(str, gone))}"},
            code="invalid_attachments",
        )
    taken = [i for i in ids if found[i].message_id is not None]
    if taken:
        raise Invalid(
            {"attachments": f"already sent with another message: {', '.join(map(str, taken))}"},
            code="invalid_attachments",
        )
    return [found[i] for i in ids]


def claim_attachments(message: Message, attachments: list[Attachment]) -> None:
    """The new message takes ``attachments`` (from take_attachments), in their order. The
    message's list is set here, so rendering it costs no query (none at all without files)."""
    for position, attachment in enumerate(attachments):
        attachment.message_id = message.id
        attachment.position = position
    set_committed_value(message, "attachments", list(attachments))


def remove_attachments(session: Session, which: Sequence[int] | Select[Any], now: datetime) -> int:
    """Mark the attachments ``which`` names (ids, or a SELECT of ids: an erasure's "everything
    this candidate uploaded") removed, and queue the deletion of their stored objects in the
    caller's transaction. No longer served from the commit on. Returns how many were removed;
    ones removed already are left as they are."""
    if isinstance(which, Select):
        named = Attachment.id.in_(which)
    else:
        if not which:
            return 0
        named = Attachment.id.in_(list(which))
    removed = session.execute(
        update(Attachment)
        .where(named, Attachment.removed_at.is_(None))
        .values(removed_at=now)
        .returning(Attachment.storage_key, Attachment.thumbnail_key)
        .execution_options(synchronize_session=False)
    ).all()
    _queue_removal(session, [key for row in removed for key in row if key is not None], now)
    return len(removed)


def remove_message_attachments(session: Session, message_id: int, now: datetime) -> int:
    """A message deleted for everyone: its files are no longer served, and deleted."""
    return remove_attachments(
        session, select(Attachment.id).where(Attachment.message_id == message_id), now
    )


def sweep_unclaimed(session: Session, now: datetime) -> int:
    """Delete (rows and, by a job, stored objects) uploads that no message took within
    UNCLAIMED_FOR; at most SWEEP_BATCH a call. A send that takes one at the same moment holds
    its row locked, so the row is either taken or gone, never both."""
    due = (
        select(Attachment.id)
        .where(Attachment.message_id.is_(None), Attachment.created_at < now - UNCLAIMED_FOR)
        .order_by(Attachment.id)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    gone = session.execute(
        delete(Attachment)
        .where(Attachment.id.in_(due), Attachment.message_id.is_(None))
        .returning(Attachment.storage_key, Attachment.thumbnail_key, Attachment.removed_at)
        .execution_options(synchronize_session=False)
    ).all()
    keys = [
        key
        for storage_key, thumbnail_key, removed_at in gone
        if removed_at is None  # a removed one's objects were queued for deletion already
        for key in (storage_key, thumbnail_key)
        if key is not None
    ]
    _queue_removal(session, keys, now)
    return len(gone)


def _queue_removal(session: Session, keys: list[str], now: datetime) -> None:
    for start in range(0, len(keys), KEYS_PER_JOB):
        enqueue(session, REMOVE_FILES_JOB, {"keys": keys[start : start + KEYS_PER_JOB]}, now=now)
