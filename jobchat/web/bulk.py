"""The bulk message pages: from the candidate manager's selection to a composer (one template or
a written body, one channel, optionally later) that previews the message for the first candidate
and says who will be skipped and why, then a progress page that follows the send.

- ``GET /bulk/new?application=…&application=…``: the composer.
- ``POST /bulk``: with ``action=preview``, the composer again with the choices made (the
  preview and the skips follow the channel and template chosen; no script needed); else
  queues it (``scheduling.bulk.requests.queue_as``, as the API does), then the progress page;
  bad input is the composer again with the problem beside the field (422).
- ``GET /bulk/{id}``: progress; ``GET /bulk/{id}/progress.html``: its live part alone, which
  bulk.js asks for every 1.5 s until the bulk is done (there is no per-user event on the
  stream to push it: events belong to conversations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from jobchat import access
from jobchat.directory.models import Application, Job, User
from jobchat.errors import Conflict, Invalid, RateLimited
from jobchat.inputs import MAX_ID, PathId
from jobchat.messages.actions import Limits
from jobchat.messages.models import Channel
from jobchat.scheduling.bulk.models import MAX_RECIPIENTS, BulkMessage, BulkRecipient
from jobchat.scheduling.bulk.queries import own_bulk, recipients
from jobchat.scheduling.bulk.reach import Skip, reach_many, text_for
from jobchat.scheduling.bulk.requests import queue_as
from jobchat.scheduling.bulk.schemas import BulkMessageIn
from jobchat.templates.models import Template
from jobchat.templates.queries import visible_template, visible_templates
from jobchat.web.layout import frame
from jobchat.web.scheduled_view import parse_local
from jobchat.web.templating import render
from jobchat.web.thread import CHANNEL_LABELS
from jobchat.web.viewer import FormViewer, PageViewer, Viewer

router = APIRouter(include_in_schema=False)

Refs = Annotated[list[str], Query(max_length=MAX_RECIPIENTS)]
FormRefs = Annotated[list[str], Form(max_length=MAX_RECIPIENTS)]
POLL_MS = 1500
# Not str.isdigit: it takes "²" and other digits int() refuses.
_DIGITS = re.compile("[0-9]+")


@dataclass(frozen=True)
class Pick:
    """A selected application, and why it will be skipped if that is known now."""

    application: Application
    skip: Skip | None


@dataclass(frozen=True)
class Draft:
    """The composer's read-model."""

    refs: list[str]
    picks: list[Pick]
    unknown: int  # selected ids that name no application the viewer can see
    templates: list[Template]
    preview_for: Application | None
    preview_subject: str | None
    preview_body: str | None
    preview_problem: str | None

    @property
    def reachable(self) -> int:
        return sum(1 for p in self.picks if p.skip is None)

    @property
    def skipped(self) -> list[Pick]:
        return [p for p in self.picks if p.skip is not None]


def _applications(session: Session, user: User, refs: list[str]) -> list[Application]:
    """The visible applications among ``refs``, in the order selected."""
    found = {
        a.ext_id: a
        for a in session.scalars(
            select(Application)
            .where(Application.ext_id.in_(refs), access.applications_visible_sql(user))
            .options(
                selectinload(Application.candidate),
                selectinload(Application.job).selectinload(Job.employer),
            )
        )
    }
    return [found[r] for r in refs if r in found]


def _draft(
    session: Session,
    user: User,
    refs: list[str],
    values: dict[str, str],
    limits: Limits,
) -> Draft:
    refs = list(dict.fromkeys(refs))
    apps = _applications(session, user, refs)
    try:
        channel = Channel(values.get("channel") or "app")
    except ValueError:
        channel = Channel.app
    routes = reach_many(session, user, apps, channel, limits)
    picks = [
        Pick(a, route if isinstance(route, Skip) else None)
        for a in apps
        if (route := routes[a.id]) is not None
    ]
    template = _template(session, user, values.get("template"))
    body = values.get("body") or (template.body if template else "")
    subject = values.get("subject") or (template.subject if template else None)
    first = next((p.application for p in picks if p.skip is None), None)
    preview_body = preview_subject = problem = None
    if first is not None and body.strip():
        text = text_for(body.strip(), (subject or "").strip() or None, first, user)
        if isinstance(text, Skip):
            problem = text.reason
        else:
            preview_body, preview_subject = text.body, text.subject
    return Draft(
        refs=refs,
        picks=picks,
        unknown=len(refs) - len(apps),
        templates=visible_templates(session, user),
        preview_for=first,
        preview_subject=preview_subject,
        preview_body=preview_body,
        preview_problem=problem,
    )


def _template(session: Session, user: User, given: str | None) -> Template | None:
    if not given or not _DIGITS.fullmatch(given) or not 0 < int(given) <= MAX_ID:
        return None
    return visible_template(session, user, int(given))


def _composer(
    viewer: Viewer,
    refs: list[str],
    values: dict[str, str],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    problem: str = "",
) -> HTMLResponse:
    limits = Limits.of(viewer.caller.state.settings)
    with viewer.read() as (session, user):
        access.check_staff(user)
        draft = _draft(session, user, refs, values, limits)
        return render(
            "bulk_new.html",
            status,
            draft=draft,
            values=values,
            chosen=values.get("channel") or "app",
            channels=[(c.value, CHANNEL_LABELS[c]) for c in Channel],
            sms_enabled=limits.sms_enabled,
            errors=errors or {},
            problem=problem,
            **frame(session, user, viewer, "candidates"),
        )


