"""What the privacy API answers: the audit log (the export's shapes are in export_schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

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
