"""The templates page: a staff member's own templates and those shared in their organisation,
to write, change, share and delete, with the merge fields to click into the text. Plain forms
(with CSRF) like the settings; templates.js only adds the click-to-insert and the confirm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from jobchat.access import check_staff
from jobchat.directory.models import User
from jobchat.errors import Invalid, NotFound
from jobchat.inputs import PathId
from jobchat.templates.actions import (
    TEMPLATE_NOT_FOUND,
    check_template_text,
    do_create_template,
    do_delete_template,
    do_update_template,
    template_problems,
)
from jobchat.templates.models import Template
from jobchat.templates.queries import may_edit, visible_template, visible_templates
from jobchat.templates.render import FIELDS
from jobchat.templates.schemas import TemplateIn, TemplatePatch
from jobchat.web.layout import frame
from jobchat.web.templating import render
from jobchat.web.viewer import FormViewer, PageViewer, Viewer

router = APIRouter(include_in_schema=False)

# Starlette caps a form field at 1 MB; the action's own limits give the inline errors.
FormText = Annotated[str, Form()]
Checkbox = Annotated[str | None, Form(max_length=10)]


@dataclass(frozen=True)
class Row:
    """One template in the list, as its reader sees it."""

    template: Template
    mine: bool
    can_edit: bool


def _rows(templates: list[Template], user: User) -> list[Row]:
    return [Row(t, t.author_id == user.id, may_edit(user, t)) for t in templates]


def _blank() -> dict[str, Any]:
    return {"name": "", "subject": "", "body": "", "shared": False}


def _values(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "subject": template.subject or "",
        "body": template.body,
        "shared": template.shared,
    }


def _page(
    viewer: Viewer,
    *,
    editing: int | None = None,
    new: bool = False,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    saved: str | None = None,
) -> HTMLResponse:
    with viewer.read() as (session, user):
        check_staff(user)
        current: Template | None = None
        if editing is not None:
            current = visible_template(session, user, editing)
            if current is None:
                raise NotFound(TEMPLATE_NOT_FOUND)
        rows = _rows(visible_templates(session, user), user)
        return render(
            "templates.html",
            status,
            rows=rows,
            current=current,
            current_editable=current is not None and may_edit(user, current),
            new=new,
            values=values or (_values(current) if current else _blank()),
            errors=errors or {},
            saved=saved,
            fields=FIELDS,
            max_body=_max_chars(viewer),
            **frame(session, user, viewer, "settings"),
        )


@router.get("/templates")
def templates_page(viewer: PageViewer, saved: str | None = None) -> HTMLResponse:
    return _page(viewer, saved=saved)


@router.get("/templates/new")
def new_template_page(viewer: PageViewer) -> HTMLResponse:
    return _page(viewer, new=True)


@router.get("/templates/{template_id}")
def template_page(template_id: PathId, viewer: PageViewer) -> HTMLResponse:
    return _page(viewer, editing=template_id)


def _form_problems(exc: ValidationError, values: dict[str, Any], max_chars: int) -> dict[str, str]:
    """The schema's complaints in the page's words, one per field, and what the action would
    say of the others (so that one look shows every problem)."""
    out: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "body"
        if err["type"] in ("string_too_short", "too_short", "missing"):
            message = "is required"
        elif err["type"] in ("string_too_long", "too_long"):
            limit = (err.get("ctx") or {}).get("max_length")
            message = f"may be at most {limit} characters"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        out.setdefault(name, message)
    more = template_problems(
        name=values["name"],
        body=values["body"],
        subject=values["subject"].strip() or None,
        max_body_chars=max_chars,
    )
    return more | out


def _max_chars(viewer: Viewer) -> int:
    return viewer.caller.state.settings.max_message_chars


def _submitted(name: str, subject: str, body: str, shared: str | None) -> dict[str, Any]:
    return {"name": name, "subject": subject, "body": body, "shared": shared == "on"}


@router.post("/templates/new")
def create_template_form(
    viewer: FormViewer,
    name: FormText = "",
    subject: FormText = "",
    body: FormText = "",
    shared: Checkbox = None,
) -> Response:
    """Save, then the list with it marked; a bad value is the form again with the problem at
    the field and what was typed kept (422)."""
    values = _submitted(name, subject, body, shared)
    try:
        data = TemplateIn(
            name=name, body=body, subject=subject.strip() or None, shared=shared == "on"
        )
        check_template_text(data, max_body_chars=_max_chars(viewer))
        with viewer.write() as (session, user):
            template = do_create_template(
                session, user, data, now=viewer.caller.now, max_body_chars=_max_chars(viewer)
            )
            template_id = template.id
    except ValidationError as exc:
        errors = _form_problems(exc, values, _max_chars(viewer))
        return _page(viewer, new=True, values=values, errors=errors, status=422)
    except Invalid as exc:
        errors = dict(exc.fields or {"body": exc.message})
        return _page(viewer, new=True, values=values, errors=errors, status=422)
    return RedirectResponse(f"/templates?saved={template_id}", status_code=303)


@router.post("/templates/{template_id}")
def update_template_form(
    template_id: PathId,
    viewer: FormViewer,
    name: FormText = "",
    subject: FormText = "",
    body: FormText = "",
    shared: Checkbox = None,
) -> Response:
    values = _submitted(name, subject, body, shared)
    try:
        patch = TemplatePatch(
            name=name, body=body, subject=subject.strip() or None, shared=shared == "on"
        )
        check_template_text(patch, max_body_chars=_max_chars(viewer))
        with viewer.write() as (session, user):
            do_update_template(
                session,
                user,
                template_id,
                patch,
                now=viewer.caller.now,
                max_body_chars=_max_chars(viewer),
            )
    except ValidationError as exc:
        errors = _form_problems(exc, values, _max_chars(viewer))
        return _page(viewer, editing=template_id, values=values, errors=errors, status=422)
    except Invalid as exc:
        errors = dict(exc.fields or {"body": exc.message})
        return _page(viewer, editing=template_id, values=values, errors=errors, status=422)
    return RedirectResponse(f"/templates?saved={template_id}", status_code=303)


@router.post("/templates/{template_id}/delete")
def delete_template_form(template_id: PathId, viewer: FormViewer) -> Response:
    with viewer.write() as (session, user):
        do_delete_template(session, user, template_id)
    return RedirectResponse("/templates?saved=deleted", status_code=303)
