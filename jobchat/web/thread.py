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
from jobchat.messages.queries import history, history_after
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
    # Opened at a message (a search result, ``?at=``): the page is history around it, and
    # this is the newest drawn when newer ones follow (the script loads them on scrolling).
    at: int | None = None
    newer_cursor: int | None = None
    # The upload limit, for the composer to refuse a bigger file before sending it.
    max_attachment_bytes: int = 0

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
    session: Session,
    me: User,
    conv: Conversation,
    member: Member,
    settings: Settings,
    *,
    at: int | None = None,
) -> Thread:
    """``at``: a message of this conversation to open the page at (half a page of history
    before it and half after), however old it is; one the viewer cannot see (deleted for them,
    not in this conversation) opens the page at the newest, as without it."""
    window = _around(session, me, conv.id, at) if at is not None else None
    newer: int | None = None
    if window is not None:
        page, older, newer = window
    else:
        at = None
        page, older = history(session, me, conv.id, before=None, limit=PAGE_SIZE)
    # The activity lines up to the newest message drawn (those after it come with the newer).
    below = newer + 1 if newer is not None else None
    return Thread(
        me=me,
        conversation=render_conversation(session, me, conv, member),
        people=[Person(u, org) for u, org in member_people(session, conv.id)],
        messages=page,
        entries=page_entries(session, conv.id, page, more=older is not None, before=below),
        older_cursor=older,
        at=at,
        newer_cursor=newer,
        last_read_id=member.last_read_message_id,
        may_post=access.may_post(me, conv),
        may_end=access.may_end(me, conv),
        channels=composer_channels(session, me, conv, settings),
        job_closed=access.about_closed_job(conv),
        scheduled=tuple(scheduled_in_thread(session, me, conv.id)),
        max_attachment_bytes=settings.max_attachment_bytes,
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


def _around(
    session: Session, me: User, conv_id: int, at: int
) -> tuple[list[Message], int | None, int | None] | None:
    """The messages around ``at`` the viewer sees (oldest first), the older cursor, and the id
    of the newest drawn when more follow; None when ``at`` is not among what they see."""
    half = PAGE_SIZE // 2
    before, older = history(session, me, conv_id, before=at + 1, limit=half)
    if not before or before[-1].id != at:
        return None
    after = history_after(session, me, conv_id, after=at, limit=half + 1)
    more = len(after) > half
    after = after[:half]
    page = before + after
    return page, older, (page[-1].id if more else None)
