"""What the scheduled-messages API takes and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from jobchat.inputs import Line, Text
from jobchat.messages.models import Channel
from jobchat.scheduling.models import ScheduledMessage, ScheduledStatus


class ScheduledOut(BaseModel):
    id: int = Field(description="The scheduled message's id.")
    conversation: int = Field(description="The conversation it is (or was) to be posted in.")
    send_at: datetime = Field(description="When it is posted (UTC).")
    body: str = Field(description="The text to be posted.")
    subject: str | None = Field(description="The email subject, if any.")
    channel: Channel = Field(description="app, email or sms: how it goes out.")
    status: ScheduledStatus = Field(
        description="scheduled (waiting), sent (posted: see message), failed (see reason), "
        "cancelled."
    )
    message: int | None = Field(description="The message it was posted as, once sent.")
    reason: str | None = Field(
        description="Why it was not posted (the author could no longer post there), if failed."
    )
    created_at: datetime = Field(description="When it was scheduled.")
    updated_at: datetime = Field(description="When it last changed (edited, sent, failed...).")

    @classmethod
    def of(cls, row: ScheduledMessage) -> ScheduledOut:
        return cls(
            id=row.id,
            conversation=row.conversation_id,
            send_at=row.send_at,
            body=row.body,
            subject=row.subject,
            channel=Channel(row.channel),
            status=ScheduledStatus(row.status),
            message=row.message_id,
            reason=row.reason,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ScheduledList(BaseModel):
    items: list[ScheduledOut] = Field(description="Soonest first.")
    next_cursor: int | None = Field(
        description="Pass as `after` for the next page; null when this is the last."
    )


class ScheduledPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    send_at: datetime | None = Field(
        default=None,
        description="A new time: ISO 8601 (without an offset: UTC), in the future, at most a "
        "year ahead.",
    )
    body: Text | None = Field(default=None, description="A new text (checked as a send would).")
    subject: Line | None = Field(
        default=None, description="A new subject (email); an empty one removes it."
    )
