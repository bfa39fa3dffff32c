"""A bulk message as the API takes and shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobchat.inputs import MAX_ID, ExtRef, Line, Moment, Text
from jobchat.messages.models import Channel
from jobchat.scheduling.bulk.models import MAX_RECIPIENTS, BulkMessage, BulkRecipient


class BulkMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applications: list[ExtRef] = Field(
        min_length=1,
        max_length=MAX_RECIPIENTS,
        description=f"External ids of the applications whose candidates get the message, 1 to "
        f"{MAX_RECIPIENTS}. A repeated id counts once (its first place).",
    )
    body: Text | None = Field(
        default=None,
        description="The message; it may hold merge fields, filled in for each candidate. "
        "Give this or `template`, not both.",
    )
    template: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None, description="A template's id, filled in for each candidate."
    )
    subject: Line | None = Field(
        default=None,
        description="For email (required there unless the template has one); may hold merge "
        "fields. Overrides the template's subject.",
    )
    channel: Channel = Field(description="app, email or sms: one channel for everyone.")
    send_at: Moment | None = Field(
        default=None,
        description="Start later: ISO 8601 with an offset, in the future, at most a year ahead.",
    )
    idempotency_key: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="A retry with the same key answers with the bulk message the first attempt "
        "made, and sends nothing again.",
    )


class SkippedOut(BaseModel):
    application: str = Field(description="The application's external id, as given.")
    code: str = Field(
        description="Why, for programs: unknown_application, not_allowed, job_closed, "
        "candidate_deactivated, no_email, sms_opted_out, sms_no_phone, sms_invalid_phone, "
        "sms_not_configured, missing_field, author_deactivated, too_long, invalid or "
        "send_failed (a problem on the server's side: send it again)."
    )
    reason: str = Field(description="Why, in a sentence for people.")


class RecipientOut(BaseModel):
    application: str = Field(description="The application's external id, as given.")
    status: Literal["pending", "sent", "skipped"] = Field(
        description="pending until its turn, then sent or skipped."
    )
    conversation: int | None = Field(description="The one-to-one chat the message went into.")
    message: int | None = Field(description="The message it got, once sent.")
    code: str | None = Field(default=None, description="Why it was skipped (see `skipped`).")
    reason: str | None = Field(default=None, description="Why it was skipped, in a sentence.")

    @classmethod
    def of(cls, r: BulkRecipient) -> RecipientOut:
        return cls(
            application=r.application_ext,
            status=r.status,
            conversation=r.conversation_id,
            message=r.message_id,
            code=r.code,
            reason=r.reason,
        )


class BulkMessageOut(BaseModel):
    id: int = Field(description="The bulk message's id (GET /api/v1/bulk-messages/{id}).")
    status: Literal["queued", "sending", "done"] = Field(
        description="queued (before send_at, or until the worker starts), sending, done."
    )
    channel: Channel = Field(description="The one channel every message goes by.")
    total: int = Field(description="Recipients (repeated applications counted once).")
    sent: int = Field(
        description="Messages posted so far (a text held for quiet hours counts as posted)."
    )
    skipped: list[SkippedOut] = Field(description="Who was skipped so far, and why.")
    pending: int = Field(description="Recipients not yet messaged nor skipped.")
    template: int | None = Field(description="The template it was rendered from, if any.")
    send_at: datetime = Field(description="When it starts (the time of the POST if not later).")
    created_at: datetime = Field(description="When it was queued.")
    started_at: datetime | None = Field(description="When its first recipient's turn came.")
    finished_at: datetime | None = Field(description="When its last recipient's turn ended.")
    recipients: list[RecipientOut] | None = Field(
        default=None,
        description="Each recipient in the order given, with the chat and message it got "
        "(GET with `recipients=true`).",
    )

    @classmethod
    def of(
        cls, bulk: BulkMessage, rows: list[BulkRecipient], *, detail: bool = False
    ) -> BulkMessageOut:
        return cls(
            id=bulk.id,
            status=bulk.status,
            channel=Channel(bulk.channel),
            total=bulk.total,
            sent=bulk.sent,
            skipped=[
                SkippedOut(application=r.application_ext, code=r.code or "", reason=r.reason or "")
                for r in rows
                if r.status == "skipped"
            ],
            pending=bulk.total - bulk.sent - bulk.skipped,
            template=bulk.template_id,
            send_at=bulk.send_at,
            created_at=bulk.created_at,
            started_at=bulk.started_at,
            finished_at=bulk.finished_at,
            recipients=[RecipientOut.of(r) for r in rows] if detail else None,
        )
