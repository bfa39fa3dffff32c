"""SMS over HTTP: Twilio's webhooks (signed), consent, segment counts, unmatched texts."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from jobchat import access
from jobchat.app_state import AppState
from jobchat.auth.deps import CurrentUser, Integration, State
from jobchat.directory.models import User, UserKind
from jobchat.directory.queries import user_by_ext
from jobchat.errors import Forbidden, Invalid, NotFound
from jobchat.http_errors import error_responses
from jobchat.inputs import MAX_ID, PathRef, Text
from jobchat.sms.consent import do_record_staff_consent
from jobchat.sms.models import ConsentSource, InboundSms, SmsConsentChange
from jobchat.sms.queries import consent_history, inbound_page, number_opt_out
from jobchat.sms.segments import count_segments
from jobchat.sms.spool import Kind, SpoolIngester, database_trouble

log = logging.getLogger("jobchat.sms")

webhooks = APIRouter(prefix="/api/v1/inbound/sms", tags=["inbound"])
users = APIRouter(prefix="/api/v1", tags=["sms"], responses=error_responses(401, 404))
integration = APIRouter(
    prefix="/api/v1",
    tags=["integration"],
    dependencies=[Integration],
    responses=error_responses(401, 403),
)


# --- Twilio's webhooks -------------------------------------------------------------------------


async def _signed_form(request: Request, state: AppState) -> dict[str, str]:
    """The webhook's form, once its X-Twilio-Signature checks out against our public URL, the
    path and the parameters (Twilio signs the URL it called, so JOBCHAT_PUBLIC_URL must be the
    address Twilio uses)."""
    token = state.settings.twilio_auth_token
    if state.settings.sms_provider != "twilio" or not token:
        raise NotFound("Twilio is not set up on this server.", code="sms_not_configured")
    form = await request.form()
    params = {key: str(value) for key, value in form.items()}
    url = state.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    if not signature or not RequestValidator(token).validate(url, params, signature):
        raise Forbidden(
            "The X-Twilio-Signature header is missing or does not match this request.",
            code="bad_signature",
        )
    return params


def _twiml(reply: str | None) -> Response:
    answer = MessagingResponse()
    if reply:
        answer.message(reply)
    return Response(content=str(answer.to_xml(xml_declaration=True)), media_type="text/xml")


async def _spooled(request: Request, kind: Kind, params: dict[str, str]) -> str | None:
    """Keep the webhook on disk, then store it: the TwiML reply, if any. When the database
    cannot take it now (busy, unreachable), the spool's ingester stores it as soon as it can:
    Twilio would not send it again, so it is never answered with an error (jobchat.sms.spool)."""
    ingester: SpoolIngester = request.app.state.sms_spool
    try:
        path = await asyncio.to_thread(ingester.spool.put, kind, params)
    except OSError:
        # A full or unwritable disk: the database is the only place left (an error now is
        # at least logged by Twilio, error 11200).
        log.exception("could not spool a Twilio %s webhook; storing it directly", kind)
        return await asyncio.to_thread(ingester.store, kind, params)
    try:
        return await asyncio.to_thread(ingester.take, path)
    except Exception as exc:
        log.warning(
            "Twilio %s webhook %s kept in the spool for later: %s",
            kind,
            params.get("MessageSid"),
            exc,
            exc_info=not database_trouble(exc),
        )
        ingester.wake()
        return None


# What the inbound_sms table keeps of a MessageSid; a longer one is no Twilio id.
MAX_SID_CHARS = 64


@webhooks.post("/twilio", responses=error_responses(403, 404, 413, 422), response_class=Response)
async def twilio_inbound(request: Request, state: State) -> Response:
    """A text to our number, as Twilio posts it (form-encoded, signed). Answers TwiML: empty,
    or a short reply (HELP; an opt-out or an opt-in, confirmed once; a text into a closed
    conversation). Once signed and well formed it
    is never lost and never answered with an error: when the database is busy it is answered
    at once with empty TwiML, and lands in its thread as soon as the database takes it."""
    params = await _signed_form(request, state)
    sid = params.get("MessageSid")
    if not sid:
        raise Invalid({"MessageSid": "is required"})
    if len(sid) > MAX_SID_CHARS:
        raise Invalid({"MessageSid": f"is at most {MAX_SID_CHARS} characters (Twilio's are 34)"})
    return _twiml(await _spooled(request, "inbound", params))


@webhooks.post(
    "/twilio/status",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404, 413),
)
async def twilio_status(request: Request, state: State) -> Response:
    """A delivery status callback (queued, sent, delivered, undelivered, failed, with
    ErrorCode): it moves the SMS delivery of the message it is about, forward only. Kept like
    an incoming text when the database is busy."""
    params = await _signed_form(request, state)
    await _spooled(request, "status", params)
    return Response(status_code=204)


# --- segments ---------------------------------------------------------------------------------


class SegmentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: Text


class SegmentsOut(BaseModel):
    encoding: Literal["GSM-7", "UCS-2"]
    characters: int = Field(description="In the encoding's units (GSM-7 septets, UTF-16 units).")
    segments: int = Field(description="How many SMS the body will be sent (and billed) as.")
    per_segment: int
    max_characters: int = Field(description="Longer bodies are refused (422).")
    too_long: bool


@users.post("/sms/segments", response_model=SegmentsOut, responses=error_responses(422))
def sms_segments(body: SegmentsIn, caller: CurrentUser) -> SegmentsOut:
    """What a body will cost as SMS, before sending it."""
    counted = count_segments(body.body.strip())
    limit = caller.state.settings.max_sms_chars
    return SegmentsOut(
        encoding=counted.encoding,
        characters=counted.characters,
        segments=counted.segments,
        per_segment=counted.per_segment,
        max_characters=limit,
        too_long=len(body.body.strip()) > limit,
    )


# --- consent ----------------------------------------------------------------------------------


class ConsentChangeOut(BaseModel):
    consented: bool
    source: Literal["ats", "keyword", "staff"]
    detail: str | None
    by: str | None = Field(description="The staff member who recorded it (external id).")
    at: datetime

    @classmethod
    def of(cls, change: SmsConsentChange) -> ConsentChangeOut:
        return cls(
            consented=change.consented,
            source=ConsentSource(change.source).value,
            detail=change.detail,
            by=change.actor.ext_id if change.actor else None,
            at=change.created_at,
        )


class SmsConsentOut(BaseModel):
    candidate: str
    consent: bool
    phone: str | None
    phone_valid: bool
    phone_problem: str | None
    number_opted_out_at: datetime | None = Field(
        description=(
            "When the phone number texted STOP (or an opt-out like it), if it has not texted "
            "START since: no texts go to it, and no one else's opt-in is taken until then."
        )
    )
    history: list[ConsentChangeOut] = Field(description="Every change, newest first.")


class SmsConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    consent: bool
    note: Annotated[Text, Field(max_length=500)] | None = None


@users.get("/candidates/{ext_id}/sms-consent", response_model=SmsConsentOut)
def get_sms_consent(ext_id: PathRef, caller: CurrentUser) -> SmsConsentOut:
    """A candidate's SMS consent with the ledger of every change (staff who can see them)."""
    with caller.read() as (session, user):
        candidate = _visible_candidate(session, user, ext_id)
        return _render_consent(session, candidate)


