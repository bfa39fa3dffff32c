"""Queueing a bulk message and sending it a batch at a time: the only code that writes them.

A batch is one transaction: the recipients' messages (through ``do_send_message``, as any
send) and their rows marked sent or skipped commit together. Each message also carries an
idempotency key made of the bulk and the recipient's place, so that even a batch run twice
over the same rows could not post a second copy: ``do_send_message`` answers with the first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from jobchat import access
from jobchat.conversations.actions import do_start_conversation
from jobchat.directory.models import Application, Job, User
from jobchat.errors import AppError, Conflict
from jobchat.jobqueue.actions import enqueue
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.messages.actions import SMS_DELIVERY_JOB, Limits, Outgoing, do_send_message
from jobchat.messages.models import Channel, Delivery, DeliveryStatus, Message
from jobchat.messages.queries import sent_with_key
from jobchat.scheduling.bulk.models import (
    BulkMessage,
    BulkRecipient,
    BulkStatus,
    RecipientStatus,
)
from jobchat.scheduling.bulk.queries import by_key
from jobchat.scheduling.bulk.reach import UNKNOWN, Reachable, Skip, reach_many, text_for

BULK_JOB = "bulk.send"
MAX_REASON_CHARS = 300
AUTHOR_GONE = "Its author was deactivated before it reached this candidate."
SEND_FAILED = "It could not be sent because of a problem on our side; please send it again."
# Texts of another bulk further ahead than this are not the queue's pace (a text put off by the
# provider's backoff): beyond what is queued at the rate, plus a margin.
PACING_MARGIN = timedelta(seconds=5)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BulkRequest:
    """A bulk message as asked for, checked (``requests.bulk_request``)."""

    applications: list[str]  # duplicates removed, in the order first given
    body: str
    subject: str | None
    template_id: int | None
    channel: Channel
    send_at: datetime
    idempotency_key: str | None
    fingerprint: str


def do_queue_bulk(
    session: Session, author: User, req: BulkRequest, *, now: datetime
) -> tuple[BulkMessage, bool]:
    """Store the bulk message, its recipients and its first job; (bulk, replayed).

    Applications the author cannot see at all are skipped here already (the rest is decided at
    send time). A retry with the same idempotency key answers with the first one.
    """
    if req.idempotency_key is not None:
        earlier = by_key(session, author, req.idempotency_key)
        if earlier is not None:
            return replay(earlier, req.fingerprint), True
    # (Not dict(result): a Result has .keys(), so dict() would take it for a mapping.)
    visible: dict[str, int] = {  # noqa: C416
        ext: app_id
        for ext, app_id in session.execute(
            select(Application.ext_id, Application.id).where(
                Application.ext_id.in_(req.applications),
                access.applications_visible_sql(author),
            )
        )
    }
    bulk = BulkMessage(
        author_id=author.id,
        channel=req.channel,
        body=req.body,
        subject=req.subject,
        template_id=req.template_id,
        idempotency_key=req.idempotency_key,
        fingerprint=req.fingerprint,
        status=BulkStatus.queued,
        total=len(req.applications),
        sent=0,
        skipped=len(req.applications) - len(visible),
        step=0,
        send_at=req.send_at,
        created_at=now,
    )
    if bulk.skipped == bulk.total:
        bulk.status = BulkStatus.done
        bulk.started_at = bulk.finished_at = now
    try:
        with session.begin_nested():
            session.add(bulk)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key stored it first.
        assert req.idempotency_key is not None
        earlier = by_key(session, author, req.idempotency_key)
        if earlier is None:
            raise
        return replay(earlier, req.fingerprint), True
    session.execute(
        insert(BulkRecipient),
        [
            {
                "bulk_id": bulk.id,
                "position": i,
                "application_ext": ext,
                "application_id": visible.get(ext),
                "status": RecipientStatus.pending if ext in visible else RecipientStatus.skipped,
                "code": None if ext in visible else "unknown_application",
                "reason": None if ext in visible else UNKNOWN,
                "done_at": None if ext in visible else now,
            }
            for i, ext in enumerate(req.applications)
        ],
    )
    if bulk.status != BulkStatus.done:
        enqueue(session, BULK_JOB, {"bulk_id": bulk.id, "step": 0}, now=now, run_at=req.send_at)
    return bulk, False


def replay(earlier: BulkMessage, fingerprint: str) -> BulkMessage:
    """The bulk an idempotency key made, if it was asked for with the same request; else 409."""
    if earlier.fingerprint != fingerprint:
        raise Conflict(
            "This idempotency key was already used for a different bulk message.",
            code="idempotency_key_reused",
        )
    return earlier


@dataclass(frozen=True)
class Pacing:
    """How fast the runner goes: recipients per transaction, and texts per second."""

    batch: int
    sms_per_second: float


def do_send_batch(
    session: Session,
    bulk_id: int,
    step: int,
    *,
    limits: Limits,
    pacing: Pacing,
    hand_over: bool,
    now: datetime,
) -> bool:
    """Message the next batch of pending recipients; whether this job should go on.

    ``step`` is the runner job's number: a job whose successor was queued already (it was run
    again after a crash) finds the bulk at a later step and does nothing. With ``hand_over``,
    a bulk with recipients left queues the next job (at the back of the queue, so that other
    senders' jobs go first) and this one stops.
    """
    bulk = session.get(BulkMessage, bulk_id)
    if bulk is None or bulk.step != step or bulk.status == BulkStatus.done:
        return False
    if bulk.status == BulkStatus.queued:
        bulk.status = BulkStatus.sending
        bulk.started_at = now
    rows = list(
        session.scalars(
            select(BulkRecipient)
            .where(
                BulkRecipient.bulk_id == bulk_id, BulkRecipient.status == RecipientStatus.pending
            )
            .order_by(BulkRecipient.position)
            .limit(pacing.batch)
        )
    )
    apps = _applications(session, [r.application_id for r in rows if r.application_id])
    author = session.get_one(User, bulk.author_id)
    channel = Channel(bulk.channel)
    # Texts leave at the provider's rate: each delivery job is placed one gap after the last.
    slots = _TextSlots(
        after_job=session.scalar(select(func.max(QueuedJob.id))) or 0,
        gap=timedelta(seconds=1 / pacing.sms_per_second),
        earliest=max(now, bulk.sms_next_at or now),
    )
    # Nothing more goes out in the name of someone deactivated since they queued it.
    gone = None if author.is_active else Skip("author_deactivated", AUTHOR_GONE)
    routes = {} if gone else reach_many(session, author, list(apps.values()), channel, limits)
    outcomes: list[tuple[BulkRecipient, Message | Skip]] = []
    for row in rows:
        app = apps.get(row.application_id) if row.application_id else None
        route = routes.get(app.id) if app is not None else None
        if gone is not None:
            outcome: Message | Skip = gone
        elif app is None or route is None:
            outcome = Skip("unknown_application", UNKNOWN)
        elif isinstance(route, Skip):
            outcome = route
        else:
            outcome = _send_guarded(session, author, bulk, row, app, route, now, limits)
        outcomes.append((row, outcome))
        if isinstance(outcome, Message) and channel is Channel.sms:
            slots.place(session, outcome)
    # The rows and the counts are changed once the batch's sends are done: changed as it goes,
    # each send's savepoint would flush them again (two UPDATEs more per recipient); now they
    # go in one executemany at the end.
    for row, outcome in outcomes:
        if isinstance(outcome, Skip):
            row.status = RecipientStatus.skipped
            row.code = outcome.code[:40]
            row.reason = outcome.reason[:MAX_REASON_CHARS]
        else:
            row.status = RecipientStatus.sent
            row.conversation_id = outcome.conversation_id
            row.message_id = outcome.id
        row.done_at = now
    skipped = sum(1 for _row, outcome in outcomes if isinstance(outcome, Skip))
    bulk.skipped += skipped
    bulk.sent += len(outcomes) - skipped
    if channel is Channel.sms:
        bulk.sms_next_at = slots.daytime_next()
    more = len(rows) == pacing.batch and session.scalar(
        select(func.count())
        .select_from(BulkRecipient)
        .where(BulkRecipient.bulk_id == bulk_id, BulkRecipient.status == RecipientStatus.pending)
    )
    if not more:
        bulk.status = BulkStatus.done
        bulk.finished_at = now
        return False
    if hand_over:
        bulk.step += 1
        enqueue(session, BULK_JOB, {"bulk_id": bulk.id, "step": bulk.step}, now=now)
        return False
    return True


def _applications(session: Session, ids: list[int]) -> dict[int, Application]:
    """The batch's applications with what rendering and the checks read, in a few statements."""
    if not ids:
        return {}
    found = session.scalars(
        select(Application)
        .where(Application.id.in_(ids))
        .options(
            selectinload(Application.candidate),
            selectinload(Application.job).selectinload(Job.employer),
        )
    )
    return {a.id: a for a in found}


def _send_guarded(
    session: Session,
    author: User,
    bulk: BulkMessage,
    row: BulkRecipient,
    app: Application,
    route: Reachable,
    now: datetime,
    limits: Limits,
) -> Message | Skip:
    """``_send_one``, but a recipient whose send fails unexpectedly is skipped alone: raised,
    it would fail the batch, and the job, on every attempt, and nobody after them would be
    messaged. (Its send's savepoint is rolled back: nothing of it stays.) The database being
    away is not the recipient's fault: that fails the batch, to be tried again."""
    try:
        return _send_one(session, author, bulk, row, app, route, now, limits)
    except OperationalError:
        raise
    except Exception:
        log.exception("bulk %s: the send to recipient %s failed", bulk.id, row.position)
        return Skip("send_failed", SEND_FAILED)


def do_end_failed(session: Session, bulk_id: int, step: int, *, now: datetime) -> None:
    """The bulk's runner job failed for good: who is still pending is skipped, and it is
    done. (A job whose successor exists already is no longer the bulk's: nothing to do.)"""
    bulk = session.get(BulkMessage, bulk_id)
    if bulk is None or bulk.step != step or bulk.status == BulkStatus.done:
        return
    ended = session.execute(
        update(BulkRecipient)
        .where(BulkRecipient.bulk_id == bulk_id, BulkRecipient.status == RecipientStatus.pending)
        .values(status=RecipientStatus.skipped, code="send_failed", reason=SEND_FAILED, done_at=now)
        .execution_options(synchronize_session=False)
    )
    bulk.skipped += ended.rowcount  # type: ignore[attr-defined]
    bulk.status = BulkStatus.done
    bulk.started_at = bulk.started_at or now
    bulk.finished_at = now


def _send_one(
    session: Session,
    author: User,
    bulk: BulkMessage,
    row: BulkRecipient,
    app: Application,
    route: Reachable,
    now: datetime,
    limits: Limits,
) -> Message | Skip:
    key = f"jobchat-bulk:{bulk.id}:{row.position}"
    channel = Channel(bulk.channel)
    text = text_for(bulk.body, bulk.subject, app, author)
    if isinstance(text, Skip):
        return text
    out = Outgoing(body=text.body, channel=channel, subject=text.subject, idempotency_key=key)
    try:
        # A send that fails its checks (a rendered text too long for an SMS) leaves nothing
        # behind, not even the chat it would have opened.
        with session.begin_nested():
            conv, member, _created = do_start_conversation(
                session, actor=author, context=route.context, existing=route.existing, now=now
            )
            message, _replayed = do_send_message(
                session, actor=author, conv=conv, member=member, out=out, limits=limits, now=now
            )
    except Conflict as exc:
        if exc.code == "idempotency_key_reused":
            # Posted before with other words (the candidate was renamed in between): it went
            # out, and must not go out twice.
            earlier = sent_with_key(session, author.id, key)
            assert earlier is not None  # the conflict was with it
            return earlier
        return Skip(exc.code, exc.message)
    except AppError as exc:
        fields = exc.fields or {}
        code = "too_long" if "at most" in fields.get("body", "") else "invalid"
        return Skip(code, exc.message)
    return message


class _TextSlots:
    """Where a batch's texts are placed in time, one ``gap`` apart.

    The provider's rate is one per sender number, and a deployment has one (or one messaging
    service): so the next free slot is the queue's, not this bulk's. It is read from the jobs
    table: the latest queued ``sms.delivery`` job made before this batch (another bulk's texts
    still waiting, this bulk's earlier batches), once per batch and chain.

    Texts that may go now form one chain. A text held for the candidate's night forms a chain
    with the others held until the same moment (the same zone's 08:00): left at the hold's end
    they would all go at once then. Chains of different hold ends are not merged: they overlap
    only when one is longer than the time between them (3,600 texts between two zones an
    hour apart at one a second), and then the rate is exceeded for that while.
    """

    def __init__(self, *, after_job: int, gap: timedelta, earliest: datetime) -> None:
        self.after_job = after_job
        self.gap = gap
        self.earliest = earliest
        # Next free slot per chain: None for texts that may go now, else the hold's end.
        self._next: dict[datetime | None, datetime] = {}

    def place(self, session: Session, message: Message) -> None:
        """Move the delivery job of this message's text to its chain's next slot, if it had one
        made in this batch (a message replayed from an earlier run has its job placed
        already)."""
        for delivery in message.deliveries:
            held = delivery.held_until if delivery.status == DeliveryStatus.held else None
            slot = self._first(session, held) if held not in self._next else self._next[held]
            moved = session.execute(
                update(QueuedJob)
                .where(
                    QueuedJob.id > self.after_job,
                    QueuedJob.kind == SMS_DELIVERY_JOB,
                    QueuedJob.status == JobStatus.queued,
                    QueuedJob.payload["delivery_id"].as_integer() == delivery.id,
                )
                .values(run_at=slot)
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount:  # type: ignore[attr-defined]
                if held is not None:
                    delivery.next_attempt_at = slot
                self._next[held] = slot + self.gap

    def daytime_next(self) -> datetime:
        return self._next.get(None, self.earliest)

    def _first(self, session: Session, held: datetime | None) -> datetime:
        """The first free slot of a chain: after the latest text queued before this batch.

        Only texts within the chain's pace count: n texts queued at the rate end at most n
        gaps after its start. One further out (an ordinary text put off by the provider's
        backoff, up to minutes) is not in the line, and would hold a new bulk back that long.
        """
        query = (
            select(QueuedJob.run_at)
            .join(Delivery, Delivery.id == QueuedJob.payload["delivery_id"].as_integer())
            .where(
                QueuedJob.id <= self.after_job,
                QueuedJob.kind == SMS_DELIVERY_JOB,
                QueuedJob.status == JobStatus.queued,
            )
        )
        if held is None:
            query = query.where(Delivery.status != DeliveryStatus.held)
        else:
            query = query.where(Delivery.status == DeliveryStatus.held, Delivery.held_until == held)
        start = self.earliest if held is None else held
        queued = query.subquery()
        waiting = session.scalar(select(func.count()).select_from(queued)) or 0
        horizon = start + self.gap * waiting + PACING_MARGIN
        latest = session.scalar(select(func.max(queued.c.run_at)).where(queued.c.run_at <= horizon))
        return start if latest is None else max(start, latest + self.gap)
