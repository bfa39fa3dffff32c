"""The message as the API shows it, and the body of a send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobchat.directory.models import User, UserKind
from jobchat.files.schemas import AttachmentOut
from jobchat.inputs import MAX_ID, Line, Text
from jobchat.messages.models import Channel, DeliveryStatus, Message


class AuthorOut(BaseModel):
    id: str | None = Field(description="The author's external id; null for the system.")
    name: str
    kind: Literal["staff", "candidate", "system"]

    @classmethod
    def system(cls) -> AuthorOut:
        return cls(**author_plain(None, None, None))

    @classmethod
    def of(cls, user: User | None) -> AuthorOut:
        if user is None:
            return cls.system()
        return cls(id=user.ext_id, name=user.name, kind="staff" if user.is_staff else "candidate")


def author_plain(ext_id: str | None, name: str | None, kind: str | None) -> dict[str, Any]:
    """What ``AuthorOut`` shows for the author's columns of a joined row, as plain data."""
    if kind is None:
        return {"id": None, "name": "jobchat", "kind": "system"}
    assert name is not None
    return {"id": ext_id, "name": name, "kind": "staff" if kind == UserKind.staff else "candidate"}


class DeliveryOut(BaseModel):
    recipient: str = Field(description="External id of the candidate it goes to.")
    channel: Literal["email", "sms"]
    status: Literal[
        "held", "queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled"
    ] = Field(
        description="held: an SMS waiting for the end of the candidate's night "
        "(JOBCHAT_SMS_QUIET_HOURS), sent at `until`; queued until the provider has it."
    )
    until: datetime | None = Field(
        default=None,
        description="When a held SMS goes out (the end of quiet hours in the candidate's local "
        "time); null unless the status is held.",
    )
    attempts: int
    last_error: str | None = None
    error_code: str | None = Field(default=None, description="The provider's code for a failure.")


def shown(
    body: str, subject: str | None, deleted_at: datetime | None
) -> tuple[bool, str, str | None]:
    """The one place that decides what a deleted-for-everyone message shows: nothing (whether
    it is deleted, then its body and subject as shown; its files are not shown either)."""
    if deleted_at is not None:
        return True, "", None
    return False, body, subject


class MessageOut(BaseModel):
    id: int
    conversation: int
    author: AuthorOut
    body: str = Field(description="Empty when the message was deleted for everyone.")
    subject: str | None = None
    channel: Channel
    created_at: datetime
    deleted: bool
    deliveries: list[DeliveryOut] | None = Field(
        default=None, description="Email and SMS delivery state, shown to staff."
    )
    attachments: list[AttachmentOut] = Field(
        default_factory=list,
        description="Files sent with it (none once it is deleted for everyone).",
    )

    @classmethod
    def build(
        cls,
        *,
        id: int,
        conversation: int,
        author: AuthorOut,
        body: str,
        subject: str | None,
        channel: str,
        created_at: datetime,
        deleted_at: datetime | None,
        deliveries: list[DeliveryOut] | None = None,
        attachments: list[AttachmentOut] | None = None,
    ) -> MessageOut:
        """A message as the API shows it (what a deleted one shows: ``shown``)."""
        deleted, body, subject = shown(body, subject, deleted_at)
        return cls(
            id=id,
            conversation=conversation,
            author=author,
            body=body,
            subject=subject,
            channel=Channel(channel),
            created_at=created_at,
            deleted=deleted,
            deliveries=deliveries,
            attachments=[] if deleted else (attachments or []),
        )

    @classmethod
    def of(cls, message: Message, *, show_deliveries: bool = False) -> MessageOut:
        deliveries = None
        if show_deliveries and message.channel != Channel.app:
            deliveries = [
                DeliveryOut(
                    recipient=d.recipient.ext_id,
                    channel=d.channel,
                    status=d.status,
                    until=d.held_until if d.status == DeliveryStatus.held else None,
                    attempts=d.attempts,
                    last_error=d.last_error,
                    error_code=d.error_code,
                )
                for d in message.deliveries
            ]
        return cls.build(
            id=message.id,
            conversation=message.conversation_id,
            author=AuthorOut.of(message.author),
            body=message.body,
            subject=message.subject,
            channel=message.channel,
            created_at=message.created_at,
            deleted_at=message.deleted_at,
            deliveries=deliveries,
            # A removed file (its candidate erased) is no longer offered.
            attachments=[AttachmentOut.of(a) for a in message.attachments if a.removed_at is None],
        )


class MessagePage(BaseModel):
    items: list[MessageOut] = Field(description="Oldest first within the page.")
    next_cursor: int | None = Field(
        description="Pass as `before` for the page before this one; null at the beginning."
    )


class SendMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Text | None = Field(
        default=None, description="Required unless a template is given (it then overrides it)."
    )
    channel: Channel = Channel.app
    subject: Line | None = None
    idempotency_key: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    template: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None,
        description="A template's id: filled in for this conversation where body or subject "
        "is omitted.",
    )
    attachments: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(max_length=10)] = (
        Field(
            default_factory=list,
            description="Up to 10 attachment ids the author uploaded into this conversation; the "
            "body may then be empty.",
        )
    )
    send_at: datetime | None = Field(
        default=None,
        description="Send later: ISO 8601, in the future and at most a year ahead; answers 202 "
        "with the scheduled message.",
    )
