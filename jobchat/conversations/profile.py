"""What the candidate pages read (read only): the candidate manager's rows, each with the
candidate's applications and the viewer's chats about them, and one candidate's profile with
its Messages, Communications and Agency messaging tabs.

Who may see or start what is asked of ``jobchat.access``; this module only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from jobchat import access
from jobchat.conversations.context import ContextRefs
from jobchat.conversations.models import ONE_CANDIDATE_KINDS, Conversation, Kind, Member
from jobchat.conversations.queries import (
    CandidateFilter,
    InboxQuery,
    candidate_history,
    candidate_manager,
    inbox,
    submitted_candidates,
)
from jobchat.conversations.render import render_conversations
from jobchat.conversations.schemas import ConversationOut
from jobchat.directory.models import Application, OrgKind, User, UserKind
from jobchat.errors import NotFound
from jobchat.messages.models import Channel, Delivery, HiddenMessage, Message

Tab = Literal["messages", "communications", "agency"]

# The conversations with one candidate that the Communications tab gathers.
HISTORY_KINDS = (Kind.application, Kind.case, Kind.candidate_partner)
AGENCY_KINDS = (Kind.agency, Kind.agency_private)
APPLICATION_NOT_FOUND = "There is no application with that id."
# More of one application's conversations than a viewer can be in (one of each kind and a
# private thread per hiring-team user); a bound, not a page.
MAX_APPLICATION_THREADS = 200


@dataclass(frozen=True)
class Chat:
    """The viewer's conversation of one kind about a row (``conversation_id``), or, when it has
    none, the references that start it (the page shows a button only for a chat it may start).
    """

    kind: Kind
    conversation_id: int | None = None
    unread: int = 0
    application: str | None = None
    candidate: str | None = None
    with_user: str | None = None
    # agency_private: the person on the other side.
    with_name: str | None = None

    @property
    def started(self) -> bool:
        return self.conversation_id is not None


# --- the candidate manager -----------------------------------------------------------------------


@dataclass(frozen=True)
class ApplicationLine:
    application: Application
    # The recruiter ↔ candidate chat about it; None when the viewer may neither open nor start it.
    chat: Chat | None
    # For the agency user who submitted it: the shared agency thread (to open or start).
    agency_chat: Chat | None = None


@dataclass(frozen=True)
class CandidateLine:
    candidate: User
    has_messages: bool
    unread: int
    applications: list[ApplicationLine]
    # A source partner's one-to-one chat with the candidate; None for everyone else.
    partner_chat: Chat | None


def candidate_list(
    session: Session,
    user: User,
    *,
    messaging: CandidateFilter | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[CandidateLine], str | None]:
    """A page of the candidate manager (``candidate_manager``), each candidate with the
    applications the viewer may see, newest first, and the viewer's chats about them: a handful
    of statements per page, whatever its size."""
    agency_side = is_agency_user(user)
    page = submitted_candidates if agency_side else candidate_manager
    items, next_cursor = page(session, user, messaging=messaging, q=q, limit=limit, cursor=cursor)
    if not items:
        return [], next_cursor
    people = {
        u.ext_id: u
        for u in session.scalars(
            select(User)
            .where(User.kind == UserKind.candidate, User.ext_id.in_([c.id for c in items]))
            .options(selectinload(User.source_partner))
        )
    }
    ids = [u.id for u in people.values()]
    apps = list(
        session.scalars(
            select(Application)
            .where(Application.candidate_id.in_(ids), access.applications_visible_sql(user))
            .options(selectinload(Application.job), selectinload(Application.agency_user))
            .order_by(Application.applied_at.desc(), Application.id.desc())
        )
    )
    chats = _member_chats(
        session, user, Kind.application, Conversation.application_id, [a.id for a in apps]
    )
    partner_chats = _member_chats(
        session, user, Kind.candidate_partner, Conversation.candidate_id, ids
    )
    agency_chats = (
        _member_chats(session, user, Kind.agency, Conversation.application_id, [a.id for a in apps])
        if agency_side
        else {}
    )

    by_candidate: dict[int, list[ApplicationLine]] = {i: [] for i in ids}
    for app in apps:
        if agency_side and app.agency_user_id != user.id:
            continue  # only their own submissions: the line is about what they did
        by_candidate[app.candidate_id].append(
            ApplicationLine(
                app,
                _application_chat(session, user, app, chats),
                _agency_chat(session, user, app, agency_chats) if agency_side else None,
            )
        )
    lines = []
    for item in items:
        cand = people[item.id]
        partner_chat: Chat | None = None
        if cand.id in partner_chats:
            conv_id, unread = partner_chats[cand.id]
            partner_chat = Chat(Kind.candidate_partner, conv_id, unread, candidate=cand.ext_id)
        elif access.may_start_about(session, user, Kind.candidate_partner, cand):
            partner_chat = Chat(Kind.candidate_partner, candidate=cand.ext_id)
        lines.append(
            CandidateLine(
                candidate=cand,
                has_messages=item.has_messages,
                unread=item.unread_count,
                applications=by_candidate[cand.id],
                partner_chat=partner_chat,
            )
        )
    return lines, next_cursor


def _member_chats(
    session: Session,
    user: User,
    kind: Kind,
    about: InstrumentedAttribute[int | None],
    ids: Sequence[int],
) -> dict[int, tuple[int, int]]:
    """{id: (conversation id, unread)} of the viewer's conversations of ``kind`` about those
    application or candidate ids (``about`` names the column); the most recently active one
    where there are several."""
    rows = session.execute(
        select(about, Conversation.id, Member.unread_count)
        .join(Member, and_(Member.conversation_id == Conversation.id, Member.user_id == user.id))
        .where(Conversation.kind == kind, about.in_(ids))
        .order_by(Member.last_activity_at, Conversation.id)
    )
    return {ref: (conv_id, unread) for ref, conv_id, unread in rows if ref is not None}


def _application_chat(
    session: Session, user: User, app: Application, chats: dict[int, tuple[int, int]]
) -> Chat | None:
    if app.id in chats:
        conv_id, unread = chats[app.id]
        return Chat(Kind.application, conv_id, unread, application=app.ext_id)
    if access.may_start_about(session, user, Kind.application, app):
        return Chat(Kind.application, application=app.ext_id)
    return None


def _agency_chat(
    session: Session, user: User, app: Application, chats: dict[int, tuple[int, int]]
) -> Chat | None:
    if app.id in chats:
        conv_id, unread = chats[app.id]
        return Chat(Kind.agency, conv_id, unread, application=app.ext_id)
    if access.may_start_about(session, user, Kind.agency, app):
        return Chat(Kind.agency, application=app.ext_id)
    return None


def is_agency_user(user: User) -> bool:
    """Whether ``user`` is staff of an agency: their candidates are the ones they submitted."""
    return (
        user.is_staff and user.organization is not None and user.organization.kind == OrgKind.agency
    )


def outside_candidate_manager(session: Session, user: User, conversation_id: int) -> bool:
    """Whether ``conversation_id`` is one of the viewer's conversations of a kind the candidate
    manager does not count (not one with exactly one candidate): news of it never changes the
    list. False when the viewer is not a member: nothing is told of what they are not in."""
    kind = session.scalar(
        select(Conversation.kind)
        .join(Member, and_(Member.conversation_id == Conversation.id, Member.user_id == user.id))
        .where(Conversation.id == conversation_id)
    )
    counted = AGENCY_KINDS if is_agency_user(user) else ONE_CANDIDATE_KINDS
    return kind is not None and Kind(kind) not in counted


# --- the profile ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One message of the Communications tab, with the conversation it was said in."""

    message: Message
    conversation: ConversationOut


