"""A bulk message as a caller asks for it (the API or the pages): checked up front, then queued.

Everything that would fail for every recipient alike is a 422 here (a template one cannot use,
a body too long, email without a subject, SMS on a server without it); what depends on each
candidate is decided when their turn comes, and skips only them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.db.undo import undo_on_rollback
from jobchat.directory.models import User
from jobchat.errors import Conflict, Invalid
from jobchat.inputs import control_problem
from jobchat.messages.actions import Limits
from jobchat.messages.models import Channel
from jobchat.ratelimit import RateLimiter
from jobchat.scheduling.bulk.actions import BulkRequest, do_queue_bulk, replay
from jobchat.scheduling.bulk.models import BulkMessage, BulkStatus
from jobchat.scheduling.bulk.queries import by_key
from jobchat.scheduling.bulk.schemas import BulkMessageIn
from jobchat.templates.render import template_problem
from jobchat.templates.requests import usable_template

MAX_AHEAD = timedelta(days=365)
# As stored (bulk_messages.subject) and as a message's subject may be.
MAX_SUBJECT = 300


def bulk_request(
    session: Session, user: User, given: BulkMessageIn, *, limits: Limits, now: datetime
) -> BulkRequest:
    access.check_staff(user)
    problems: dict[str, str] = {}
    body, subject = given.body, given.subject
    if body is not None and given.template is not None:
        problems["body"] = "give a body or a template, not both"
    elif body is None and given.template is None:
        problems["body"] = "is required (or give a template)"
    elif given.template is not None:
        template = usable_template(session, user, given.template)
        body = template.body
        subject = subject if subject is not None else template.subject
    if body is not None and "body" not in problems:
        problem = _text_problem(body.strip(), given.channel, limits)
        if problem:
            problems["template" if given.template is not None else "body"] = problem
    subject = (subject or "").strip() or None
    # The same for everyone: a subject too long, or not one line, would skip every recipient.
    if subject is not None and len(subject) > MAX_SUBJECT:
        problems["subject"] = f"may be at most {MAX_SUBJECT} characters"
    elif subject is not None and (problem := control_problem(subject) or template_problem(subject)):
        problems["subject"] = problem
    elif given.channel is Channel.email and subject is None:
        problems["subject"] = "required for email (give one, or use a template that has one)"
    if given.channel is Channel.sms and not limits.sms_enabled:
        problems["channel"] = "SMS is not set up on this server (JOBCHAT_SMS_PROVIDER)"
    send_at = given.send_at or now
    if given.send_at is not None and given.send_at <= now:
        problems["send_at"] = "must be in the future"
    elif send_at > now + MAX_AHEAD:
        problems["send_at"] = "may be at most a year ahead"
    if problems:
        raise Invalid(problems)
    assert body is not None
    return BulkRequest(
        applications=list(dict.fromkeys(given.applications)),
        body=body.strip(),
        subject=subject,
        template_id=given.template,
        channel=given.channel,
        send_at=send_at,
        idempotency_key=given.idempotency_key,
        fingerprint=fingerprint_of(given),
    )


def fingerprint_of(given: BulkMessageIn) -> str:
    """What the client sent, hashed: a retry must send the same to be answered with the first.

    Only what was sent: not the time of the request (a retry without ``send_at`` comes later)
    nor a template's text (a retry after the template was edited asks for the same bulk).
    """
    sent = [
        list(dict.fromkeys(given.applications)),
        given.body,
        given.subject,
        given.template,
        given.channel,
        given.send_at.isoformat() if given.send_at is not None else "now",
    ]
    return hashlib.sha256(json.dumps(sent).encode()).hexdigest()


def _text_problem(body: str, channel: Channel, limits: Limits) -> str | None:
    if not body:
        return "must not be empty"
    if (problem := template_problem(body)) is not None:
        return problem
    if channel is Channel.sms and len(body) > limits.max_sms_chars:
        return f"an SMS may be at most {limits.max_sms_chars} characters"
    if len(body) > limits.max_chars:
        return f"may be at most {limits.max_chars} characters"
    return None


def queue_as(
    session: Session,
    user: User,
    given: BulkMessageIn,
    *,
    limiter: RateLimiter,
    limits: Limits,
    max_active: int,
    now: datetime,
) -> tuple[BulkMessage, bool]:
    """Queue a bulk message: (it, whether it was a replay of an earlier attempt's key).

    The request counts as one send against the author's per-minute limit (a flood of bulk
    requests is refused like a flood of messages); the messages it posts do not, since they
    are posted by the worker at its own pace, a batch at a time. One author may have at most
    ``max_active`` bulks queued or sending at once (409 ``too_many_bulk_messages``).
    """
    access.check_staff(user)
    # A retry is answered before the checks: its send_at may have passed since, or its
    # template changed; what it asked for was checked when it was first queued.
    if given.idempotency_key is not None:
        earlier = by_key(session, user, given.idempotency_key)
        if earlier is not None:
            return replay(earlier, fingerprint_of(given)), True
    req = bulk_request(session, user, given, limits=limits, now=now)
    active = session.scalar(
        select(func.count())
        .select_from(BulkMessage)
        .where(
            BulkMessage.author_id == user.id,
            BulkMessage.status.in_([BulkStatus.queued, BulkStatus.sending]),
        )
    )
    if (active or 0) >= max_active:
        raise Conflict(
            f"You have {max_active} bulk messages queued or sending already; wait for one to "
            "finish (or the time it is set for) before queueing another.",
            code="too_many_bulk_messages",
        )
    undo_on_rollback(session, limiter.take(user.id))
    return do_queue_bulk(session, user, req, now=now)
