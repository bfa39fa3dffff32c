"""An email reply from the candidate into a closed job's conversation: kept (the inbound row,
raw mail included), not posted, answered with the closed notice; once the job reopens, replies
land again. (The fixtures are tests/test_mail_inbound.py's: a loopback SMTP sink, the inbound
SMTP listener, the worker.)"""

from __future__ import annotations

from fastapi.testclient import TestClient

from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from tests.mail_support import Delivered, SmtpSink, drain
from tests.support import Api, World, body
from tests.test_mail_inbound import (
    CANDIDATE,
    chat,
    inbound_rows,
    invitation,
    reply_to,
    settings,
    sink,
    smtp_send,
    thread,
    worker,
)

__all__ = ["chat", "invitation", "settings", "sink", "worker"]  # fixtures, used by name

JOB = {"title": "Registered Nurse", "employer": "acme"}


def test_a_reply_into_a_closed_jobs_conversation_is_kept_and_answered(
    world: World,
    api: Api,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    worker: Worker,
    sink: SmtpSink,
) -> None:
    closed = api.integration.put("/api/v1/jobs/job1", JOB | {"status": "closed"})
    assert body(closed, 200)["status"] == "closed"
    before = thread(world, chat)
    smtp_send(settings, reply_to(invitation, "Is the job still open?"))
    drain(worker)

    assert thread(world, chat) == before
    (row,) = inbound_rows(client)
    assert row.outcome == "closed" and row.message_id is None
    assert b"Is the job still open?" in row.raw
    _invitation_again, notice = sink.to(CANDIDATE)
    assert "has been closed" in notice.text()

    api.integration.put("/api/v1/jobs/job1", JOB | {"status": "open"})
    smtp_send(settings, reply_to(invitation, "Still interested."))
    assert thread(world, chat)[-1]["body"] == "Still interested."
