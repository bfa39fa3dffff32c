"""A conversation as a page shows it: the view model behind ``_thread.html``, used by the
conversation page and by the pages that embed a thread (the candidate profile)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.config import Settings
from jobchat.conversations.models import Conversation, Member
from jobchat.conversations.queries import member_people
from jobchat.conversations.render import render_conversation
from jobchat.conversations.schemas import ConversationOut
from jobchat.directory.models import User
from jobchat.messages.actions import Limits, available_channels
from jobchat.messages.models import Channel, Message
from jobchat.messages.queries import history

PAGE_SIZE = 50
CHANNEL_LABELS = {Channel.app: "In app", Channel.email: "Email", Channel.sms: "SMS"}


@dataclass(frozen=True)
class Person:
    user: User
    organization: str | None


@dataclass(frozen=True)
class Thread:
    me: User
    conversation: ConversationOut
    people: list[Person]
    messages: list[Message]
    older_cursor: int | None
    # The read marker as the page was read: the "New messages" line goes before the first
    # message after it that someone else wrote.
    last_read_id: int
    may_post: bool
    may_end: bool
    channels: list[Channel]
    # About a closed job: read-only for everyone, so the page shows why instead of a composer.
    job_closed: bool

    @property
    def first_unread_id(self) -> int | None:
        for m in self.messages:
            if m.id > self.last_read_id and m.author_id != self.me.id:
                return m.id
        return None

    @property
    def organizations(self) -> dict[int, str | None]:
        return {p.user.id: p.organization for p in self.people}


def load_thread(
    session: Session, me: User, conv: Conversation, member: Member, settings: Settings
) -> Thread:
    page, older = history(session, me, conv.id, before=None, limit=PAGE_SIZE)
    return Thread(
        me=me,
        conversation=render_conversation(session, me, conv, member),
        people=[Person(u, org) for u, org in member_people(session, conv.id)],
        messages=page,
        older_cursor=older,
        last_read_id=member.last_read_message_id,
        may_post=access.may_post(me, conv),
        may_end=access.may_end(me, conv),
        channels=available_channels(session, me, conv, Limits.of(settings)),
        job_closed=access.about_closed_job(conv),
    )
