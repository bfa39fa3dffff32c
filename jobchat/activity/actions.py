"""Recording activity: called by the actions that end and reopen a conversation, inside their
transaction, so the line exists exactly when the change does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.activity.models import Activity, ActivityKind
from jobchat.activity.schemas import ActivityOut
from jobchat.directory.models import User
from jobchat.privacy.audit import Party, record
from jobchat.privacy.models import AuditAction, PartyType

# Both are in the audit log: the line in the thread says so to its members, the entry to admins.
_AUDITED = {
    ActivityKind.ended: AuditAction.conversation_ended,
    ActivityKind.reopened: AuditAction.conversation_reopened,
}


def record_activity(
    session: Session,
    *,
    conversation_id: int,
    kind: ActivityKind,
    actor: User,
    after_message_id: int | None,
    now: datetime,
    message_id: int | None = None,
) -> dict[str, object]:
    """Write the line; answer it as the API shows it, for the event that announces it."""
    row = Activity(
        conversation_id=conversation_id,
        kind=kind,
        actor_id=actor.id,
        actor=actor,
        after_message_id=after_message_id or 0,
        message_id=message_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    record(
        session,
        _AUDITED[kind],
        now=now,
        actor=Party.person(actor),
        subject=Party(PartyType.conversation, conversation_id),
        details={"message": message_id} if message_id is not None else {},
    )
    return ActivityOut.of(row).model_dump(mode="json")
