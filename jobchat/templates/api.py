"""The templates API: a staff member's own templates and those shared in their organisation."""

from __future__ import annotations

from fastapi import APIRouter, Response

from jobchat.access import check_staff
from jobchat.auth.deps import CurrentUser
from jobchat.errors import NotFound
from jobchat.http_errors import error_responses
from jobchat.inputs import PathId
from jobchat.templates.actions import (
    TEMPLATE_NOT_FOUND,
    check_template_text,
    do_create_template,
    do_delete_template,
    do_update_template,
)
from jobchat.templates.queries import visible_template, visible_templates
from jobchat.templates.requests import preview_as
from jobchat.templates.schemas import (
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateList,
    TemplateOut,
    TemplatePatch,
    field_list,
)

router = APIRouter(
    prefix="/api/v1/templates", tags=["templates"], responses=error_responses(401, 403)
)


@router.get("", response_model=TemplateList)
def list_templates(caller: CurrentUser) -> TemplateList:
    """The caller's own templates and those shared in their organisation, by name, with the
    merge fields a template may use. Staff only."""
    with caller.read() as (session, user):
        check_staff(user)
        return TemplateList(
            items=[TemplateOut.of(t, user) for t in visible_templates(session, user)],
            fields=field_list(),
        )


@router.post("", status_code=201, response_model=TemplateOut, responses=error_responses(409, 422))
def create_template(body: TemplateIn, caller: CurrentUser) -> TemplateOut:
    """Save a template (personal unless `shared`). An unknown merge field is a 422 naming it
    in `fields.body` or `fields.subject`."""
    max_chars = caller.state.settings.max_message_chars
    check_template_text(body, max_body_chars=max_chars)
    with caller.write() as (session, user):
        template = do_create_template(session, user, body, now=caller.now, max_body_chars=max_chars)
        return TemplateOut.of(template, user)


@router.get("/{template_id}", response_model=TemplateOut, responses=error_responses(404))
def get_template(template_id: PathId, caller: CurrentUser) -> TemplateOut:
    """One template the caller can see (their own, or shared in their organisation)."""
    with caller.read() as (session, user):
        check_staff(user)
        template = visible_template(session, user, template_id)
        if template is None:
            raise NotFound(TEMPLATE_NOT_FOUND)
        return TemplateOut.of(template, user)


@router.patch("/{template_id}", response_model=TemplateOut, responses=error_responses(404, 422))
def update_template(template_id: PathId, body: TemplatePatch, caller: CurrentUser) -> TemplateOut:
    """Change a template: its author, or an admin of the organisation for a shared one (403
    for anyone else who can see it; 404 for one the caller cannot see)."""
    max_chars = caller.state.settings.max_message_chars
    check_template_text(body, max_body_chars=max_chars)
    with caller.write() as (session, user):
        template = do_update_template(
            session, user, template_id, body, now=caller.now, max_body_chars=max_chars
        )
        return TemplateOut.of(template, user)


@router.delete(
    "/{template_id}", status_code=204, response_class=Response, responses=error_responses(404)
)
def delete_template(template_id: PathId, caller: CurrentUser) -> Response:
    """Delete for everyone (the same people as may change it)."""
    with caller.write() as (session, user):
        do_delete_template(session, user, template_id)
    return Response(status_code=204)


@router.post(
    "/{template_id}/preview", response_model=PreviewOut, responses=error_responses(404, 422)
)
def preview_template(template_id: PathId, body: PreviewIn, caller: CurrentUser) -> PreviewOut:
    """The template filled in for a conversation the caller is a member of (404 otherwise), or
    for an application, candidate or job they can see before a conversation exists. Fields
    with no value and no fallback are left as written and listed in `missing`: a preview does
    not fail for them (a send does)."""
    with caller.read() as (session, user):
        return preview_as(session, user, template_id, body)
