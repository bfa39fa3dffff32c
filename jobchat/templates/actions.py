"""Writing templates: the only code that does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.access import check_staff
from jobchat.directory.models import User
from jobchat.errors import Conflict, Forbidden, Invalid, NotFound
from jobchat.templates.models import Template
from jobchat.templates.queries import may_edit, own_template_count, visible_template
from jobchat.templates.render import template_problem
from jobchat.templates.schemas import TemplateIn, TemplatePatch

TEMPLATE_NOT_FOUND = "There is no template with that id."
# A recruiter keeps a few dozen; thousands are a script gone wrong, and would make every
# composer's picker list slow to load.
MAX_TEMPLATES_PER_USER = 500


def template_problems(
    *, name: str | None, body: str | None, subject: str | None, max_body_chars: int
) -> dict[str, str]:
    """Each field's problem beyond what the schema checks: blank text, the body limit (a
    setting), and merge fields that do not exist."""
    problems: dict[str, str] = {}
    if name is not None and not name.strip():
        problems["name"] = "must not be blank"
    if body is not None:
        if not body.strip():
            problems["body"] = "must not be blank"
        elif len(body) > max_body_chars:
            problems["body"] = f"may be at most {max_body_chars} characters"
        elif (problem := template_problem(body)) is not None:
            problems["body"] = problem
    if subject is not None and (problem := template_problem(subject)) is not None:
        problems["subject"] = problem
    return problems


def check_template_text(data: TemplateIn | TemplatePatch, *, max_body_chars: int) -> None:
    """The text checks alone, for callers to make before they take the write turn: they need
    no database, and every other writer would wait out a slow one made inside it. The actions
    check again (cheaply) for callers that did not."""
    subject = (data.subject or "").strip() or None
    if problems := template_problems(
        name=data.name, body=data.body, subject=subject, max_body_chars=max_body_chars
    ):
        raise Invalid(problems)


def _check_may_own(user: User) -> int:
    """The organisation a new template belongs to."""
    check_staff(user)
    if user.organization_id is None:
        raise Forbidden("Templates belong to an organisation; you are in none.", code="no_org")
    return user.organization_id


def do_create_template(
    session: Session, user: User, body: TemplateIn, *, now: datetime, max_body_chars: int
) -> Template:
    org_id = _check_may_own(user)
    subject = (body.subject or "").strip() or None
    if problems := template_problems(
        name=body.name, body=body.body, subject=subject, max_body_chars=max_body_chars
    ):
        raise Invalid(problems)
    if own_template_count(session, user) >= MAX_TEMPLATES_PER_USER:
        raise Conflict(
            f"You have {MAX_TEMPLATES_PER_USER} templates, the most one person may keep; "
            "delete some first.",
            code="too_many_templates",
        )
    template = Template(
        organization_id=org_id,
        author_id=user.id,
        author=user,
        name=body.name.strip(),
        body=body.body,
        subject=subject,
        shared=body.shared,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    session.flush()
    return template


def editable_template(session: Session, user: User, template_id: int) -> Template:
    """The template, if ``user`` may change it: 404 when they cannot see it, 403 when they can
    see it but it is someone else's (a shared one, and they are no admin of its organisation)."""
    check_staff(user)
    template = visible_template(session, user, template_id)
    if template is None:
        raise NotFound(TEMPLATE_NOT_FOUND)
    if not may_edit(user, template):
        raise Forbidden(
            "Only its author or an admin of the organisation may change a shared template.",
            code="not_template_author",
        )
    return template


def do_update_template(
    session: Session,
    user: User,
    template_id: int,
    patch: TemplatePatch,
    *,
    now: datetime,
    max_body_chars: int,
) -> Template:
    template = editable_template(session, user, template_id)
    given = patch.model_fields_set
    nulls: dict[str, str] = {
        name: "must not be null"
        for name in ("name", "body", "shared")
        if name in given and getattr(patch, name) is None
    }
    if nulls:
        raise Invalid(nulls)
    subject = ((patch.subject or "").strip() or None) if "subject" in given else None
    if problems := template_problems(
        name=patch.name,
        body=patch.body,
        subject=subject,
        max_body_chars=max_body_chars,
    ):
        raise Invalid(problems)
    if patch.name is not None:
        template.name = patch.name.strip()
    if patch.body is not None:
        template.body = patch.body
    if "subject" in given:
        template.subject = subject
    if patch.shared is not None:
        template.shared = patch.shared
    template.updated_at = now
    session.flush()
    return template


def do_delete_template(session: Session, user: User, template_id: int) -> None:
    """Gone for everyone: a send that names it afterwards is a 422 ``template``. Messages sent
    from it keep their text (they never pointed at it)."""
    session.delete(editable_template(session, user, template_id))
