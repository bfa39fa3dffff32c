"""What the templates API takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from jobchat.directory.models import User
from jobchat.inputs import ExtRef, Id, Line, Text
from jobchat.templates.models import Template
from jobchat.templates.queries import may_edit
from jobchat.templates.render import FIELDS

MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 300

Name = Annotated[Line, Field(min_length=1, max_length=MAX_NAME_CHARS)]
# The body's own bound is the message body limit (a setting), checked by the action.
Body = Annotated[Text, Field(min_length=1)]
Subject = Annotated[Line, Field(max_length=MAX_SUBJECT_CHARS)]

_BODY_DOC = (
    "Plain text with merge fields such as `{{candidate.first_name}}` or "
    "`{{candidate.first_name | there}}` (a fallback after the bar); at most the message body "
    "limit (`JOBCHAT_MAX_MESSAGE_CHARS`). An unknown field is a 422 naming it."
)
_SUBJECT_DOC = "For email: one line, at most 300 characters, merge fields allowed."


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="What the template is called in the lists (one line).")
    body: Body = Field(description=_BODY_DOC)
    subject: Subject | None = Field(default=None, description=_SUBJECT_DOC)
    shared: bool = Field(
        default=False,
        description="Shared with everyone on the staff of the author's organisation.",
    )


class TemplatePatch(BaseModel):
    """Only the fields given change; `"subject": null` removes the subject."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(default=None, description="Cannot be null.")
    body: Body | None = Field(default=None, description=_BODY_DOC + " Cannot be null.")
    subject: Subject | None = Field(default=None, description=_SUBJECT_DOC)
    shared: bool | None = Field(default=None, description="Cannot be null.")


class PreviewIn(BaseModel):
    """Render for a conversation, or, before a conversation exists (the composer that starts
    one), for what it will be about. With none of them, only the sender's fields have values."""

    model_config = ConfigDict(extra="forbid")

    conversation: Id | None = Field(
        default=None, description="A conversation the caller is a member of (else 404)."
    )
    application: ExtRef | None = Field(
        default=None,
        description="Instead of a conversation: an application (its candidate, job and stage).",
    )
    candidate: ExtRef | None = Field(
        default=None, description="Instead of a conversation: a candidate."
    )
    job: ExtRef | None = Field(default=None, description="Instead of a conversation: a job.")


class TemplateAuthorOut(BaseModel):
    id: str = Field(description="The author's external (ATS) id.")
    name: str = Field(description="The author's name.")

    @classmethod
    def of(cls, user: User) -> TemplateAuthorOut:
        return cls(id=user.ext_id, name=user.name)


class TemplateOut(BaseModel):
    id: int = Field(description="The template's id (pass as `template` in a send).")
    name: str = Field(description="What the template is called in the lists.")
    body: str = Field(description="The text as written, merge fields unfilled.")
    subject: str | None = Field(description="The email subject as written; null without one.")
    shared: bool = Field(description="Shared with the staff of the author's organisation.")
    author: TemplateAuthorOut = Field(description='Who wrote it: `{"id": external id, "name"}`.')
    updated_at: datetime = Field(description="When it was created or last changed.")
    can_edit: bool = Field(
        description="Whether the caller may change or delete it (its author; an admin of the "
        "organisation for a shared one)."
    )

    @classmethod
    def of(cls, template: Template, viewer: User) -> TemplateOut:
        return cls(
            id=template.id,
            name=template.name,
            body=template.body,
            subject=template.subject,
            shared=template.shared,
            author=TemplateAuthorOut.of(template.author),
            updated_at=template.updated_at,
            can_edit=may_edit(viewer, template),
        )


class FieldOut(BaseModel):
    name: str = Field(description="As written in a template: `{{name}}`.")
    description: str = Field(description="What it is filled in with.")


class TemplateList(BaseModel):
    items: list[TemplateOut] = Field(description="Own and shared, by name.")
    fields: list[FieldOut] = Field(description="The merge fields a template may use.")


def field_list() -> list[FieldOut]:
    return [FieldOut(name=k, description=v) for k, v in FIELDS.items()]


class PreviewOut(BaseModel):
    subject: str | None = Field(description="The subject filled in; null without one.")
    body: str = Field(
        description="The body filled in; a field in `missing` is left as written "
        "(`{{candidate.first_name}}`) so it can be marked."
    )
    missing: list[str] = Field(
        description="Fields with no value here and no fallback, in order of first appearance "
        "(a send would be a 422 naming them)."
    )
