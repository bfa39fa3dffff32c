"""Receiving an email: the action that decides what becomes of it, and records it raw.

The same action serves the SMTP listener and the webhook. In order:
1. A mail already received (same Message-ID, or same bytes) is not taken twice.
2. Bounces mark the delivery they report failed, when they are authentic: sent to the bounce
   address of that one email (VERP, jobchat.mail.addresses), and not failing DMARC. Auto-replies,
   list mail and other machine mail stop here: never posted, never answered (no mail loops).
   A mail whose DMARC result is fail (jobchat.mail.authenticity) stops here too: a forgery
   (unless its domain's policy is p=none: then it goes on, noted in its record).
3. The thread is the one of the reply address the mail was sent to; where that is lost, the
   one of the email it answers (In-Reply-To, References).
4. Only the member the thread belongs to may post into it, from their own address: the one
   address of its one From: header, as the DMARC check read it.
5. Into an ended conversation nothing is posted; the sender is told once that it is closed.
6. Otherwise the reply, without its quoted history and signature, becomes their message, with
   its files (stored by the caller beforehand, jobchat.mail.inbound_files) as the message's
   attachments and a note in its text for each file left out.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.conversations.models import Conversation, Member
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.files.intake import add_attachment
from jobchat.jobqueue.actions import enqueue
from jobchat.mail.addresses import MailKeys, addresses_in
from jobchat.mail.authenticity import NOT_CHECKED, Author, Verdict
from jobchat.mail.automatic import Bounce, automatic_reason, bounce_of
from jobchat.mail.inbound_files import StoredFiles, files_in
from jobchat.mail.models import InboundEmail, InboundOutcome
from jobchat.mail.outbound import CLOSED_NOTICE_JOB
from jobchat.mail.policy import POLICY
from jobchat.mail.queries import (
    closed_notice_sent,
    inbound_by_dedupe_key,
    inbound_by_message_id,
    sent_emails_by_message_id,
)
from jobchat.mail.replies import reply_text
from jobchat.messages.actions import Limits, Outgoing, do_send_message
from jobchat.messages.models import Channel, Delivery, DeliveryStatus
from jobchat.webhooks import events as webhook_events

log = logging.getLogger("jobchat.mail")

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,245}>")


@dataclass(frozen=True)
class Received:
    outcome: InboundOutcome
    inbound_id: int
    message_id: int | None  # the message it became, when posted
    duplicate: bool
    detail: str | None


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=POLICY)
    assert isinstance(message, EmailMessage)
    return message


def _header(message: EmailMessage, name: str) -> str | None:
    """A header as text, or None; a malformed one is not worth failing a mail over."""
    try:
        value = message.get(name)
    except Exception:  # the email package raises many kinds on broken headers
        return None
    return str(value) if value is not None else None


def _message_ids(*values: str | None) -> list[str]:
    found: list[str] = []
    for value in values:
        found.extend(_MESSAGE_ID.findall(value or ""))
    return found


def _identity(message: EmailMessage, raw: bytes) -> tuple[str | None, str]:
    """The mail's Message-ID, and the key a second delivery of it is recognised by."""
    own_ids = _message_ids(_header(message, "Message-ID"))
    message_id_header = own_ids[0] if own_ids else None
    return message_id_header, message_id_header or _content_key(raw)


