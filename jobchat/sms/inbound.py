"""Receiving texts and delivery statuses: the actions behind Twilio's two webhooks.

A text is stored once per MessageSid (Twilio retries webhooks), with what became of it:
- STOP and its synonyms, or an opt-out in the person's own words (jobchat.sms.keywords), opt the
  number out (every candidate with it, and any given it later), answered once with a
  confirmation; START and its synonyms opt it back in (each candidate's change recorded in the
  consent ledger; see jobchat.sms.consent), confirmed once too. A START with nothing to opt into
  is an ordinary reply ("Yes please" to a question). HELP and INFO are answered with who texts
  the number and whom to contact (jobchat.sms.identity).
- From a known candidate, it lands in the conversation where they were last texted, else in
  their most recently active application conversation, as their message with channel `sms`.
- Into an ended conversation it is not posted, and answered once saying so.
- Pictures sent with it (MMS) are not taken; the message gets a line saying so.
- From a number nobody has, it is kept for an admin (GET /api/v1/inbound/sms), not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.directory.models import User
from jobchat.directory.phones import normalise_phone
from jobchat.messages.actions import Limits, Outgoing, do_send_message
from jobchat.messages.models import Channel, Delivery, DeliveryStatus, Message
from jobchat.sms.consent import candidates_with, do_opt_in_number, do_opt_out_number
from jobchat.sms.identity import (
    DEFAULT_NAME,
    Sender,
    SenderSettings,
    help_reply,
    last_texter,
    opt_in_reply,
    opt_out_reply,
    sender_of,
)
from jobchat.sms.keywords import match_reply
from jobchat.sms.models import InboundSms, SmsOutcome, SmsStatusReport
from jobchat.sms.queries import number_opt_out
from jobchat.webhooks import events as webhook_events

_NOBODY = SenderSettings(name=DEFAULT_NAME, help_contact=None)
CLOSED_REPLY = (
    "This conversation has been closed, so your message was not delivered. "
    "Please use the contact details you were given if you need the team."
)

# A later status never moves a delivery back (Twilio's callbacks can arrive out of order), and a
# final one (delivered, undelivered, failed) is never replaced: "delivered" then a late "failed"
# stays delivered.
_FINAL = 3
_RANK = {
    DeliveryStatus.queued: 0,
    DeliveryStatus.sending: 1,
    DeliveryStatus.sent: 2,
    DeliveryStatus.delivered: _FINAL,
    DeliveryStatus.undelivered: _FINAL,
    DeliveryStatus.failed: _FINAL,
}
_TWILIO_STATUSES = {
    "queued": DeliveryStatus.queued,
    "accepted": DeliveryStatus.queued,
    "scheduled": DeliveryStatus.queued,
    "sending": DeliveryStatus.sending,
    "sent": DeliveryStatus.sent,
    "delivered": DeliveryStatus.delivered,
    "read": DeliveryStatus.delivered,
    "undelivered": DeliveryStatus.undelivered,
    "failed": DeliveryStatus.failed,
}


@dataclass(frozen=True)
class SmsReceived:
    outcome: SmsOutcome
    inbound_id: int
    message_id: int | None
    reply: str | None  # what to text back (TwiML), if anything
    duplicate: bool


def do_receive_sms(
    session: Session,
    params: dict[str, str],
    *,
    now: datetime,
    limits: Limits,
    sender: SenderSettings = _NOBODY,
) -> SmsReceived:
    sid = params["MessageSid"]
    earlier = session.scalars(select(InboundSms).where(InboundSms.provider_sid == sid)).first()
    if earlier is not None:
        # Twilio retried the webhook: nothing again, and no second answer.
        return SmsReceived(SmsOutcome(earlier.outcome), earlier.id, earlier.message_id, None, True)

    raw_from = params.get("From", "")
    number = (normalise_phone(raw_from, limits.default_region) or raw_from)[:32]
    body = params.get("Body", "").strip()
    row = InboundSms(
        provider_sid=sid,
        from_number=number,
        to_number=(params.get("To") or None) and params["To"][:32],
        body=body,
        params=params,
        received_at=now,
        outcome=SmsOutcome.unknown_sender,
    )
    session.add(row)

    def done(
        outcome: SmsOutcome, reply: str | None = None, detail: str | None = None
    ) -> SmsReceived:
        row.outcome = outcome
        row.detail = detail
        session.flush()
        return SmsReceived(outcome, row.id, row.message_id, reply, False)

    candidate = _candidate_with(session, number)
    row.candidate_id = candidate.id if candidate else None
    matched = match_reply(body)
    keyword = matched.keyword if matched else None
    if keyword == "help":
        return done(SmsOutcome.help, help_reply(_who_texted(session, number, sender), sender))
    nobody = None if candidate else "no candidate has this number (yet)"
    if matched is not None and keyword == "stop" and number:
        # Consent belongs to the number: every candidate with it, and any given it later.
        # Answered once: a number already opted out is not texted again. For the carrier
        # keywords Twilio answers itself and then blocks texts to the number, our reply
        # included (error 21610), so answering them too is harmless; an opt-out in other words
        # is Twilio's ordinary message, and this confirmation the only one the person gets.
        already = number_opt_out(session, number) is not None
        do_opt_out_number(session, number, now=now, detail=body, reason=matched.phrase)
        reply = None if already else opt_out_reply(_who_texted(session, number, sender))
        return done(SmsOutcome.opted_out, reply, detail=nobody)
    if keyword == "start" and number and _may_opt_in(session, number):
        do_opt_in_number(session, number, now=now, detail=body)
        reply = opt_in_reply(_who_texted(session, number, sender))
        return done(SmsOutcome.opted_in, reply, detail=nobody)
    if candidate is None:
        return done(SmsOutcome.unknown_sender)

    conv = _conversation_for(session, candidate)
    if conv is None:
        return done(SmsOutcome.no_conversation)
    row.conversation_id = conv.id
    member = session.get(Member, (conv.id, candidate.id))
    assert member is not None  # _conversation_for only finds their own
    if not access.may_post(candidate, conv):  # ended, or about a closed job
        told = _told_closed(session, conv, candidate)
        return done(SmsOutcome.closed, None if told else CLOSED_REPLY)
    # Pictures sent by MMS are not fetched from Twilio: the thread says so, never silently.
    note = media_note(params)
    if not body and not note:
        return done(SmsOutcome.empty)
    room = limits.max_chars - (len(note) + 2 if note else 0)
    if len(body) > room:
        body = body[: max(room, 1) - 1] + "…"
    body = "\n\n".join(part for part in (body, note) if part)[: limits.max_chars]
    posted, _ = do_send_message(
        session,
        actor=candidate,
        conv=conv,
        member=member,
        out=Outgoing(body=body, channel=Channel.sms, received=True),
        limits=limits,
        now=now,
    )
    row.message_id = posted.id
    return done(SmsOutcome.posted)


def _may_opt_in(session: Session, number: str) -> bool:
    """Whether a START has anything to opt into: the number opted out, or a candidate with it
    not consenting. Otherwise it is an ordinary reply (and is not confirmed again)."""
    if number_opt_out(session, number) is not None:
        return True
    return any(not c.sms_consent for c in candidates_with(session, number))


def _who_texted(session: Session, number: str, fallback: SenderSettings) -> Sender:
    return sender_of(last_texter(session, number), fallback)


def media_note(params: dict[str, str]) -> str:
    """The line a text's MMS media (Twilio's NumMedia) leaves in the thread: they are not
    taken (fetching them from the provider is not built), and the sender is told another way."""
    try:
        count = int(params.get("NumMedia") or 0)
    except ValueError:
        count = 0
    if count <= 0:
        return ""
    what = "a picture or file" if count == 1 else f"{count} pictures or files"
    return f"[Not attached: {what} sent by text message — send files by email or in the app]"


def _candidate_with(session: Session, number: str) -> User | None:
    """The candidate with this number; if several share it, the one who was texted last."""
    found = candidates_with(session, number)
    if len(found) <= 1:
        return found[0] if found else None
    texted = session.scalar(
        select(Delivery.recipient_id)
        .where(Delivery.channel == Channel.sms, Delivery.recipient_id.in_([u.id for u in found]))
        .order_by(Delivery.id.desc())
        .limit(1)
    )
    return next((u for u in found if u.id == texted), found[-1])


def _conversation_for(session: Session, candidate: User) -> Conversation | None:
    """Where the candidate was last texted, if they are still in it; else their most recently
    active application conversation."""
    last_texted = session.scalar(
        select(Message.conversation_id)
        .join(Delivery, Delivery.message_id == Message.id)
        .join(
            Member,
            (Member.conversation_id == Message.conversation_id) & (Member.user_id == candidate.id),
        )
        .where(Delivery.channel == Channel.sms, Delivery.recipient_id == candidate.id)
        .order_by(Delivery.id.desc())
        .limit(1)
    )
    if last_texted is not None:
        return session.get(Conversation, last_texted)
    return session.scalars(
        select(Conversation)
        .join(Member, Member.conversation_id == Conversation.id)
        .where(Member.user_id == candidate.id, Conversation.kind == Kind.application)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(1)
    ).first()


def _told_closed(session: Session, conv: Conversation, candidate: User) -> bool:
    """Whether this candidate was told already that the conversation is closed: since it
    ended, or (a closed job's, where nothing is posted meanwhile) since its last message. They
    are answered once, not once per text."""
    since = conv.ended_at if conv.ended_at is not None else conv.last_activity_at
    return bool(
        session.scalar(
            select(
                exists().where(
                    InboundSms.conversation_id == conv.id,
                    InboundSms.candidate_id == candidate.id,
                    InboundSms.outcome == SmsOutcome.closed,
                    InboundSms.received_at >= since,
                )
            )
        )
    )


def do_record_sms_status(
    session: Session, params: dict[str, str], *, now: datetime
) -> Delivery | None:
    """A delivery status from the provider: kept, and applied to its delivery if the send is
    recorded already (else when it is: ``apply_sms_status_reports``)."""
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = _TWILIO_STATUSES.get((params.get("MessageStatus") or "").lower())
    if not sid or status is None:
        return None
    report = SmsStatusReport(
        provider_sid=sid[:64],
        status=status,
        error_code=(params.get("ErrorCode") or None) and params["ErrorCode"][:20],
        received_at=now,
        applied=False,
    )
    session.add(report)
    delivery = session.scalars(
        select(Delivery).where(Delivery.provider_id == sid, Delivery.channel == Channel.sms)
    ).first()
    if delivery is not None:
        _apply(session, delivery, report, now)
    return delivery


def apply_sms_status_reports(session: Session, delivery: Delivery, now: datetime) -> None:
    """Apply the reports that arrived before the send was recorded."""
    if delivery.provider_id is None:
        return
    for report in session.scalars(
        select(SmsStatusReport)
        .where(SmsStatusReport.provider_sid == delivery.provider_id, ~SmsStatusReport.applied)
        .order_by(SmsStatusReport.id)
    ):
        _apply(session, delivery, report, now)


def _apply(session: Session, delivery: Delivery, report: SmsStatusReport, now: datetime) -> None:
    """The delivery moves forward, never back, and never from one final status to another
    (callbacks can arrive out of order, and reports kept from before the send was recorded are
    applied after the worker's own "sent")."""
    report.applied = True
    status = DeliveryStatus(report.status)
    current = _RANK.get(DeliveryStatus(delivery.status), -1)
    if current >= _FINAL or _RANK[status] <= current:
        return
    delivery.status = status
    delivery.updated_at = now
    if report.error_code:
        delivery.error_code = report.error_code[:20]
        delivery.last_error = f"the carrier reported error {report.error_code}"
    webhook_events.delivery_changed(session, delivery, now)
