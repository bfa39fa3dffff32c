"""A candidate's export: everything jobchat holds about them, as one JSON document.

The document is written out as it is read, a batch of rows at a time, so that a candidate
with ten thousand messages costs the memory of one batch, not of ten thousand ORM objects and
their rendering (bench/bench_export.py measures it). It is read in one transaction (a snapshot:
SQLite's read transaction, PostgreSQL's REPEATABLE READ), so that it is consistent however
long the client takes to read it.

What is in it is the contract's "Export"; what each part means is documented on the models
in jobchat.privacy.schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from jobchat.conversations.models import Conversation, Kind, Status
from jobchat.db.engine import Database
from jobchat.directory.models import User, UserKind
from jobchat.directory.queries import user_by_ext
from jobchat.directory.schemas import UserOut
from jobchat.errors import NotFound
from jobchat.messages.models import Channel, DeliveryStatus, Message
from jobchat.messages.schemas import AuthorOut
from jobchat.privacy.audit import Party, record
from jobchat.privacy.models import AuditAction
from jobchat.privacy.queries import (
    consent_changes,
    export_conversations,
    export_counts,
    export_messages,
    received_emails,
    received_texts,
    sent_emails,
)
from jobchat.privacy.schemas import (
    ExportAttachmentOut,
    ExportConsentChangeOut,
    ExportConversationHead,
    ExportDeliveryOut,
    ExportMessageOut,
    ReceivedEmailOut,
    ReceivedTextOut,
    SentEmailOut,
)
from jobchat.sms.queries import number_opt_out

T = TypeVar("T")

# Rows read (and rendered) at a time.
BATCH = 200

# The kinds no candidate is ever a member of (jobchat.conversations.membership): of those about
# a candidate, the agency's threads with the employer.
STAFF_ONLY_KINDS = frozenset(
    {Kind.job_partner, Kind.job_partners, Kind.agency, Kind.agency_private}
)


def do_record_export(session: Session, ext_id: str, *, actor: Party, now: datetime) -> int:
    """The audit entry of an export of this candidate (404 for none), written before the
    export is: the id of the candidate."""
    candidate = user_by_ext(session, UserKind.candidate, ext_id)
    if candidate is None:
        raise NotFound("There is no candidate with that id.")
    conversations, messages = export_counts(session, candidate.id)
    record(
        session,
        AuditAction.candidate_exported,
        now=now,
        actor=actor,
        subject=Party.person(candidate),
        details={"conversations": conversations, "messages": messages},
    )
    return candidate.id


class _Head(BaseModel):
    candidate: UserOut
    deactivated_at: datetime | None
    exported_at: datetime


def export_document(db: Database, candidate_id: int, now: datetime) -> Iterator[str]:
    """The export (CandidateExport's shape), in pieces of JSON text."""
    # One snapshot for every statement (repeatable read on PostgreSQL, whose plain reads see a
    # snapshot per statement).
    with db.snapshot() as session:
        candidate = session.get_one(User, candidate_id)
        opted_out = number_opt_out(session, candidate.phone) is not None
        head = _Head(
            candidate=UserOut.of(candidate, sms_number_opted_out=opted_out),
            deactivated_at=candidate.deactivated_at,
            exported_at=now,
        )
        yield _opened(head)
        yield ',"consent_history":'
        yield from _array(
            _batches(
                lambda after: consent_changes(session, candidate_id, after=after, limit=BATCH),
                lambda change: change.id,
            ),
            lambda change: ExportConsentChangeOut(
                at=change.created_at,
                consented=change.consented,
                source=change.source,
                detail=change.detail,
                by=change.actor.ext_id if change.actor is not None else None,
            ),
        )
        yield ',"conversations":['
        # Their heads first: the batches of messages below let go of what they loaded.
        heads = [_head(conv, about) for conv, about in export_conversations(session, candidate_id)]
        for n, head_out in enumerate(heads):
            yield ("," if n else "") + _opened(head_out) + ',"messages":'
            author = None if head_out.about_candidate else candidate_id
            yield from _array(_message_batches(session, head_out.id, author), _message)
            yield "}"
        yield '],"emails_sent":'
        yield from _array(
            _batches(
                lambda after: sent_emails(session, candidate_id, after=after, limit=BATCH),
                lambda row: row[0].id,
            ),
            lambda row: SentEmailOut(
                kind=row[0].kind,
                conversation=row[0].conversation_id,
                message=row[1],
                address=row[0].address,
                sent_at=row[0].sent_at,
            ),
        )
        yield ',"emails_received":'
        yield from _array(
            _batches(
                lambda after: received_emails(session, candidate_id, after=after, limit=BATCH),
                lambda mail: mail.id,
            ),
            lambda mail: ReceivedEmailOut(
                conversation=mail.conversation_id,
                message=mail.message_id,
                from_address=mail.from_address,
                subject=mail.subject,
                outcome=mail.outcome,
                received_at=mail.received_at,
            ),
        )
        yield ',"texts_received":'
        yield from _array(
            _batches(
                lambda after: received_texts(session, candidate_id, after=after, limit=BATCH),
                lambda text: text.id,
            ),
            lambda text: ReceivedTextOut(
                conversation=text.conversation_id,
                message=text.message_id,
                from_number=text.from_number,
                body=text.body,
                outcome=text.outcome,
                received_at=text.received_at,
            ),
        )
        yield "}"


def _batches(fetch: Callable[[int], Sequence[T]], key: Callable[[T], int]) -> Iterator[list[T]]:
    """Every row ``fetch(after)`` gives, BATCH at a time, keyed by their ascending ids."""
    after = 0
    while True:
        rows = list(fetch(after))
        if rows:
            yield rows
        if len(rows) < BATCH:
            return
        after = key(rows[-1])


def _message_batches(
    session: Session, conversation_id: int, author_id: int | None
) -> Iterator[list[Message]]:
    return _batches(
        lambda after: export_messages(
            session, conversation_id, author_id=author_id, after=after, limit=BATCH
        ),
        lambda message: message.id,
    )


def _array(batches: Iterable[list[T]], render: Callable[[T], BaseModel]) -> Iterator[str]:
    """A JSON array of the rows, rendered, one piece of text per batch. Nothing of a batch is
    kept once it is written: the session's identity map holds objects weakly."""
    first = True
    yield "["
    for rows in batches:
        text = ",".join(render(row).model_dump_json() for row in rows)
        yield text if first else "," + text
        first = False
    yield "]"


def _opened(model: BaseModel) -> str:
    """The model as a JSON object still open, for more members to follow."""
    return model.model_dump_json()[:-1]


def _head(conv: Conversation, about: bool) -> ExportConversationHead:
    return ExportConversationHead(
        id=conv.id,
        kind=Kind(conv.kind),
        about_candidate=about,
        staff_only=Kind(conv.kind) in STAFF_ONLY_KINDS,
        job=conv.job.ext_id if conv.job is not None else None,
        application=conv.application.ext_id if conv.application is not None else None,
        partner=conv.partner.ext_id if conv.partner is not None else None,
        status=Status(conv.status),
        created_at=conv.created_at,
        ended_at=conv.ended_at,
    )


def _message(message: Message) -> ExportMessageOut:
    # A message deleted for everyone is exported with its words: deleting it hid it from
    # everyone in jobchat, but its body and subject are still stored (for the audit of what was
    # said), and what is stored about a person is what they have a right to a copy of. It is
    # marked by ``deleted_at``; erasure is what removes the words.
    return ExportMessageOut(
        id=message.id,
        author=AuthorOut.of(message.author),
        body=message.body,
        subject=message.subject,
        channel=Channel(message.channel),
        created_at=message.created_at,
        deleted_at=message.deleted_at,
        deliveries=[
            ExportDeliveryOut(
                recipient=d.recipient.ext_id,
                channel=Channel(d.channel),
                address=d.address,
                status=DeliveryStatus(d.status),
                attempts=d.attempts,
                error_code=d.error_code,
                last_error=d.last_error,
                created_at=d.created_at,
                updated_at=d.updated_at,
            )
            for d in message.deliveries
        ],
        attachments=[
            ExportAttachmentOut(
                id=a.id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                url=None if a.removed_at is not None else f"/api/v1/attachments/{a.id}",
                removed=a.removed_at is not None,
            )
            for a in message.attachments
        ],
    )
