"""Inbound email by webhook, for mail providers that forward mail over HTTP (SendGrid, Mailgun,
Postmark and the like, set to post the raw message)."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from jobchat.auth.deps import State
from jobchat.errors import Invalid, NotFound, Unauthorized, UnsupportedMediaType
from jobchat.files.api import StorageDown
from jobchat.files.storage import StorageUnavailable
from jobchat.http_errors import error_responses
from jobchat.mail.authenticity import Arrival
from jobchat.mail.service import MailService

INBOUND_EMAIL_PATH = "/api/v1/inbound/email"

router = APIRouter(prefix="/api/v1", tags=["inbound"])


class InboundEmailOut(BaseModel):
    outcome: Literal[
        "posted",
        "closed",
        "empty",
        "wrong_sender",
        "not_member",
        "unknown_thread",
        "automatic",
        "bounce",
        "dmarc_fail",
    ] = Field(
        description="What became of the mail; only `posted` put a message in a thread. "
        "`dmarc_fail`: the relay's Authentication-Results (JOBCHAT_MAIL_AUTHSERV_ID) say DMARC "
        "failed, and name no policy or `p=quarantine`/`p=reject`: a forgery, kept but never "
        "posted (a fail under `p=none` is let through). `wrong_sender` includes a mail without "
        "exactly one From: address."
    )
    inbound_id: int = Field(description="The stored raw mail.")
    message: int | None = Field(description="The message it became, when posted.")
    duplicate: bool = Field(description="This mail had been received before; nothing changed.")


def _secret_given(request: Request) -> str | None:
    """The secret from ``Authorization: Bearer <secret>``, or as the password of basic auth
    (what providers that post to https://user:secret@host/... send)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


@router.post(
    "/inbound/email",
    response_model=InboundEmailOut,
    responses=error_responses(401, 404, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def receive_email(
    request: Request,
    state: State,
    recipient: Annotated[
        list[str] | None,
        Query(description="The envelope recipient(s), when the provider tells them."),
    ] = None,
    sender: Annotated[
        str | None, Query(max_length=320, description="The envelope sender, when told.")
    ] = None,
) -> InboundEmailOut:
    """Take in one email, raw (`message/rfc822`), authenticated with
    `JOBCHAT_INBOUND_EMAIL_SECRET` as a bearer token or the basic-auth password. A reply to a
    reply address or to a notification lands in its thread; a mail delivered twice is stored
    once. Answers 200 with what became of the mail, whatever it was (a provider should not
    retry an auto-reply)."""
    configured = state.settings.inbound_email_secret
    if not configured:
        raise NotFound(
            "Inbound email by webhook is off: set JOBCHAT_INBOUND_EMAIL_SECRET to turn it on.",
            code="inbound_email_disabled",
        )
    given = _secret_given(request)
    if given is None or not hmac.compare_digest(given.encode(), configured.encode()):
        raise Unauthorized("The inbound email secret is missing or wrong.")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "message/rfc822":
        raise UnsupportedMediaType(
            "Send the raw email with Content-Type: message/rfc822.",
            fields={"content-type": "must be message/rfc822"},
        )
    raw = await request.body()
    if not raw.strip():
        raise Invalid({"body": "must be an email message"})
    mail: MailService = request.app.state.mail
    try:
        received = await mail.receive_async(
            raw,
            envelope_from=sender,
            envelope_to=[r for r in recipient or [] if r],
            # The provider received it from the internet: its Authentication-Results say
            # whether it is authentic (JOBCHAT_MAIL_AUTHSERV_ID).
            arrival=Arrival(via_relay=True, envelope_from=sender),
        )
    except StorageUnavailable:
        # Its files could not be stored: nothing was kept, and the provider tries again later.
        raise StorageDown(
            "The file storage cannot be reached just now; the email was not taken. Try again "
            "in a moment."
        ) from None
    return InboundEmailOut(
        outcome=received.outcome.value,
        inbound_id=received.inbound_id,
        message=received.message_id,
        duplicate=received.duplicate,
    )
