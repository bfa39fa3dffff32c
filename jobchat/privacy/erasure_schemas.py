"""What an erasure answers: how many of each kind of thing went."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErasedCounts(BaseModel):
    """How many rows of each kind the erasure deleted (0 when there were none)."""

    messages: int = Field(description="Messages in their threads, and theirs elsewhere.")
    conversations: int = Field(
        description="Threads whose context is the candidate (application, case, "
        "candidate_partner, agency), emptied: every member removed."
    )
    attachments: int = Field(description="Files (stored objects and thumbnails are deleted too).")
    deliveries: int = Field(description="Email and SMS deliveries of those messages or to them.")
    emails: int = Field(description="Sent and received email records (with raw messages).")
    texts: int = Field(description="Received texts and SMS status reports.")
    scheduled_messages: int
    jobs: int = Field(description="Queued work that named them or their messages.")
    events: int = Field(description="Real-time events that carried them.")
    activity: int = Field(description="Activity lines (ended, reopened) in their threads.")
    search_entries: int
    push_subscriptions: int
    credentials: int = Field(description="Tokens, sessions and sign-in links.")
    applications: int
    consent_changes: int = Field(description="Lines of their SMS consent history.")
    webhook_events: int = Field(description="Outgoing webhook events about them.")


class ErasureOut(BaseModel):
    candidate: str = Field(description="The candidate's external id, as the request named it.")
    already_erased: bool = Field(
        description="True when there was nobody left to erase because this id was erased "
        "before (all counts are then 0): a repeated request succeeds."
    )
    erased: ErasedCounts
