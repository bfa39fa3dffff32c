"""Whether a bulk message can reach one application's candidate, and what it says to them.

One answer for the runner (which decides at send time: access and consent may change after the
bulk was queued) and for the page that shows, before confirming, who will be skipped and why.
The rules are the ones a single send follows: ``access.access_start`` for the application chat,
``access.post_refusal`` for one that exists, ``sms_refusal`` for texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from jobchat import access
from jobchat.access import works_on_job
from jobchat.conversations.context import Context
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.directory.models import Application, JobStatus, User
from jobchat.messages.actions import Limits
from jobchat.messages.channels import sms_refusal
from jobchat.messages.models import Channel
from jobchat.templates.render import render, values_for

UNKNOWN = "There is no application with that id that you can see."
JOB_CLOSED = "This job is closed: its conversations can be read, but take no new messages."


@dataclass(frozen=True)
class Skip:
    code: str
    reason: str


@dataclass(frozen=True)
class Reachable:
    context: Context
    existing: Conversation | None


@dataclass(frozen=True)
class Text:
    body: str
    subject: str | None


def reach_many(
    session: Session,
    author: User,
    apps: Sequence[Application],
    channel: Channel,
    limits: Limits,
) -> dict[int, Reachable | Skip]:
    """For each application (by id): the application chat to post into (made when missing), or
    why not. ``access.access_start``'s rules in its order (visible, then a member may reach the
    chat, else may start it, and nothing new about a closed job), asked of the whole batch in a
    few statements instead of several per recipient."""
    if not apps:
        return {}
    ids = [a.id for a in apps]
    visible = set(
        session.scalars(
            select(Application.id).where(
                Application.id.in_(ids), access.applications_visible_sql(author)
            )
        )
    )
    contexts = {
        a.id: Context(Kind.application, job=a.job, candidate=a.candidate, application=a)
        for a in apps
    }
    chats = {
        c.context_key: c
        for c in session.scalars(
            select(Conversation)
            .where(Conversation.context_key.in_([c.key for c in contexts.values()]))
            .options(undefer(Conversation.job_status))
        )
    }
    mine = set(
        session.scalars(
            select(Member.conversation_id).where(
                Member.user_id == author.id,
                Member.conversation_id.in_([c.id for c in chats.values()]),
            )
        )
    )
    # Whether the author may open an application chat depends only on the job (being on its
    # employer side): asked once per job.
    may_start: dict[int, bool] = {}
    out: dict[int, Reachable | Skip] = {}
    for app in apps:
        if app.id not in visible:
            out[app.id] = Skip("unknown_application", UNKNOWN)
            continue
        context = contexts[app.id]
        chat = chats.get(context.key)
        if chat is None or chat.id not in mine:
            if app.job_id not in may_start:
                may_start[app.job_id] = works_on_job(session, author, app.job)
            if not may_start[app.job_id]:
                out[app.id] = Skip(
                    "not_allowed",
                    "You may not message this candidate: you are not on the hiring team of "
                    f"{app.job.title}.",
                )
                continue
            if chat is None and app.job.status == JobStatus.closed:
                out[app.id] = Skip("job_closed", JOB_CLOSED)
                continue
        if chat is not None and (refusal := access.post_refusal(author, chat)) is not None:
            out[app.id] = Skip(refusal.code, refusal.message)
            continue
        out[app.id] = _channel_skip(session, app.candidate, channel, limits) or Reachable(
            context, chat
        )
    return out


def _channel_skip(
    session: Session, candidate: User, channel: Channel, limits: Limits
) -> Skip | None:
    if not candidate.is_active:
        return Skip(
            "candidate_deactivated", f"{candidate.name} is deactivated: nothing more goes to them."
        )
    if channel is Channel.email and not candidate.email:
        return Skip("no_email", f"{candidate.name} has no email address.")
    if channel is Channel.sms:
        sms = sms_refusal(
            session,
            candidate,
            sms_enabled=limits.sms_enabled,
            default_region=limits.default_region,
        )
        if sms is not None:
            return Skip(sms.code, sms.reason)
    return None


def text_for(body: str, subject: str | None, application: Application, author: User) -> Text | Skip:
    """The message rendered for this application's candidate, or why it cannot be: a merge
    field with no value for them and no fallback (never a message that shows the braces)."""
    values = values_for(
        candidate=application.candidate,
        job=application.job,
        application=application,
        sender=author,
    )
    filled = render(body, values)
    missing = list(filled.missing)
    filled_subject = None
    if subject is not None:
        rendered = render(subject, values)
        filled_subject = rendered.text
        missing += [f for f in rendered.missing if f not in missing]
    if missing:
        names = ", ".join("{{" + f + "}}" for f in missing)
        return Skip(
            "missing_field",
            f"{names} has no value for {application.candidate.name}, and no fallback.",
        )
    return Text(filled.text, filled_subject)