@users.put(
    "/candidates/{ext_id}/sms-consent",
    response_model=SmsConsentOut,
    responses=error_responses(403, 409, 422),
)
def put_sms_consent(ext_id: PathRef, body: SmsConsentIn, caller: CurrentUser) -> SmsConsentOut:
    """Record a consent the candidate gave or withdrew by other means (on the phone, in person).
    A number that opted out by text (STOP) answers an opt-in with 409 `sms_number_opted_out`:
    the person's own STOP wins until their number texts START."""
    with caller.write() as (session, user):
        candidate = _visible_candidate(session, user, ext_id)
        do_record_staff_consent(
            session, candidate, body.consent, actor=user, now=caller.now, note=body.note
        )
        return _render_consent(session, candidate)


def _visible_candidate(session: Session, user: User, ext_id: str) -> User:
    access.check_staff(user)
    candidate = user_by_ext(session, UserKind.candidate, ext_id)
    if candidate is None or not access.can_see_candidate(session, user, candidate):
        raise NotFound("There is no candidate with that id.")
    return candidate


def _render_consent(session: Session, candidate: User) -> SmsConsentOut:
    opt_out = number_opt_out(session, candidate.phone)
    return SmsConsentOut(
        candidate=candidate.ext_id,
        consent=candidate.sms_consent,
        phone=candidate.phone,
        phone_valid=bool(candidate.phone) and candidate.phone_problem is None,
        phone_problem=candidate.phone_problem,
        number_opted_out_at=opt_out.created_at if opt_out else None,
        history=[ConsentChangeOut.of(c) for c in consent_history(session, candidate.id)],
    )


# --- texts nobody could place -------------------------------------------------------------------


class InboundSmsOut(BaseModel):
    id: int
    from_number: str
    body: str
    outcome: str
    detail: str | None
    candidate: str | None
    conversation: int | None
    message: int | None
    received_at: datetime


class InboundSmsPage(BaseModel):
    items: list[InboundSmsOut]
    next_cursor: int | None


@integration.get("/inbound/sms", response_model=InboundSmsPage, responses=error_responses(422))
def list_inbound_sms(
    state: State,
    outcome: str | None = Query(default=None, max_length=20, description="e.g. unknown_sender"),
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InboundSmsPage:
    """Texts that reached us, newest first: `outcome=unknown_sender` lists the ones from
    numbers no candidate has, kept for an admin to place."""
    with state.db.read() as session:
        rows = inbound_page(session, outcome=outcome, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return InboundSmsPage(
            items=[_inbound_out(r) for r in rows],
            next_cursor=rows[-1].id if more and rows else None,
        )


def _inbound_out(row: InboundSms) -> InboundSmsOut:
    return InboundSmsOut(
        id=row.id,
        from_number=row.from_number,
        body=row.body,
        outcome=row.outcome,
        detail=row.detail,
        candidate=row.candidate.ext_id if row.candidate else None,
        conversation=row.conversation_id,
        message=row.message_id,
        received_at=row.received_at,
    )
