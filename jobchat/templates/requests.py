"""A send that names a template: the template filled in for the conversation it goes to."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from jobchat.conversations.models import Conversation
from jobchat.directory.models import User
from jobchat.errors import Invalid
from jobchat.templates.models import Template
from jobchat.templates.queries import visible_template
from jobchat.templates.render import merge_values, render


@dataclass(frozen=True)
class Filled:
    body: str
    subject: str | None


def usable_template(session: Session, user: User, template_id: int) -> Template:
    """The template, or 422 naming the ``template`` field (one the caller cannot see reads as
    unknown, as a conversation one is not in reads as missing)."""
    template = visible_template(session, user, template_id)
    if template is None:
        raise Invalid({"template": "is not a template you can use"})
    return template


def fill_for_send(
    template: Template,
    conv: Conversation,
    sender: User,
    *,
    body: str | None,
    subject: str | None,
) -> Filled:
    """The body and subject to send: the caller's own where given (edited in the composer),
    else the template's filled in. A field with no value here and no fallback is a 422 that
    names it, rather than a message that says ``{{candidate.first_name}}`` to a candidate."""
    values = merge_values(conv, sender)
    missing: list[str] = []
    if body is None:
        rendered = render(template.body, values)
        body, missing = rendered.text, list(rendered.missing)
    if subject is None and template.subject:
        rendered = render(template.subject, values)
        subject = rendered.text
        missing += [f for f in rendered.missing if f not in missing]
    if missing:
        names = ", ".join(missing)
        raise Invalid(
            {
                "template": f"{names} has no value in this conversation and no fallback",
                **dict.fromkeys(missing, "has no value in this conversation and no fallback"),
            },
            f"The template needs {names}, which this conversation has no value for; "
            "add a fallback ({{field | text}}) or write the message yourself.",
        )
    return Filled(body=body, subject=subject)
