"""The conversation page, the fragments our script fetches to draw new and older messages, and
the forms that act on a conversation (send, end, delete) for browsers without our script."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobchat import access
from jobchat.conversations.actions import do_end_conversation
from jobchat.errors import Invalid

# The upload API's own words for a refused file (415, 413, 422), so both ways of sending agree.
from jobchat.files.api import _refusal as refusal
from jobchat.files.api import _storage_down as storage_down
from jobchat.files.intake import FileRejected, StoredFile, add_attachment, discard, store_file
from jobchat.files.storage import StorageUnavailable
from jobchat.inputs import MAX_ID, PathId
from jobchat.messages.actions import Limits, Outgoing
from jobchat.messages.models import Channel
from jobchat.messages.queries import history, history_after, sent_with_key
from jobchat.messages.requests import delete_as, send_as
from jobchat.scheduling.requests import check_client_key
from jobchat.web.layout import frame
from jobchat.web.notified import notified_message
from jobchat.web.pages import same_site_referrer
from jobchat.web.scheduled import schedule_form
from jobchat.web.templating import ENV, render
from jobchat.web.thread import (
    CHANNEL_LABELS,
    PAGE_SIZE,
    entries_after,
    load_thread,
    page_entries,
)
from jobchat.web.viewer import FormViewer, PageViewer, Viewer

router = APIRouter(include_in_schema=False)
log = logging.getLogger("jobchat.files")

# The composer's form post carries its files in its body: the app's body limit lets this path
# take as many files as a message may have, each of the attachment limit (plus framing).
SEND_FORM_PATH = re.compile(r"/conversations/[^/]+/messages")
# Files one message takes (as SendMessageIn.attachments).
MAX_FORM_FILES = 10

MessageId = Annotated[int | None, Query(ge=0, le=MAX_ID)]


@router.get("/conversations/{conversation_id}")
def conversation_page(
    conversation_id: PathId, viewer: PageViewer, message: MessageId = None, at: MessageId = None
) -> HTMLResponse:
    """``message``: the one a notification was about (a push's url), highlighted, or said to
    be deleted. ``at``: a message to open the page at (a search result), however old: the
    history around it, it highlighted, newer ones loaded on scrolling down."""
    with viewer.read() as (session, user):
        conv, member = access.access_conversation(session, user, conversation_id)
        thread = load_thread(session, user, conv, member, viewer.caller.state.settings, at=at)
        shown = message if message is not None else thread.at
        return render(
            "conversation.html",
            thread=thread,
            notified=notified_message(session, user, conv.id, shown, thread.messages),
            channel_labels=CHANNEL_LABELS,
            **frame(session, user, viewer, "inbox"),
        )


@router.get("/conversations/{conversation_id}/messages.html")
def message_fragment(
    conversation_id: PathId,
    viewer: PageViewer,
    after: MessageId = None,
    before: MessageId = None,
    day: Annotated[str, Query(max_length=10)] = "",
    newer: bool = False,
) -> HTMLResponse:
    """Bubbles as HTML: those after ``after`` (a new message arrived), or the page before
    ``before`` (scrolling up). ``day`` is the day of the message drawn last, so a separator
    comes only where the day changes. ``newer``: a page opened at an old message is asking
    for the next page down; a "Load newer" button follows when more do."""
    with viewer.read() as (session, user):
        access.access_conversation(session, user, conversation_id)
        older: int | None = None
        if after is not None:
            messages = history_after(session, user, conversation_id, after=after, limit=PAGE_SIZE)
            entries = entries_after(
                session, conversation_id, messages, after=after, full=len(messages) == PAGE_SIZE
            )
        else:
            messages, older = history(
                session, user, conversation_id, before=before or None, limit=PAGE_SIZE
            )
            entries = page_entries(
                session, conversation_id, messages, more=older is not None, before=before or None
            )
        module = ENV.get_template("_messages.html").module
        html = (module.older_button(older) if older else "") + module.message_items(  # type: ignore[attr-defined]
            entries, user, viewer.csrf, day, None
        )
        if newer and after is not None and len(messages) == PAGE_SIZE:
            html += module.newer_button(messages[-1].id)  # type: ignore[attr-defined]
    return HTMLResponse(html)


def _back(request: Request, conversation_id: int) -> RedirectResponse:
    """Back to the page the form was on (a conversation can be shown inside a candidate's
    profile or a job's page), else to the conversation's own page."""
    return RedirectResponse(
        same_site_referrer(request) or f"/conversations/{conversation_id}", status_code=303
    )


@router.post("/conversations/{conversation_id}/messages")
def send_form(
    conversation_id: PathId,
    request: Request,
    viewer: FormViewer,
    body: Annotated[str, Form(max_length=100_000)] = "",
    channel: Annotated[Channel, Form()] = Channel.app,
    subject: Annotated[str, Form(max_length=1_000)] = "",
    idempotency_key: Annotated[str | None, Form(max_length=200)] = None,
    send_later: Annotated[str, Form(max_length=20)] = "",
    send_at: Annotated[str, Form(max_length=40)] = "",
    file: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """Send from a form post: what the composer does when our script is not running. ``file``:
    the composer's file input (multipart), stored as the API's upload stores it (checked by
    content, streamed to storage) and taken by the message in the same transaction."""
    check_client_key(idempotency_key or None)
    chosen = [f for f in file or [] if f.filename or f.size]  # no file chosen: an empty part
    if send_later not in ("", "now"):  # "Send later" was chosen
        if chosen:  # as the API: a scheduled message carries no files (yet), never silently
            raise Invalid({"attachments": "cannot be scheduled yet; send them now"})
        schedule_form(
            viewer, conversation_id, body, channel, subject, idempotency_key, send_later, send_at
        )
        return _back(request, conversation_id)
    state = viewer.caller.state
    if len(chosen) > MAX_FORM_FILES:
        raise Invalid({"file": f"a message takes at most {MAX_FORM_FILES} files"})
    if chosen and idempotency_key and _already_sent(viewer, idempotency_key):
        # A resubmitted form (a reload, a double click): it was sent, and its files with it.
        # Storing them again would only leave copies nothing takes.
        return _back(request, conversation_id)
    stored = _store_files(viewer, conversation_id, chosen)
    try:
        with viewer.write() as (session, user):
            ids = tuple(
                add_attachment(
                    session,
                    conversation_id=conversation_id,
                    uploader_id=user.id,
                    stored=s,
                    now=viewer.caller.now,
                ).id
                for s in stored
            )
            send_as(
                session,
                user,
                conversation_id,
                Outgoing(
                    body=body,
                    channel=channel,
                    subject=subject.strip() or None,
                    idempotency_key=idempotency_key or None,
                    attachments=ids,
                ),
                limiter=state.send_limiter,
                limits=Limits.of(state.settings),
                now=viewer.caller.now,
            )
    except BaseException:
        # Nothing points at the stored files: they go now, not in a day.
        for s in stored:
            with contextlib.suppress(StorageUnavailable):
                discard(state.storage, s)
        raise
    return _back(request, conversation_id)


def _already_sent(viewer: Viewer, key: str) -> bool:
    with viewer.read() as (session, user):
        return sent_with_key(session, user.id, key) is not None


def _store_files(viewer: Viewer, conversation_id: int, files: list[UploadFile]) -> list[StoredFile]:
    """The form's files in storage (before the write turn: reading and checking is the slow
    part), or the API's error for the first refused, with nothing of them left stored."""
    if not files:
        return []
    state = viewer.caller.state
    with viewer.read() as (session, user):
        conv, _member = access.access_conversation(session, user, conversation_id)
        access.check_post(user, conv)
    stored: list[StoredFile] = []
    try:
        for upload in files:
            stored.append(
                store_file(
                    state.storage,
                    upload.file,
                    filename=upload.filename or "",
                    max_bytes=state.settings.max_attachment_bytes,
                )
            )
    except FileRejected as rejected:
        _discard_all(viewer, stored)
        raise refusal(rejected) from None
    except StorageUnavailable as error:
        # As the upload API answers; what was stored before the failure goes too.
        log.warning("form files not stored: %s", error)
        _discard_all(viewer, stored)
        raise storage_down() from None
    return stored


def _discard_all(viewer: Viewer, stored: list[StoredFile]) -> None:
    for s in stored:
        with contextlib.suppress(StorageUnavailable):
            discard(viewer.caller.state.storage, s)


@router.post("/conversations/{conversation_id}/end")
def end_form(conversation_id: PathId, request: Request, viewer: FormViewer) -> Response:
    with viewer.write() as (session, user):
        conv, _member = access.access_conversation(session, user, conversation_id)
        access.check_end(user, conv)
        do_end_conversation(session, actor=user, conv=conv, now=viewer.caller.now)
    return _back(request, conversation_id)


@router.post("/messages/{message_id}/delete")
def delete_form(
    message_id: PathId,
    request: Request,
    viewer: FormViewer,
    for_: Annotated[Literal["me", "everyone"], Form(alias="for")] = "me",
) -> Response:
    with viewer.write() as (session, user):
        conv = delete_as(
            session, user, message_id, for_everyone=for_ == "everyone", now=viewer.caller.now
        )
    return _back(request, conv.id)