@router.get("/bulk/new")
def bulk_page(
    viewer: PageViewer,
    application: Refs = [],  # noqa: B006 (FastAPI copies a default; a list query needs one)
    template: Annotated[str, Query(max_length=30)] = "",
    body: Annotated[str, Query(max_length=100_000)] = "",
    subject: Annotated[str, Query(max_length=1_000)] = "",
    channel: Annotated[str, Query(max_length=10)] = "app",
    send_at: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    values = {
        "template": template,
        "body": body,
        "subject": subject,
        "channel": channel,
        "send_at": send_at,
    }
    return _composer(viewer, application, values)


def _local_time(value: str, timezone: str) -> datetime | None:
    """A datetime-local field's value, read in the viewer's time zone (None: not a time, or
    one no UTC time exists for); the page says so beside the field."""
    try:
        return parse_local(value, timezone)
    except Invalid:
        return None


_FIELDS = ("applications", "template", "body", "subject", "channel", "send_at")


@router.post("/bulk")
def bulk_send(
    viewer: FormViewer,
    application: FormRefs = [],  # noqa: B006 (FastAPI copies a default; a list form needs one)
    template: Annotated[str, Form(max_length=30)] = "",
    body: Annotated[str, Form(max_length=100_000)] = "",
    subject: Annotated[str, Form(max_length=1_000)] = "",
    channel: Annotated[str, Form(max_length=10)] = "app",
    send_later: Annotated[str, Form(max_length=10)] = "",
    send_at: Annotated[str, Form(max_length=40)] = "",
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=10)] = "send",
) -> Response:
    values = {
        "template": template,
        "body": body,
        "subject": subject,
        "channel": channel,
        "send_later": send_later,
        "send_at": send_at,
        "key": idempotency_key,
    }
    if action == "preview":
        return _composer(viewer, application, values)
    state = viewer.caller.state
    errors: dict[str, str] = {}
    given: dict[str, Any] = {
        "applications": application,
        "channel": channel,
        "body": body if body.strip() else None,
        "subject": subject.strip() or None,
        "template": int(template) if _DIGITS.fullmatch(template) else None,
        "idempotency_key": idempotency_key or None,
    }
    if template and not _DIGITS.fullmatch(template):
        errors["template"] = "is not a template"
    if send_later:
        with viewer.read() as (_session, user):
            when = _local_time(send_at, user.timezone) if send_at else None
        if when is None:
            errors["send_at"] = "give a date and time"
        given["send_at"] = when
    if not application:
        errors["applications"] = "select at least one candidate"
    try:
        request = BulkMessageIn.model_validate(given)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "body"
            errors.setdefault(field if field in _FIELDS else "body", error["msg"])
        request = None
    if errors or request is None:
        return _composer(viewer, application, values, status=422, errors=errors)
    try:
        with viewer.write() as (session, user):
            bulk, _replayed = queue_as(
                session,
                user,
                request,
                limiter=state.send_limiter,
                limits=Limits.of(state.settings),
                max_active=state.settings.max_active_bulks_per_user,
                now=viewer.caller.now,
            )
            bulk_id = bulk.id
    except Invalid as exc:
        return _composer(viewer, application, values, status=422, errors=exc.fields or {})
    except (Conflict, RateLimited) as exc:
        if exc.code == "idempotency_key_reused":
            values["key"] = ""
        return _composer(viewer, application, values, status=exc.status, problem=exc.message)
    return RedirectResponse(f"/bulk/{bulk_id}", status_code=303)


@dataclass(frozen=True)
class Line:
    """A recipient as the progress page shows them."""

    row: BulkRecipient
    name: str | None
    job: str | None


def _progress(session: Session, user: User, bulk_id: int) -> dict[str, Any]:
    bulk: BulkMessage = own_bulk(session, user, bulk_id)
    # Who it went to is listed once it is done; until then only the skipped, which stay few.
    rows = recipients(session, bulk.id, skipped_only=bulk.status != "done")
    apps = {
        a.id: a
        for a in session.scalars(
            select(Application)
            .where(
                Application.id.in_([r.application_id for r in rows if r.application_id]),
                # Not a name or a title the author may no longer see (as the API shows none).
                access.applications_visible_sql(user),
            )
            .options(selectinload(Application.candidate), selectinload(Application.job))
        )
    }
    lines = []
    for r in rows:
        app = apps.get(r.application_id) if r.application_id else None
        lines.append(Line(r, app.candidate.name if app else None, app.job.title if app else None))
    return {
        "bulk": bulk,
        "skipped": [line for line in lines if line.row.status == "skipped"],
        "sent_lines": [line for line in lines if line.row.status == "sent"],
        "channel_label": CHANNEL_LABELS[Channel(bulk.channel)],
        "poll_ms": POLL_MS,
    }


@router.get("/bulk/{bulk_id}")
def progress_page(bulk_id: PathId, viewer: PageViewer) -> HTMLResponse:
    with viewer.read() as (session, user):
        access.check_staff(user)
        return render(
            "bulk.html",
            **_progress(session, user, bulk_id),
            **frame(session, user, viewer, "candidates"),
        )


@router.get("/bulk/{bulk_id}/progress.html")
def progress_fragment(bulk_id: PathId, viewer: PageViewer) -> HTMLResponse:
    with viewer.read() as (session, user):
        access.check_staff(user)
        return render("_bulk_progress.html", me=user, **_progress(session, user, bulk_id))
