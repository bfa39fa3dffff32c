"""Uploading and downloading attachments (user token or browser session)."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from jobchat import access
from jobchat.auth.deps import Caller, CurrentUser
from jobchat.errors import (
    AppError,
    Invalid,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from jobchat.files.intake import FileRejected, StoredFile, add_attachment, discard, store_file
from jobchat.files.models import Attachment
from jobchat.files.schemas import AttachmentOut
from jobchat.files.serving import (
    SAFETY_HEADERS,
    Unsatisfiable,
    content_disposition,
    etag,
    none_match,
    parse_range,
    served_type,
)
from jobchat.files.storage import Missing, StorageUnavailable
from jobchat.http_errors import error_responses
from jobchat.inputs import PathId

log = logging.getLogger("jobchat")

router = APIRouter(prefix="/api/v1", tags=["attachments"], responses=error_responses(401, 404))

# The upload route's path, for the request body limit (jobchat.app): an upload is bounded by
# JOBCHAT_MAX_ATTACHMENT_BYTES, not the general JOBCHAT_MAX_REQUEST_BYTES.
UPLOAD_PATH = re.compile(r"/api/v1/conversations/[^/]+/attachments")
# Room for the multipart framing around the file: boundaries, part headers, a long name.
UPLOAD_FRAMING_BYTES = 64 * 1024


class UnsupportedType(AppError):
    status = 415
    code = "unsupported_type"


class StorageDown(AppError):
    status = 503
    code = "storage_unavailable"
    # A disk or S3 store back in a moment is the common case; the client need not guess.
    retry_after = 5


def _storage_down() -> StorageDown:
    return StorageDown("The file storage cannot be reached just now; try again in a moment.")


_REFUSALS: dict[str, type[AppError]] = {"unsupported_type": UnsupportedType}

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PDF, Word (.docx, .doc), OpenDocument text, RTF, "
                            "plain text, PNG, JPEG, GIF, WebP or HEIC, read from the content; "
                            "at most JOBCHAT_MAX_ATTACHMENT_BYTES.",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/conversations/{conversation_id}/attachments",
    status_code=201,
    response_model=AttachmentOut,
    response_model_exclude_none=True,
    responses=error_responses(409, 413, 415, 422, 429),
    openapi_extra=_UPLOAD_BODY,
)
async def upload(conversation_id: PathId, caller: CurrentUser, request: Request) -> JSONResponse:
    """Upload a file into a conversation (multipart, field ``file``), for a message of yours to
    take (``attachments`` of a send). Its type is read from the content; images are stored
    without their metadata and ``size`` is the stored size. Only you can fetch it until a
    message takes it; one no message took is removed after a day."""
    state = caller.state
    # Who may post here is known before a byte of the body is read.
    await run_in_threadpool(_check_may_upload, caller, conversation_id)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "multipart/form-data":
        # Refused before the body is read: an urlencoded form would be parsed in memory whole.
        raise UnsupportedMediaType(
            "Send the file as multipart/form-data (field file).",
            fields={"content-type": "must be multipart/form-data"},
        )
    try:
        form = await request.form(max_files=1, max_fields=10)
    except StarletteHTTPException as error:
        raise Invalid({"file": f"the multipart body is malformed ({error.detail})"}) from None
    except ClientDisconnect:
        # The sender went away mid-upload: nothing was stored, and nobody reads an answer.
        raise Invalid({"file": "the upload was interrupted"}) from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid({"file": "is required (a multipart/form-data file field)"})
        try:
            stored = await run_in_threadpool(
                store_file,
                state.storage,
                upload.file,
                filename=_form_filename(upload.filename),
                max_bytes=state.settings.max_attachment_bytes,
            )
        except FileRejected as rejected:
            raise _refusal(rejected) from None
        except StorageUnavailable as error:
            log.warning("upload not stored: %s", error)
            raise _storage_down() from None
    finally:
        # Its spooled copy (in memory up to 1 MB, then a nameless temporary file) goes now.
        await form.close()
    try:
        attachment = await run_in_threadpool(_record, caller, conversation_id, stored)
    except BaseException:
        # Nothing points at the stored objects: they go now, not never.
        with contextlib.suppress(StorageUnavailable):
            await run_in_threadpool(discard, state.storage, stored)
        raise
    return JSONResponse(
        AttachmentOut.of(attachment, with_url=False).model_dump(mode="json", exclude_none=True),
        status_code=201,
    )


def _form_filename(sent: str | None) -> str:
    """The name as the sender's file had it: browsers (and httpx) write a double quote, CR and
    LF in a multipart filename as %22, %0D and %0A (the HTML standard's form encoding), which
    multipart parsers leave as they are."""
    name = sent or ""
    for escaped, char in (("%22", '"'), ("%0D", "\r"), ("%0A", "\n")):
        name = name.replace(escaped, char).replace(escaped.lower(), char)
    return name


def _refusal(rejected: FileRejected) -> AppError:
    if rejected.code == "too_large":
        # The same code as the body limit's answer to an upload far over the limit.
        return PayloadTooLarge(rejected.reason)
    if rejected.code == "empty":
        return Invalid({"file": rejected.reason}, rejected.reason, code="empty_file")
    return _REFUSALS.get(rejected.code, UnsupportedType)(rejected.reason)


def _check_may_upload(caller: Caller, conversation_id: int) -> None:
    with caller.read() as (session, user):
        conv, _member = access.access_conversation(session, user, conversation_id)
        access.check_post(user, conv)
    # An upload costs like a send: the same per-user budget keeps a script from filling the
    # storage as fast as the network allows.
    caller.state.send_limiter.take(caller.user_id)


def _record(caller: Caller, conversation_id: int, stored: StoredFile) -> Attachment:
    # Only the INSERT takes the write turn: the slow part (reading, checking, storing) ran
    # before, without it. Membership is checked again: it may have ended meanwhile.
    with caller.write() as (session, user):
        conv, _member = access.access_conversation(session, user, conversation_id)
        access.check_post(user, conv)
        attachment = add_attachment(
            session,
            conversation_id=conv.id,
            uploader_id=user.id,
            stored=stored,
            now=caller.now,
        )
        session.expunge(attachment)
        return attachment


# HEAD answers as GET, without the body: what a client checks (size, type) before a download.
@router.head("/attachments/{attachment_id}", include_in_schema=False)
@router.get(
    "/attachments/{attachment_id}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        206: {"description": "The range asked for (`Range: bytes=…`)."},
        **error_responses(416),
    },
)
async def download(attachment_id: PathId, caller: CurrentUser, request: Request) -> Response:
    """The file, for members of its conversation (before a message takes it, for its uploader
    only); 404 for anyone else, for a removed file and once its message is deleted for
    everyone. ``Range: bytes=a-b``, ``a-`` and ``-n`` are answered 206."""
    attachment = await run_in_threadpool(_fetch, caller, attachment_id)
    return await _serve(
        caller,
        request,
        attachment.storage_key,
        served_type(attachment),
        content_disposition("attachment", attachment.filename),
    )


@router.head("/attachments/{attachment_id}/thumbnail", include_in_schema=False)
@router.get(
    "/attachments/{attachment_id}/thumbnail",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "A JPEG, at most 480 px."}},
)
async def thumbnail(attachment_id: PathId, caller: CurrentUser, request: Request) -> Response:
    """A small JPEG of an image attachment (404 for documents); the same access as the file."""
    attachment = await run_in_threadpool(_fetch, caller, attachment_id)
    if attachment.thumbnail_key is None:
        raise NotFound("This attachment has no thumbnail (it is not an image).")
    name = attachment.filename.rsplit(".", 1)[0] + ".jpg"
    return await _serve(
        caller,
        request,
        attachment.thumbnail_key,
        "image/jpeg",
        content_disposition("inline", name),
    )


def _fetch(caller: Caller, attachment_id: int) -> Attachment:
    with caller.read() as (session, user):
        attachment = access.access_attachment(session, user, attachment_id)
        session.expunge(attachment)
        return attachment


async def _serve(
    caller: Caller, request: Request, key: str, media_type: str, disposition: str
) -> Response:
    storage = caller.state.storage
    try:
        size = await run_in_threadpool(storage.size, key)
    except Missing:
        raise NotFound("The file is no longer stored.") from None
    except StorageUnavailable as error:
        log.warning("download not served: %s", error)
        raise _storage_down() from None
    tag = etag(key)
    headers = {
        **SAFETY_HEADERS,
        "Content-Disposition": disposition,
        "Accept-Ranges": "bytes",
        "ETag": tag,
    }
    if none_match(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if request.headers.get("if-range", tag) != tag:
        wanted = None  # the client's copy is another file: send this one whole
    try:
        part = parse_range(wanted, size)
    except Unsatisfiable:
        return JSONResponse(
            {
                "error": {
                    "code": "range_not_satisfiable",
                    "message": f"The file has {size} bytes; the range asked for is outside it.",
                }
            },
            status_code=416,
            headers={**SAFETY_HEADERS, "Content-Range": f"bytes */{size}"},
        )
    start, stop, status = 0, size, 200
    if part is not None:
        start, stop, status = part.start, part.stop, 206
        headers["Content-Range"] = part.content_range(size)
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, media_type=media_type, headers=headers)
    try:
        chunks = await run_in_threadpool(storage.read, key, start, stop)
    except Missing:
        raise NotFound("The file is no longer stored.") from None
    except StorageUnavailable as error:
        log.warning("download not served: %s", error)
        raise _storage_down() from None
    return StreamingResponse(chunks, status_code=status, media_type=media_type, headers=headers)
