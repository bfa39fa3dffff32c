"""The jobs worker as this deployment runs it: every job kind and every periodic sweep."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from jobchat.db.engine import Database
from jobchat.jobqueue.actions import RetryPolicy, prune_done
from jobchat.jobqueue.worker import Periodic, Worker
from jobchat.mail.notify import do_queue_due_notifications
from jobchat.mail.queries import any_notification_due
from jobchat.mail.service import MailService
from jobchat.push.sender import Pusher
from jobchat.sms.outbound import Texter

# Finished jobs are kept a while for whoever wonders whether an email went out.
KEEP_DONE_JOBS = timedelta(days=7)


def build_worker(
    mail: MailService, *, texter: Texter | None = None, name: str | None = None
) -> Worker:
    db, settings = mail.db, mail.settings
    kinds = mail.mailer.job_kinds()
    if texter is not None:
        kinds |= texter.job_kinds()
    kinds |= Pusher(db, settings, mail.clock).job_kinds()
    return Worker(
        db=db,
        clock=mail.clock,
        policy=RetryPolicy.of(settings),
        kinds=kinds,
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.worker_poll_seconds,
        periodic=[
            Periodic("notifications", settings.worker_poll_seconds, _sweeper(db)),
            Periodic("prune finished jobs", 3600, _pruner(db)),
        ],
        name=name,
    )


def _sweeper(db: Database) -> Callable[[datetime], int]:
    def sweep(now: datetime) -> int:
        with db.read() as session:
            if not any_notification_due(session, now):
                return 0  # the common case, answered without a write transaction
        with db.work() as session:
            return do_queue_due_notifications(session, now=now)

    return sweep


def _pruner(db: Database) -> Callable[[datetime], int]:
    def prune(now: datetime) -> int:
        with db.work() as session:
            return prune_done(session, before=now - KEEP_DONE_JOBS)

    return prune
