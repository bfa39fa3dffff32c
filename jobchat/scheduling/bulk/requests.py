"""A bulk message as a caller asks for it (the API or the pages): checked up front, then queued.

Everything that would fail for every recipient alike is a 422 here (a template one cannot use,
a body too long, email without a subject, SMS on a server without it); what depends on each
candidate is decided when their turn comes, and skips only them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from jobchat import access
from jobchat.directory.models import User
from jobchat.errors import Invalid, RateLimited
from jobchat.messages.actions import Limits
from jobchat.messages.models import Channel
from jobchat.ratelimit import RateLimiter
from jobchat.scheduling.bulk.actions import BulkRequest, do_queue_bulk
from jobchat.scheduling.bulk.models import BulkMessage
from jobchat.scheduling.bulk.queries import by_key
from jobchat.scheduling.bulk.schemas import BulkMessageIn
from jobchat.templates.render import template_problem
from jobchat.templates.requests import usable_template

MAX_AHEAD = timedelta(days=365)


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
    if subject is not None and (problem := template_problem(subject)) is not None:
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
    applications = list(dict.fromkeys(given.applications))
    fingerprint = hashlib.sha256(
        json.dumps(
            [applications, body, subject, given.template, given.channel, send_at.isoformat()]
        ).encode()
    ).hexdigest()
    return BulkRequest(
        applications=applications,
        body=body.strip(),
        subject=subject,
        template_id=given.template,
        channel=given.channel,
        send_at=send_at,
        idempotency_key=given.idempotency_key,
        fingerprint=fingerprint,
    )


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
    now: datetime,
) -> tuple[BulkMessage, bool]:
    """Queue a bulk message: (it, whether it was a replay of an earlier attempt's key).

    The request counts as one send against the author's per-minute limit (a flood of bulk
    requests is refused like a flood of messages); the messages it posts do not, since they
    are posted by the worker at its own pace, a batch at a time.
    """
    req = bulk_request(session, user, given, limits=limits, now=now)
    replay = req.idempotency_key is not None and by_key(session, user, req.idempotency_key)
    if not replay and not limiter.allow(user.id):
        raise RateLimited("You are sending too fast; wait a moment and try again.")
    return do_queue_bulk(session, user, req, now=now)
