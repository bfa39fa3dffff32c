"""What the privacy API answers: the audit log, and a candidate's export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from jobchat.conversations.models import Kind, Status
from jobchat.directory.schemas import UserOut
from jobchat.files.schemas import AttachmentOut
from jobchat.messages.models import Channel, DeliveryStatus
from jobchat.messages.schemas import AuthorOut
from jobchat.privacy.models import AuditAction, AuditEntry, PartyType

# People are named by their external id, as everywhere else in the API (a member's, an author's
# "id"); our own numeric ids of people mean nothing to an ATS.
_PEOPLE = {PartyType.staff, PartyType.candidate}
# Keys are known to an admin by the name given to `jobchat api-key create`.
_KEYS = {PartyType.integration, PartyType.api_key}


class PartyOut(BaseModel):
    """Who acted, or what was acted on."""

    type: PartyType = Field(
        description="integration (an integration key), staff, candidate, system (the worker "
        "or the command line), or what was acted on: message, conversation, token, api_key, "
        "number (a phone number, never shown)."
    )
    id: int | str | None = Field(
        description="staff and candidate: their external id (your own id, as everywhere in "
        "this API); message, conversation, token, api_key and a key made with `jobchat api-key "
        "create`: our numeric id; null for the system and for the key configured with "
        "JOBCHAT_API_KEY."
    )
    name: str | None = Field(
        description="integration and api_key: the key's name (`JOBCHAT_API_KEY` for the "
        "configured one); null for everything else (no person's name is ever kept here)."
    )

    @classmethod
    def of(cls, type_: str | None, id_: int | None, ref: str | None) -> PartyOut | None:
        if type_ is None:
            return None
        kind = PartyType(type_)
        if kind in _PEOPLE:
            return cls(type=kind, id=ref, name=None)
        if kind in _KEYS:
            return cls(type=kind, id=id_, name=ref)
        return cls(type=kind, id=id_ if id_ is not None else ref, name=None)


class AuditEntryOut(BaseModel):
    id: int = Field(description="The entry's id.")
    action: AuditAction = Field(description="What happened.")
    actor: PartyOut | None = Field(description="Who did it; null when not known.")
    subject: PartyOut | None = Field(description="What or whom it was done to.")
    at: datetime = Field(description="When (UTC).")
    ip: str | None = Field(
        description="The client's address (after JOBCHAT_TRUSTED_PROXIES' X-Forwarded-For); "
        "null for what the worker or the command line did."
    )
    details: dict[str, Any] = Field(
        description="Counts, reasons, channels and ids (never a name, an address, a phone "
        "number or a message's words)."
    )

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.id,
            action=AuditAction(entry.action),
            actor=PartyOut.of(entry.actor_type, entry.actor_id, entry.actor_ref),
            subject=PartyOut.of(entry.subject_type, entry.subject_id, entry.subject_ref),
            at=entry.at,
            ip=entry.ip,
            details=entry.details,
        )


class AuditPage(BaseModel):
    items: list[AuditEntryOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for older entries; null when "
        "this is the last page."
    )


# --- the export -----------------------------------------------------------------------------------
# The export is streamed (jobchat.privacy.export): these models render each piece, and
# CandidateExport documents the whole in the OpenAPI schema.


class ExportConsentChangeOut(BaseModel):
    at: datetime
    consented: bool = Field(description="Whether texts may be sent to them from then on.")
    source: str = Field(
        description="ats (your sms_consent), keyword (they texted STOP, START...), staff."
    )
    detail: str | None = Field(description="Why: the keyword texted, the staff member's note.")
    by: str | None = Field(description="The staff member who recorded it (external id).")


class ExportDeliveryOut(BaseModel):
    recipient: str = Field(description="External id of the candidate it went to.")
    channel: Channel
    address: str = Field(description="The email address or phone number it went to.")
    status: DeliveryStatus
    attempts: int
    error_code: str | None = Field(description="The provider's code for a failure.")
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class ExportAttachmentOut(AttachmentOut):
    removed: bool = Field(
        description="The file is no longer stored (its message was deleted for everyone): "
        "listed, not downloadable (`url` null)."
    )


class ExportMessageOut(BaseModel):
    id: int
    author: AuthorOut
    body: str = Field(description="As written, also when `deleted` (see `deleted_at`).")
    subject: str | None
    channel: Channel
    created_at: datetime
    deleted_at: datetime | None = Field(
        description="When its author deleted it for everyone: nobody sees it in jobchat any "
        "more, but its words are still stored, so they are part of the export."
    )
    deliveries: list[ExportDeliveryOut] = Field(description="Email and SMS sent for it.")
    attachments: list[ExportAttachmentOut]


class ExportConversationHead(BaseModel):
    id: int
    kind: Kind
    about_candidate: bool = Field(
        description="true: the candidate is its context (every message is listed); false: "
        "another conversation they wrote in (only their own messages are listed)."
    )
    staff_only: bool = Field(
        description="The candidate is never a member (agency and agency_private threads "
        "about their application): they never saw these messages in jobchat."
    )
    job: str | None = Field(description="External id of the job it is about.")
    application: str | None = Field(description="External id of the application.")
    partner: str | None = Field(description="External id of the partner organisation.")
    status: Status
    created_at: datetime
    ended_at: datetime | None


class ExportConversationOut(ExportConversationHead):
    messages: list[ExportMessageOut] = Field(description="In the order they were sent.")


class SentEmailOut(BaseModel):
    kind: str = Field(description="message, notification (of unread messages), closed_notice.")
    conversation: int
    message: int | None = Field(description="The message it carried (kind message).")
    address: str
    sent_at: datetime


class ReceivedEmailOut(BaseModel):
    conversation: int | None
    message: int | None = Field(description="The message it became, if it was posted.")
    from_address: str | None
    subject: str | None
    outcome: str = Field(description="posted, closed, bounce, automatic, ...")
    received_at: datetime


class ReceivedTextOut(BaseModel):
    conversation: int | None
    message: int | None = Field(description="The message it became, if it was posted.")
    from_number: str
    body: str
    outcome: str = Field(description="posted, opted_out, opted_in, help, closed, ...")
    received_at: datetime


class CandidateExport(BaseModel):
    """Everything jobchat holds about one candidate. Lists are in time order."""

    candidate: UserOut = Field(description="The profile, as your upserts left it.")
    deactivated_at: datetime | None
    exported_at: datetime
    consent_history: list[ExportConsentChangeOut] = Field(
        description="Every change of SMS consent."
    )
    conversations: list[ExportConversationOut] = Field(
        description="The conversations whose context is the candidate (every kind), then "
        "those they wrote in otherwise; each in order of creation."
    )
    emails_sent: list[SentEmailOut] = Field(description="Every email sent to them.")
    emails_received: list[ReceivedEmailOut] = Field(
        description="Every email from them that reached jobchat (the message it became, if "
        "any, is under its conversation)."
    )
    texts_received: list[ReceivedTextOut] = Field(
        description="Every text from them that reached jobchat, STOP and HELP included."
    )
