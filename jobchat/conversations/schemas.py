"""The conversation as the API shows it, and the bodies that act on conversations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from jobchat.conversations.models import Kind, Status
from jobchat.inputs import ExtRef, Id
from jobchat.messages.schemas import MessageOut


class MemberOut(BaseModel):
    id: str = Field(description="The member's external id.")
    name: str
    kind: Literal["staff", "candidate"]
    organization: str | None = Field(default=None, description="Staff only: organization id.")


@dataclass(frozen=True)
class Names:
    """The names a conversation's title is made of."""

    job_title: str | None = None
    employer: str | None = None
    candidate_id: int | None = None
    candidate: str | None = None
    partner: str | None = None
    employer_user: str | None = None
    agency_user: str | None = None


class ConversationOut(BaseModel):
    id: int
    kind: Kind
    title: str
    status: Status
    job: str | None = None
    candidate: str | None = None
    application: str | None = None
    partner: str | None = None
    employer_user: str | None = Field(default=None, description="agency_private: its staff side.")
    agency_user: str | None = Field(default=None, description="agency, agency_private.")
    members: list[MemberOut]
    unread_count: int
    last_read_message_id: int
    last_message: MessageOut | None = None
    created_at: datetime
    updated_at: datetime = Field(description="Time of the latest activity.")
    ended_at: datetime | None = None
    # The names behind `title`, kept for the pages, which word a conversation from the reader's
    # side (jobchat.web.labels); not part of the API's answer. A plain default, not a
    # default_factory: pydantic inspects a factory's signature for every instance it makes, and
    # that was a seventh of an inbox page's CPU.
    _names: Names | None = PrivateAttr(default=None)

    @property
    def names(self) -> Names:
        return self._names if self._names is not None else Names()


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class StartConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    job: ExtRef | None = None
    candidate: ExtRef | None = None
    application: ExtRef | None = None
    partner: ExtRef | None = None
    with_user: ExtRef | None = Field(
        default=None,
        description=(
            "agency_private only: the hiring-team user an agency user wants to talk to "
            "(a hiring-team user may leave it out)."
        ),
    )


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    up_to: Id | None = Field(default=None, description="A message id; default: the latest.")


class UnreadOut(BaseModel):
    conversations: int = Field(description="Conversations with something unread.")
    messages: int = Field(description="Unread messages in all of them.")


class CandidateOut(BaseModel):
    id: str
    name: str
    email: str
    phone: str | None
    sms_consent: bool
    source_partner: str | None
    has_messages: bool = Field(description="Whether any conversation with them has messages.")
    unread_count: int


class CandidatePage(BaseModel):
    items: list[CandidateOut]
    next_cursor: str | None