@dataclass
class Profile:
    candidate: User
    # The applications the viewer may see, newest first, and the one the tabs are about.
    applications: list[Application]
    application: Application | None
    tab: Tab | None
    # The Messages tab's chat: the one it shows (the recruiter's application conversation, the
    # case chat, or a source partner's one-to-one); None when the viewer has none of them and may
    # start none (no Messages or Communications tab).
    messages: Chat | None
    # Agency messaging, about the chosen application: shown at all, the viewer's threads (shared
    # first), their unread messages, and the threads they may still start.
    agency: bool
    agency_threads: list[ConversationOut] = field(default_factory=list)
    agency_unread: int = 0
    agency_starts: list[Chat] = field(default_factory=list)
    # The conversation the page embeds (Messages tab, or the chosen agency thread).
    thread: tuple[Conversation, Member] | None = None
    # Communications: a page of messages, newest first, and the cursor of the next older page.
    entries: list[Entry] = field(default_factory=list)
    older: int | None = None
    # Every chat with the candidate the Messages tab offers (application, case, one-to-one):
    # those the viewer is in, and those they may start.
    message_chats: list[Chat] = field(default_factory=list)
    # Whether the viewer has any history with the candidate (``queries.history_stats``: the
    # speech bubble's notion), and their unread messages in it.
    has_messages: bool = False
    unread: int = 0

    @property
    def tabs(self) -> list[Tab]:
        shown: list[Tab] = ["messages", "communications"] if self.messages is not None else []
        return [*shown, "agency"] if self.agency else shown


