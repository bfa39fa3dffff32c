"""The scheduled-messages page (the viewer's own, to filter, edit and cancel), its forms, the
fragment our script redraws a thread's scheduled messages from, and the composer's "Send
later" for browsers without our script."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.queries import memberships_in
from jobchat.conversations.render import render_conversations
from jobchat.directory.models import User
from jobchat.errors import Invalid
from jobchat.inputs import MAX_ID, PathId
from jobchat.messages.actions import Limits, Outgoing
from jobchat.messages.models import Channel
from jobchat.scheduling.models import ScheduledMessage, ScheduledStatus
from jobchat.scheduling.queries import scheduled_of
from jobchat.scheduling.requests import cancel_as, schedule_as, update_as
from jobchat.web.labels import conversation_title
from jobchat.web.layout import frame
from jobchat.web.pages import same_site_referrer
from jobchat.web.scheduled_view import chosen_time, parse_local, scheduled_in_thread, view_of
from jobchat.web.templating import ENV, render
from jobchat.web.thread import CHANNEL_LABELS
from jobchat.web.viewer import FormViewer, PageViewer, Viewer

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# What is still to go out comes first: it is what one comes here to change.
FILTERS = (
    ("scheduled", "Scheduled"),
    ("sent", "Sent"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("all", "All"),
)
LEFT = "A conversation you are no longer in"


def schedule_form(
    viewer: Viewer,
    conversation_id: int,
    body: str,
    channel: Channel,
    subject: str,
    idempotency_key: str | None,
    choice: str,
    custom: str,
) -> None:
    """The composer's form with "Send later" chosen (a preset, or a date and time in the
    viewer's zone): scheduled instead of sent."""
    now = viewer.caller.now
    out = Outgoing(
        body=body,
        channel=channel,
        subject=subject.strip() or None,
        idempotency_key=idempotency_key or None,
    )
    with viewer.write() as (session, user):
        send_at = chosen_time(choice, custom, user.timezone, now)
        if send_at is None:
            raise Invalid({"send_later": "choose when to send it"})
        state = viewer.caller.state
        schedule_as(
            session,
            user,
            conversation_id,
            out,
            send_at=send_at,
            limiter=state.send_limiter,
            limits=Limits.of(state.settings),
            max_pending=state.settings.max_scheduled_per_user,
            now=now,
        )


def _titles(session: Session, user: User, rows: list[ScheduledMessage]) -> dict[int, str]:
    """The name of each conversation in the list as the viewer reads it (one they left has
    none: they can no longer see it)."""
    pairs = memberships_in(session, user, (r.conversation_id for r in rows))
    return {c.id: conversation_title(c, user) for c in render_conversations(session, user, pairs)}


def _page(
    viewer: Viewer,
    status_filter: str,
    after: int | None,
    *,
    saved: int | None = None,
    cancelled: int | None = None,
    editing: int | None = None,
    errors: dict[int, dict[str, str]] | None = None,
    values: dict[int, dict[str, str]] | None = None,
    code: int = 200,
) -> HTMLResponse:
    wanted = None if status_filter == "all" else ScheduledStatus(status_filter)
    with viewer.read() as (session, user):
        rows, cursor = scheduled_of(session, user.id, status=wanted, after=after, limit=PAGE_SIZE)
        base = f"/scheduled?status={status_filter}"
        return render(
            "scheduled.html",
            code,
            items=[view_of(r, user.timezone) for r in rows],
            titles=_titles(session, user, rows),
            left=LEFT,
            more_href=f"{base}&after={cursor}" if cursor else None,
            filters=[
                (key, label, "/scheduled" if key == "scheduled" else f"/scheduled?status={key}")
                for key, label in FILTERS
            ],
            current=status_filter,
            channel_labels=CHANNEL_LABELS,
            saved=saved,
            cancelled=cancelled,
            editing=editing,
            errors=errors or {},
            values=values or {},
            **frame(session, user, viewer, "scheduled"),
        )


StatusFilter = Annotated[
    str, Query(pattern="^(all|scheduled|sent|failed|cancelled)$", max_length=10)
]


@router.get("/scheduled")
def scheduled_page(
    viewer: PageViewer,
    status: StatusFilter = "scheduled",
    after: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cancelled: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    edit: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """``edit``: the one whose editor opens (a thread's Edit link)."""
    return _page(viewer, status, after, saved=saved, cancelled=cancelled, editing=edit)


@router.post("/scheduled/{scheduled_id}")
def edit_form(
    scheduled_id: PathId,
    viewer: FormViewer,
    send_at: Annotated[str, Form(max_length=40)] = "",
    body: Annotated[str, Form(max_length=100_000)] = "",
    subject: Annotated[str | None, Form(max_length=1_000)] = None,
) -> Response:
    """Save a changed time or text; a bad one is the page again with the problem beside the
    field and what was entered kept (422)."""
    state = viewer.caller.state
    try:
        with viewer.write() as (session, user):
            update_as(
                session,
                user,
                scheduled_id,
                send_at=parse_local(send_at, user.timezone),
                body=body,
                subject=subject,
                subject_given=subject is not None,
                limiter=state.send_limiter,
                limits=Limits.of(state.settings),
                now=viewer.caller.now,
            )
    except Invalid as exc:
        fields = dict(exc.fields or {"body": exc.message})
        entered = {"send_at": send_at, "body": body, "subject": subject or ""}
        return _page(
            viewer,
            "scheduled",
            None,
            errors={scheduled_id: fields},
            values={scheduled_id: entered},
            code=422,
        )
    return RedirectResponse(
        f"/scheduled?saved={scheduled_id}#scheduled-{scheduled_id}", status_code=303
    )


@router.post("/scheduled/{scheduled_id}/cancel")
def cancel_form(scheduled_id: PathId, request: Request, viewer: FormViewer) -> Response:
    with viewer.write() as (session, user):
        cancel_as(session, user, scheduled_id, now=viewer.caller.now)
    back = same_site_referrer(request)
    if back is None or back.startswith("/scheduled"):
        back = f"/scheduled?cancelled={scheduled_id}"
    return RedirectResponse(back, status_code=303)


@router.get("/conversations/{conversation_id}/scheduled.html")
def scheduled_fragment(conversation_id: PathId, viewer: PageViewer) -> HTMLResponse:
    """The viewer's waiting messages in this conversation, as the thread shows them."""
    with viewer.read() as (session, user):
        access.access_conversation(session, user, conversation_id)
        module: Any = ENV.get_template("_scheduled_strip.html").module
        html = module.scheduled_items(scheduled_in_thread(session, user, conversation_id))
    return HTMLResponse(html)
