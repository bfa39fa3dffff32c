"""Using a template: previewing it for a conversation (or what one will be about), and filling
it in for a send."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.models import Conversation
from jobchat.directory.models import Application, Job, User
from jobchat.directory.queries import application_by_ext
from jobchat.errors import Invalid, NotFound
from jobchat.messages.models import Channel
from jobchat.templates.actions import TEMPLATE_NOT_FOUND
from jobchat.templates.models import Template
from jobchat.templates.queries import visible_template
from jobchat.templates.render import merge_values, render, values_for
from jobchat.templates.schemas import PreviewIn, PreviewOut


@dataclass(frozen=True)
class Filled:
    body: str
    subject: str | None


def usable_template(session: Session, user: User, template_id: int) -> Template:
    """The template, or 422 naming the ``template`` field (one the caller cannot see, or one
    deleted since the composer listed it, reads as unknown)."""
    template = visible_template(session, user, template_id)
    if template is None:
        raise Invalid(
            {"template": "is not a template you can use (it may have been deleted)"},
            "That template does not exist or is not yours to use; it may have been deleted.",
        )
    return template


def fill_for_send(
    template: Template,
    conv: Conversation,
    sender: User,
    *,
    body: str | None,
    subject: str | None,
    channel: Channel | None = None,
) -> Filled:
    """The body and subject to send: the caller's own where given (edited in the composer),
    else the template's filled in (its subject for email, the one channel that shows one, or
    for a caller that gives no channel).
    A field with no value here and no fallback is a 422 that names it, rather than a message
    that says ``{{candidate.first_name}}`` to a candidate."""
    values = merge_values(conv, sender)
    missing: list[str] = []
    if body is None:
        rendered = render(template.body, values)
        body, missing = rendered.text, list(rendered.missing)
    if subject is None and template.subject and channel in (None, Channel.email):
        rendered = render(template.subject, values)
        subject = rendered.text
        missing += [f for f in rendered.missing if f not in missing]
    if missing:
        names = ", ".join(missing)
        raise Invalid(
            {
                "template": f"needs {names}, which this conversation has no value for "
                "(and the template gives no fallback)",
                **dict.fromkeys(missing, "has no value in this conversation and no fallback"),
            },
            f"The template needs {names}, which this conversation has no value for; "
            "add a fallback ({{field | text}}) or write the message yourself.",
        )
    return Filled(body=body, subject=subject)


def _context_values(session: Session, user: User, refs: PreviewIn) -> dict[str, str | None]:
    """The values for what a conversation not yet started will be about; each ref the caller
    cannot see is a 404, like a conversation they are not in."""
    application: Application | None = None
    candidate: User | None = None
    job: Job | None = None
    if refs.application is not None:
        application = application_by_ext(session, refs.application)
        if application is None or not access.can_see_application(session, user, application):
            raise NotFound("There is no application with that id.")
        candidate, job = application.candidate, application.job
    if refs.candidate is not None:
        candidate = access.access_candidate(session, user, refs.candidate)
    if refs.job is not None:
        job = access.access_job(session, user, refs.job)
    return values_for(candidate=candidate, job=job, application=application, sender=user)


def preview_as(session: Session, user: User, template_id: int, refs: PreviewIn) -> PreviewOut:
    """The template filled in, with what has no value left as written and listed in
    ``missing``: a preview never fails for a missing value, only a send does."""
    access.check_staff(user)
    template = visible_template(session, user, template_id)
    if template is None:
        raise NotFound(TEMPLATE_NOT_FOUND)
    if refs.conversation is not None:
        if refs.application or refs.candidate or refs.job:
            raise Invalid(
                {"conversation": "give a conversation or application/candidate/job, not both"}
            )
        conv, _ = access.access_conversation(session, user, refs.conversation)
        values = merge_values(conv, user)
    else:
        values = _context_values(session, user, refs)
    body = render(template.body, values)
    subject = render(template.subject, values) if template.subject else None
    missing = list(body.missing)
    if subject is not None:
        missing += [f for f in subject.missing if f not in missing]
    return PreviewOut(subject=subject.text if subject else None, body=body.text, missing=missing)
