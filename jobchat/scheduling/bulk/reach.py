"""Whether a bulk message can reach one application's candidate, and what it says to them.

One answer for the runner (which decides at send time: access and consent may change after the
bulk was queued) and for the page that shows, before confirming, who will be skipped and why.
The rules are the ones a single send follows: ``access.access_start`` for the application chat,
``access.post_refusal`` for one that exists, ``sms_refusal`` for texts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.context import Context, ContextRefs
from jobchat.conversations.models import Conversation, Kind
from jobchat.directory.models import Application, User
from jobchat.errors import Conflict, Forbidden, Invalid, NotFound
from jobchat.messages.actions import Limits
from jobchat.messages.channels import sms_refusal
from jobchat.messages.models import Channel
from jobchat.templates.render import render, values_for

UNKNOWN = "There is no application with that id that you can see."


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


def reach(
    session: Session,
    author: User,
    application: Application | None,
    channel: Channel,
    limits: Limits,
) -> Reachable | Skip:
    """The application chat to post into (made when missing), or why not."""
    if application is None:
        return Skip("unknown_application", UNKNOWN)
    refs = ContextRefs(application=application.ext_id)
    try:
        context, existing = access.access_start(session, author, Kind.application, refs)
    except NotFound:
        return Skip("unknown_application", UNKNOWN)
    except (Forbidden, Invalid):
        return Skip(
            "not_allowed",
            "You may not message this candidate: you are not on the hiring team of "
            f"{application.job.title}.",
        )
    except Conflict as exc:
        return Skip(exc.code, exc.message)
    if existing is not None and (refusal := access.post_refusal(author, existing)) is not None:
        return Skip(refusal.code, refusal.message)
    candidate = application.candidate
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
    return Reachable(context, existing)


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