def candidate_profile(
    session: Session,
    user: User,
    candidate: User,
    *,
    tab: Tab | None,
    application: str | None,
    thread: int | None = None,
    channel: Channel | None = None,
    before: int | None = None,
    limit: int = 50,
) -> Profile:
    """A candidate's profile as ``user`` (who may see the candidate) sees it, with the content of
    the tab asked for, or of the first one they have when they do not have that one.

    ``application`` (external id) chooses the application the tabs are about (default: the
    newest the viewer may see; 404 for one they may not see); ``thread`` an agency thread;
    ``channel`` and ``before`` filter and page the Communications tab.
    """
    apps = list(
        session.scalars(
            select(Application)
            .where(Application.candidate_id == candidate.id, access.applications_visible_sql(user))
            .options(
                selectinload(Application.job),
                selectinload(Application.agency_user),
                selectinload(Application.stage_owner),
            )
            .order_by(Application.applied_at.desc(), Application.id.desc())
        )
    )
    chosen = apps[0] if apps else None
    if application is not None:
        chosen = next((a for a in apps if a.ext_id == application), None)
        if chosen is None:
            raise NotFound(APPLICATION_NOT_FOUND)

    rows = _application_threads(session, user, chosen)
    chats, threads = _message_chats(session, user, candidate, chosen, rows)
    asked = [c for c in chats if thread is not None and c.conversation_id == thread]
    shown_chat = next(iter(asked), None) or next(
        (c for c in chats if c.started), chats[0] if chats else None
    )
    has_messages, unread = candidate_history(session, user, candidate)
    profile = Profile(
        candidate=candidate,
        applications=apps,
        application=chosen,
        tab=None,
        messages=shown_chat,
        agency=chosen is not None
        and chosen.agency_user is not None
        and access.may_start(session, user, Kind.agency, ContextRefs(application=chosen.ext_id)),
        message_chats=chats,
        has_messages=has_messages,
        unread=unread,
    )
    messages_thread = (
        threads.get(shown_chat.conversation_id)
        if shown_chat is not None and shown_chat.conversation_id is not None
        else None
    )
    agency_rows = [(c, m) for c, m in rows if Kind(c.kind) in AGENCY_KINDS]
    if profile.agency:
        # The shared thread first, then the private ones, each most recently active first.
        agency_rows.sort(key=lambda row: row[0].kind != Kind.agency)
        profile.agency_threads = render_conversations(session, user, agency_rows)
        profile.agency_unread = sum(m.unread_count for _c, m in agency_rows)

    shown = profile.tabs
    profile.tab = tab if tab in shown else (shown[0] if shown else None)
    if profile.tab == "messages":
        profile.thread = messages_thread
    elif profile.tab == "agency":
        assert chosen is not None
        profile.agency_starts = _agency_starts(session, user, chosen, rows)
        by_id = {c.id: (c, m) for c, m in agency_rows}
        pick = thread if thread in by_id else (agency_rows[0][0].id if agency_rows else None)
        profile.thread = by_id[pick] if pick is not None else None
    elif profile.tab == "communications":
        profile.entries, profile.older = communications(
            session, user, candidate, channel=channel, before=before, limit=limit
        )
    return profile


def _application_threads(
    session: Session, user: User, app: Application | None
) -> list[tuple[Conversation, Member]]:
    """The viewer's conversations about the application, most recently active first."""
    if app is None:
        return []
    rows, _more = inbox(
        session,
        user,
        InboxQuery(application=app.ext_id),
        limit=MAX_APPLICATION_THREADS,
        cursor=None,
    )
    return rows


def _message_chats(
    session: Session,
    user: User,
    candidate: User,
    app: Application | None,
    rows: list[tuple[Conversation, Member]],
) -> tuple[list[Chat], dict[int, tuple[Conversation, Member]]]:
    """The Messages tab's chats, in order: the recruiter's chat and the case chat about the
    chosen application, then the source partner's one-to-one with the candidate; each one the
    viewer is in, or may start. With the conversations (and the viewer's member rows) of those
    they are in, by id."""
    chats: list[Chat] = []
    threads: dict[int, tuple[Conversation, Member]] = {}
    if app is not None:
        mine = {Kind(c.kind): (c, m) for c, m in rows if Kind(c.kind) in HISTORY_KINDS}
        for kind in (Kind.application, Kind.case):
            if kind in mine:
                conv, member = mine[kind]
                chats.append(Chat(kind, conv.id, member.unread_count, application=app.ext_id))
                threads[conv.id] = (conv, member)
            elif access.may_start(session, user, kind, ContextRefs(application=app.ext_id)):
                chats.append(Chat(kind, application=app.ext_id))
    partner_rows, _more = inbox(
        session,
        user,
        InboxQuery(kind=Kind.candidate_partner, candidate=candidate.ext_id),
        limit=1,
        cursor=None,
    )
    for conv, member in partner_rows:
        chats.append(
            Chat(Kind.candidate_partner, conv.id, member.unread_count, candidate=candidate.ext_id)
        )
        threads[conv.id] = (conv, member)
    refs = ContextRefs(candidate=candidate.ext_id)
    if (
        not partner_rows
        and user.is_staff
        and access.may_start(session, user, Kind.candidate_partner, refs)
    ):
        chats.append(Chat(Kind.candidate_partner, candidate=candidate.ext_id))
    return chats, threads


