"""The history page as the API shows it, rendered from plain rows.

``history()`` (jobchat.messages.queries) loads ORM messages with their author, deliveries,
recipients and attachments in five statements, and the pages use it. The API's history route is
the hottest read after the inbox, and needs only columns: here the page and its authors come in
one statement (an outer join on the primary key), attachments in a second, and deliveries, which
only staff see and only email and SMS messages have, in a third when the page holds one. Each
message is plain data in ``MessageOut``'s shape, which the route writes as JSON
(``jobchat.plain_json``) without a model per message, author, delivery and attachment (a quarter
of the route's own work); what a deleted message shows is decided by ``shown`` for both.
tests/test_read_paths.py holds it byte for byte to the ORM path's JSON.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, exists, select
from sqlalchemy.orm import aliased

from jobchat.db.id_lists import in_ids
from jobchat.db.prepared import Prepared
from jobchat.directory.models import User
from jobchat.files.models import Attachment
from jobchat.messages.models import Channel, Delivery, DeliveryStatus, HiddenMessage, Message
from jobchat.messages.schemas import author_plain, shown
from jobchat.plain_json import Plain

_author = aliased(User, name="author")
_recipient = aliased(User, name="recipient")

_NEWEST_FIRST = (
    select(
        Message.id,
        Message.conversation_id,
        Message.body,
        Message.subject,
        Message.channel,
        Message.created_at,
        Message.deleted_at,
        _author.ext_id.label("author_ext"),
        _author.name.label("author_name"),
        _author.kind.label("author_kind"),
    )
    .outerjoin(_author, _author.id == Message.author_id)
    .where(
        Message.conversation_id == bindparam("conv_id"),
        # Deleted "for me" by the viewer: left out (a tombstone for everyone stays).
        ~exists().where(
            and_(
                HiddenMessage.message_id == Message.id,
                HiddenMessage.user_id == bindparam("viewer_id"),
            )
        ),
    )
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)
_NEWEST_BEFORE = _NEWEST_FIRST.where(Message.id < bindparam("before"))


class _Row(NamedTuple):
    """A row of ``_NEWEST_FIRST``, by name (the statements run on the driver's cursor, see
    ``jobchat.db.prepared``: a named tuple's columns read ten times faster than a Row's)."""

    id: int
    conversation_id: int
    body: str
    subject: str | None
    channel: str
    created_at: datetime
    deleted_at: datetime | None
    author_ext: str | None
    author_name: str | None
    author_kind: str | None


assert _Row._fields == tuple(c.key for c in _NEWEST_FIRST.selected_columns), "_Row out of step"
_RUN_NEWEST_FIRST = Prepared(_NEWEST_FIRST)
_RUN_NEWEST_BEFORE = Prepared(_NEWEST_BEFORE)

_ATTACHMENTS = Prepared(
    select(
        Attachment.message_id,
        Attachment.id,
        Attachment.filename,
        Attachment.content_type,
        Attachment.size,
    )
    # A removed file (its candidate erased) is no longer offered.
    .where(
        in_ids(Attachment.message_id, "ids"),
        Attachment.removed_at.is_(None),
    )
    .order_by(Attachment.message_id, Attachment.position, Attachment.id)
)

_DELIVERIES = Prepared(
    select(
        Delivery.message_id,
        _recipient.ext_id,
        Delivery.channel,
        Delivery.status,
        Delivery.held_until,
        Delivery.attempts,
        Delivery.last_error,
        Delivery.error_code,
    )
    .join(_recipient, _recipient.id == Delivery.recipient_id)
    .where(in_ids(Delivery.message_id, "ids"))
    .order_by(Delivery.message_id, Delivery.id)
)


def history_page(
    conn: Connection, viewer_id: int, conv_id: int, *, staff: bool, before: int | None, limit: int
) -> tuple[list[Plain], int | None]:
    """What ``history()`` pages for user ``viewer_id``, rendered as ``MessageOut``'s JSON data
    each: oldest first, and the cursor for the page before (None at the beginning). Deliveries
    are shown to ``staff`` only. ``conn``: a read's (``Database.reading``), or a session's
    (``connection_of``, which writes what the session holds first)."""
    params: dict[str, Any] = {"conv_id": conv_id, "viewer_id": viewer_id, "limit": limit + 1}
    if before is None:
        found = _RUN_NEWEST_FIRST.run(conn, params).rows
    else:
        found = _RUN_NEWEST_BEFORE.run(conn, params | {"before": before}).rows
    more = len(found) > limit
    rows = [_Row._make(row) for row in reversed(found[:limit])]
    if not rows:
        return [], None
    ids = [r.id for r in rows]
    files: defaultdict[int, list[Plain]] = defaultdict(list)
    for message_id, file_id, filename, content_type, size in _ATTACHMENTS.run(
        conn, {"ids": ids}
    ).rows:
        # AttachmentOut's fields, in its order.
        files[message_id].append(
            {
                "id": file_id,
                "filename": filename,
                "content_type": content_type,
                "size": size,
                "url": f"/api/v1/attachments/{file_id}",
            }
        )
    deliveries: defaultdict[int, list[Plain]] | None = None
    if staff:
        deliveries = defaultdict(list)
        sent = [r.id for r in rows if r.channel != Channel.app]
        if sent:
            sent_to = _DELIVERIES.run(conn, {"ids": sent}).rows
            for message_id, recipient, channel, status, held, attempts, error, code in sent_to:
                # DeliveryOut's fields, in its order.
                deliveries[message_id].append(
                    {
                        "recipient": recipient,
                        "channel": channel,
                        "status": status,
                        "until": held if status == DeliveryStatus.held else None,
                        "attempts": attempts,
                        "last_error": error,
                        "error_code": code,
                    }
                )
    page = [_message(r, files, deliveries) for r in rows]
    return page, (rows[0].id if more else None)


def _message(
    r: _Row,
    files: defaultdict[int, list[Plain]],
    deliveries: defaultdict[int, list[Plain]] | None,
) -> Plain:
    # What it shows once deleted is decided by ``shown``, as for MessageOut.build.
    deleted, body, subject = shown(r.body, r.subject, r.deleted_at)
    # MessageOut's fields, in its order.
    return {
        "id": r.id,
        "conversation": r.conversation_id,
        "author": author_plain(r.author_ext, r.author_name, r.author_kind),
        "body": body,
        "subject": subject,
        "channel": r.channel,
        "created_at": r.created_at,
        "deleted": deleted,
        # As MessageOut.of: staff see the deliveries of email and SMS messages.
        "deliveries": (
            deliveries.get(r.id, [])
            if deliveries is not None and r.channel != Channel.app
            else None
        ),
        "attachments": [] if deleted else files.get(r.id, []),
    }
