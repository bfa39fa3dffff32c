"""The jobs worker as this deployment runs it: every job kind and every periodic sweep."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from jobchat.db.engine import Database
from jobchat.files.jobs import SWEEP_EVERY_SECONDS, FileRemover, unclaimed_sweeper
from jobchat.files.storage import Storage, configured_storage
from jobchat.jobqueue.actions import RetryPolicy, prune_done
from jobchat.jobqueue.worker import Periodic, Worker
from jobchat.mail.queries import any_notification_due
from jobchat.mail.service import MailService
from jobchat.notifications.email import do_queue_due_notifications
from jobchat.notifications.ladder import Ladder
from jobchat.notifications.presence import NobodyOnline
from jobchat.notifications.release import any_held, do_release_held
from jobchat.notifications.texts import Texts, any_text_due, do_queue_due_texts
from jobchat.privacy.retention import EVERY_SECONDS as RETENTION_EVERY_SECONDS
from jobchat.privacy.retention import retention_runner
from jobchat.push.sender import Pusher
from jobchat.realtime.presence import Presence
from jobchat.scheduling.bulk.runner import BulkRunner
from jobchat.scheduling.sender import ScheduledSender
from jobchat.sms.outbound import Texter
from jobchat.webhooks.actions import prune_log
from jobchat.webhooks.sender import WebhookSender

# Finished jobs are kept a while for whoever wonders whether an email went out.
KEEP_DONE_JOBS = timedelta(days=7)


def build_worker(
    mail: MailService,
    *,
    texter: Texter | None = None,
    presence: Presence | None = None,
    name: str | None = None,
    storage: Storage | None = None,
    threads: int | None = None,
) -> Worker:
    """``presence`` says who has the app open (the server's hub's; see
    jobchat.notifications.presence for a worker on its own): nobody is pushed who does.
    ``threads``: the worker's own threads for its jobs (see jobchat.jobqueue.threads)."""
    db, settings = mail.db, mail.settings
    ladder = Ladder(db, settings, presence if presence is not None else NobodyOnline())
    texts = Texts(db, settings, mail.clock, texter.provider if texter is not None else None)
    kinds = mail.mailer.job_kinds() | ladder.job_kinds() | texts.job_kinds()
    if texter is not None:
        kinds |= texter.job_kinds()
    kinds |= Pusher(db, settings, mail.clock).job_kinds()
    kinds |= ScheduledSender(db, settings, mail.clock).job_kinds()
    kinds |= BulkRunner(db, settings, mail.clock).job_kinds()
    kinds |= WebhookSender(db, settings, mail.clock).job_kinds()
    if storage is None:
        storage = configured_storage(settings)
    kinds |= FileRemover(storage).job_kinds()
    poll = settings.worker_poll_seconds
    return Worker(
        db=db,
        clock=mail.clock,
        policy=RetryPolicy.of(settings),
        kinds=kinds,
        concurrency=settings.worker_concurrency,
        poll_seconds=poll,
        threads=threads,
        periodic=[
            Periodic("notifications", poll, _sweeper(db, any_notification_due, _email_sweep)),
            Periodic("notification texts", poll, _sweeper(db, any_text_due, _text_sweep)),
            Periodic("quiet hours over", poll, _sweeper(db, _held, _release_sweep)),
            Periodic("prune finished jobs", 3600, _pruner(db)),
            Periodic("unclaimed uploads", SWEEP_EVERY_SECONDS, unclaimed_sweeper(db)),
            *_retention(db, settings.retention_days),
        ],
        name=name,
    )


def _retention(db: Database, days: int | None) -> list[Periodic]:
    """JOBCHAT_RETENTION_DAYS: old messages erased daily (jobchat.privacy.retention)."""
    if days is None:
        return []
    return [Periodic("retention", RETENTION_EVERY_SECONDS, retention_runner(db, days))]


def _email_sweep(session: Session, now: datetime) -> int:
    return do_queue_due_notifications(session, now=now)


def _text_sweep(session: Session, now: datetime) -> int:
    return do_queue_due_texts(session, now=now)


def _release_sweep(session: Session, now: datetime) -> int:
    return do_release_held(session, now=now)


def _held(session: Session, now: datetime) -> bool:
    return any_held(session, now)


def _sweeper(
    db: Database,
    due: Callable[[Session, datetime], bool],
    sweep: Callable[[Session, datetime], int],
) -> Callable[[datetime], int]:
    def run(now: datetime) -> int:
        with db.read() as session:
            if not due(session, now):
                return 0  # the common case, answered without a write transaction
        with db.work() as session:
            return sweep(session, now)

    return run


def _pruner(db: Database) -> Callable[[datetime], int]:
    def prune(now: datetime) -> int:
        with db.work() as session:
            return prune_done(session, before=now - KEEP_DONE_JOBS) + prune_log(session, now=now)

    return prune