def _agency_starts(
    session: Session, user: User, app: Application, rows: list[tuple[Conversation, Member]]
) -> list[Chat]:
    """The agency threads of the application the viewer may still start: the shared one, and a
    private one (a hiring-team user: with the agency user; the agency user: with the stage owner
    or anyone they have a private thread with already, about any candidate)."""
    agency_user = app.agency_user
    assert agency_user is not None
    current = [c for c, _m in rows if c.agency_user_id == agency_user.id]
    starts = []
    refs = ContextRefs(application=app.ext_id)
    if not any(c.kind == Kind.agency for c in current) and access.may_start(
        session, user, Kind.agency, refs
    ):
        starts.append(Chat(Kind.agency, application=app.ext_id))
    private_with = {c.employer_user_id for c in current if c.kind == Kind.agency_private}
    if user.id != agency_user.id:
        if user.id not in private_with and access.may_start(
            session, user, Kind.agency_private, refs
        ):
            starts.append(
                Chat(Kind.agency_private, application=app.ext_id, with_name=agency_user.name)
            )
        return starts
    talked_to = session.scalars(
        select(Conversation.employer_user_id)
        .where(Conversation.kind == Kind.agency_private, Conversation.agency_user_id == user.id)
        .distinct()
    )
    people = [app.stage_owner] if app.stage_owner is not None else []
    people += session.scalars(
        select(User).where(User.id.in_([i for i in talked_to if i is not None])).order_by(User.name)
    )
    seen: set[int] = set()
    for person in people:
        if person.id in seen or person.id in private_with:
            continue
        seen.add(person.id)
        with_refs = ContextRefs(application=app.ext_id, with_user=person.ext_id)
        if access.may_start(session, user, Kind.agency_private, with_refs):
            starts.append(
                Chat(
                    Kind.agency_private,
                    application=app.ext_id,
                    with_user=person.ext_id,
                    with_name=person.name,
                )
            )
    return starts


def communications(
    session: Session,
    user: User,
    candidate: User,
    *,
    channel: Channel | None,
    before: int | None,
    limit: int,
) -> tuple[list[Entry], int | None]:
    """Everything said with the candidate in the viewer's conversations about them alone
    (application, case, candidate_partner), newest first, a page at a time: the page and the
    ``before`` of the next older one. Messages the viewer deleted for themself are left out;
    deleted-for-everyone ones stay, as tombstones."""
    hidden = exists().where(
        and_(HiddenMessage.message_id == Message.id, HiddenMessage.user_id == user.id)
    )
    stmt = (
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Member, and_(Member.conversation_id == Conversation.id, Member.user_id == user.id))
        .where(
            Conversation.candidate_id == candidate.id,
            Conversation.kind.in_([str(k) for k in HISTORY_KINDS]),
            ~hidden,
        )
        .options(
            selectinload(Message.author).selectinload(User.organization),
            selectinload(Message.deliveries).selectinload(Delivery.recipient),
        )
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    if channel is not None:
        stmt = stmt.where(Message.channel == channel)
    if before is not None:
        stmt = stmt.where(Message.id < before)
    messages = list(session.scalars(stmt))
    more = len(messages) > limit
    messages = messages[:limit]
    conv_ids = sorted({m.conversation_id for m in messages})
    pairs = [
        (c, m)
        for c, m in session.execute(
            select(Conversation, Member)
            .join(
                Member, and_(Member.conversation_id == Conversation.id, Member.user_id == user.id)
            )
            .where(Conversation.id.in_(conv_ids))
        )
    ]
    rendered = {c.id: c for c in render_conversations(session, user, pairs)}
    entries = [Entry(m, rendered[m.conversation_id]) for m in messages]
    return entries, (messages[-1].id if more and messages else None)
