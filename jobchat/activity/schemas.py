"""Activity as the API shows it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from jobchat.activity.models import Activity, ActivityKind
from jobchat.messages.schemas import AuthorOut


class ActivityOut(BaseModel):
    id: int
    conversation: int
    kind: ActivityKind = Field(
        description="`ended`: a staff member ended the conversation; `reopened`: a staff "
        "member's new message (`message`) reopened it."
    )
    actor: AuthorOut
    created_at: datetime
    after_message: int = Field(
        description="The conversation's newest message id when it happened (0: none yet); "
        "the line belongs after that message in the history."
    )
    message: int | None = Field(default=None, description="The message that reopened it.")

    @classmethod
    def of(cls, row: Activity) -> ActivityOut:
        return cls(
            id=row.id,
            conversation=row.conversation_id,
            kind=ActivityKind(row.kind),
            actor=AuthorOut.of(row.actor),
            created_at=row.created_at,
            after_message=row.after_message_id,
            message=row.message_id,
        )


class ActivityPage(BaseModel):
    items: list[ActivityOut]