def _content_key(raw: bytes) -> str:
    """A mail known by its bytes: for one without a Message-ID, or a forgery (whose claimed
    Message-ID must not stand for the genuine mail's)."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def worth_storing_files(
    db: Database, message: EmailMessage, raw: bytes, envelope_from: str | None
) -> bool:
    """Whether the mail's files may become a message's: not when it was received before, or
    is a bounce or machine mail (its files would only be stored to be deleted again)."""
    if not message.is_multipart() and not files_in(message):
        # A mail of text alone; one whose single body is a file (a scan sent as is) has one.
        return False
    if bounce_of(message, envelope_from) is not None:
        return False
    if automatic_reason(message, envelope_from) is not None:
        return False
    with db.read() as session:
        return inbound_by_dedupe_key(session, _identity(message, raw)[1]) is None


def do_receive_email(
    session: Session,
    raw: bytes,
    *,
    envelope_from: str | None,
    envelope_to: Sequence[str],
    now: datetime,
    keys: MailKeys,
    limits: Limits,
    author: Author,
    files: StoredFiles | None = None,
    verdict: Verdict = NOT_CHECKED,
) -> Received:
    """``author``: its From:, read once (``author_of``) for the DMARC check and here alike.
    ``verdict``: the mail's DMARC verdict, found beforehand (DNS lookups take no
    transaction)."""
    message = parse(raw)
    message_id_header, dedupe_key = _identity(message, raw)
    if verdict.refused:
        # A forgery is known by its bytes, not by the Message-ID it claims: it must not stand
        # in for the genuine mail of that Message-ID arriving later.
        dedupe_key = _content_key(raw)
    earlier = inbound_by_dedupe_key(session, dedupe_key)
    if earlier is not None:
        return Received(
            InboundOutcome(earlier.outcome), earlier.id, earlier.message_id, True, earlier.detail
        )

    from_address = author.address
    row = InboundEmail(
        dedupe_key=dedupe_key,
        message_id_header=message_id_header,
        envelope_from=envelope_from,
        recipients=", ".join(envelope_to),
        from_address=from_address,
        subject=_header(message, "Subject"),
        raw=raw,
        received_at=now,
        outcome=InboundOutcome.unknown_thread,
    )
    session.add(row)

    def done(outcome: InboundOutcome, detail: str | None = None) -> Received:
        row.outcome = outcome
        row.detail = detail
        session.flush()
        log.info("inbound email %s: %s%s", row.id, outcome, f" ({detail})" if detail else "")
        return Received(outcome, row.id, row.message_id, False, detail)

    bounce = bounce_of(message, envelope_from)
    if bounce is not None:
        bounced = _bounced_message_id(message, envelope_to, keys)
        return done(InboundOutcome.bounce, _record_bounce(session, bounce, bounced, verdict, now))
    machine = automatic_reason(message, envelope_from)
    if machine is not None:
        return done(InboundOutcome.automatic, machine)
    if verdict.refused:
        return done(InboundOutcome.dmarc_fail, verdict.reason[:1000])

    target = _thread_of(session, message, envelope_to, keys)
    if target is None:
        return done(InboundOutcome.unknown_thread)
    conv, user = target
    row.conversation_id, row.user_id = conv.id, user.id
    if from_address is None:
        return done(InboundOutcome.wrong_sender, f"{author.problem}: not one sender to check")
    if not access.is_own_email_address(user, from_address):
        return done(InboundOutcome.wrong_sender, f"from {from_address}, not the member's address")
    member = session.get(Member, (conv.id, user.id))
    if member is None:
        return done(InboundOutcome.not_member)
    if not access.may_post(user, conv):  # ended, or about a closed job
        # Told once: since it ended, or (a closed job's) since its last message.
        since = conv.ended_at if conv.ended_at is not None else conv.last_activity_at
        if not closed_notice_sent(session, conv.id, user.id, since):
            session.flush()
            enqueue(session, CLOSED_NOTICE_JOB, {"inbound_email_id": row.id}, now=now)
            return done(InboundOutcome.closed, "answered: the conversation is closed")
        return done(InboundOutcome.closed, "not answered: they were told already")

    files = files or StoredFiles()
    text = _with_notes(reply_text(message), files.notes, limits.max_chars)
    if not text and not files.accepted:
        return done(InboundOutcome.empty)
    attachment_ids = []
    for position, stored in enumerate(files.accepted):
        attachment = add_attachment(
            session,
            conversation_id=conv.id,
            uploader_id=user.id,
            stored=stored,
            now=now,
            position=position,
        )
        session.flush()
        attachment_ids.append(attachment.id)
    subject = (row.subject or "").strip()[:300] or None
    posted, _ = do_send_message(
        session,
        actor=user,
        conv=conv,
        member=member,
        out=Outgoing(
            body=text,
            channel=Channel.email,
            subject=subject,
            received=True,
            attachments=tuple(attachment_ids),
        ),
        limits=limits,
        now=now,
    )
    row.message_id = posted.id
    if verdict.failed_under_none:
        return done(InboundOutcome.posted, f"DMARC fail let through: {verdict.reason}"[:1000])
    return done(InboundOutcome.posted)


def _with_notes(text: str, notes: Sequence[str], max_chars: int) -> str:
    """The reply's text, then a line for each file left out; the text is what is cut to fit
    the message limit, never a note (nobody may miss that a file did not arrive)."""
    tail = "\n".join(notes)
    room = max_chars - len(tail) - (2 if tail else 0)
    if len(text) > max(room, 1):
        text = text[: max(room, 1) - 1] + "…"
    return "\n\n".join(part for part in (text, tail) if part)[:max_chars]


def _thread_of(
    session: Session, message: EmailMessage, envelope_to: Sequence[str], keys: MailKeys
) -> tuple[Conversation, User] | None:
    """The conversation and member a reply belongs to: by its reply address, else by the
    email it answers."""
    addresses = [a.lower() for a in envelope_to] + addresses_in(
        *(
            _header(message, name)
            for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
        )
    )
    found: tuple[int, int] | None = None
    for address in addresses:
        found = keys.parse_reply_address(address)
        if found is not None:
            break
    if found is None:
        referenced = _message_ids(_header(message, "In-Reply-To"), _header(message, "References"))
        sent = sent_emails_by_message_id(session, referenced)
        if sent:
            found = (sent[0].conversation_id, sent[0].user_id)
        else:
            answered = inbound_by_message_id(session, referenced)
            if answered is not None and answered.conversation_id and answered.user_id:
                found = (answered.conversation_id, answered.user_id)
    if found is None:
        return None
    conv = session.get(Conversation, found[0])
    user = session.get(User, found[1])
    if conv is None or user is None:
        return None
    return conv, user


def _bounced_message_id(
    message: EmailMessage, envelope_to: Sequence[str], keys: MailKeys
) -> str | None:
    """The Message-ID of our email whose bounce address this bounce was sent to. The envelope
    recipients when known; a webhook that was not told them leaves the headers the receiving
    server wrote (the address is signed and per email: only that email's recipient side knows
    it)."""
    candidates = list(envelope_to) or addresses_in(
        *(_header(message, name) for name in ("Delivered-To", "X-Original-To", "To"))
    )
    for address in candidates:
        found = keys.bounced_message_id(address)
        if found is not None:
            return found
    return None


def _record_bounce(
    session: Session, bounce: Bounce, bounced: str | None, verdict: Verdict, now: datetime
) -> str:
    """Marks the delivery of the bounced email failed, only when the bounce is authentic: one
    that fails DMARC, or did not come to the email's own bounce address, marks nothing (a
    forged report naming our Message-ID must not fail a delivery)."""
    kind = "permanent" if bounce.permanent else "temporary"
    if verdict.refused:
        return f"{kind}: {bounce.reason}; ignored: DMARC fail ({verdict.reason})"[:1000]
    if bounced is None:
        return f"{kind}: {bounce.reason}; ignored: not sent to an email's bounce address"[:1000]
    failed = 0
    for sent in sent_emails_by_message_id(session, [bounced]):
        if sent.delivery_id is None or not bounce.permanent:
            continue
        delivery = session.get(Delivery, sent.delivery_id)
        if delivery is not None and delivery.status in (DeliveryStatus.sent, DeliveryStatus.queued):
            delivery.status = DeliveryStatus.failed
            delivery.last_error = f"bounced: {bounce.reason}"[:1000]
            delivery.updated_at = now
            webhook_events.delivery_changed(session, delivery, now)
            failed += 1
    return f"{kind}: {bounce.reason}; deliveries marked failed: {failed}"
