"""A conversation as a page shows it: the view model behind ``_thread.html``, used by the
conversation page and by the pages that embed a thread (the candidate profile)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.activity.models import Activity
from jobchat.activity.queries import activity_between
from jobchat.config import Settings
from jobchat.conversations.models import ONE_CANDIDATE_KINDS, Conversation, Kind, Member
from jobchat.conversations.queries import member_people
from jobchat.conversations.render import render_conversation
from jobchat.conversations.schemas import ConversationOut
from jobchat.directory.models import User
from jobchat.messages.actions import Limits
from jobchat.messages.channels import ChannelOption, channel_options
from jobchat.messages.models import Channel, Message
from jobchat.messages.queries import history
from jobchat.web.scheduled_view import ScheduledView, scheduled_in_thread

PAGE_SIZE = 50
CHANNEL_LABELS = {Channel.app: "In app", Channel.email: "Email", Channel.sms: "SMS"}


@dataclass(frozen=True)
class Person:
    user: User
    organization: str | None


@dataclass(frozen=True)
class Entry:
    """One item of the drawn history: a message or an activity line (ended, reopened)."""

    message: Message | None = None
    activity: Activity | None = None

    @property
    def created_at(self) -> datetime:
        item = self.message or self.activity
        assert item is not None
        return item.created_at

    @property
    def order(self) -> tuple[int, int, int]:
        # A line drawn after message X comes after X and before X + 1 (see Activity).
        if self.message is not None:
            return (self.message.id, 0, 0)
        assert self.activity is not None
        return (self.activity.after_message_id, 1, self.activity.id)


def interleave(messages: Sequence[Message], lines: Sequence[Activity]) -> list[Entry]:
    entries = [Entry(message=m) for m in messages] + [Entry(activity=a) for a in lines]
    return sorted(entries, key=lambda e: e.order)


def page_entries(
    session: Session, conv_id: int, page: Sequence[Message], *, more: bool, before: int | None
) -> list[Entry]:
    """A page of history (what ``history`` answered) with the activity lines that fall in it:
    after its first message (after nothing, when it is the oldest page) and before ``before``,
    where the newer page starts."""
    lowest = page[0].id if more and page else 0
    return interleave(page, activity_between(session, conv_id, lowest=lowest, below=before))


def entries_after(
    session: Session, conv_id: int, messages: Sequence[Message], *, after: int, full: bool
) -> list[Entry]:
    """What a page showing up to message ``after`` is missing: newer messages and the lines
    after ``after`` (a page drops those it already shows, by id). ``full``: the messages filled
    a page, so more may follow them, and so may lines that belong after those."""
    below = messages[-1].id + 1 if full and messages else None
    return interleave(messages, activity_between(session, conv_id, lowest=after, below=below))


@dataclass(frozen=True)
class Thread:
    me: User
    conversation: ConversationOut
    people: list[Person]
    messages: list[Message]
    entries: list[Entry]
    older_cursor: int | None
    # The read marker as the page was read: the "New messages" line goes before the first
    # message after it that someone else wrote.
    last_read_id: int
    may_post: bool
    may_end: bool
    # Every channel the composer shows, each with why it cannot be used now (if it cannot):
    # the same answer the new-chat composer gives, so SMS is never silently missing.
    channels: list[ChannelOption]
    # About a closed job: read-only for everyone, so the page shows why instead of a composer.
    job_closed: bool
    # The viewer's own messages waiting to be posted here (jobchat.web.scheduled_view).
    scheduled: tuple[ScheduledView, ...] = ()

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
        entries=page_entries(session, conv.id, page, more=older is not None, before=None),
        older_cursor=older,
        last_read_id=member.last_read_message_id,
        may_post=access.may_post(me, conv),
        may_end=access.may_end(me, conv),
        channels=composer_channels(session, me, conv, settings),
        job_closed=access.about_closed_job(conv),
        scheduled=tuple(scheduled_in_thread(session, me, conv.id)),
    )


def composer_channels(
    session: Session, me: User, conv: Conversation, settings: Settings
) -> list[ChannelOption]:
    """The channels the conversation's composer offers ``me``: ``channel_options``, the one rule
    for every composer (the app always; email and SMS, for staff, where the conversation has
    one candidate, each with the reason it cannot be used now)."""
    kind = Kind(conv.kind)
    candidate = conv.candidate if kind in ONE_CANDIDATE_KINDS else None
    return channel_options(session, me, kind, candidate, Limits.of(settings))
