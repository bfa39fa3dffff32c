"""A bulk message survives its worker being killed: a real ``jobchat worker`` process is
SIGKILLed part-way through, another is started, and every candidate is messaged exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import func, select

from jobchat.db.engine import Database
from jobchat.messages.models import Message
from tests.support import API_KEY, World, body, eventually, user_id
from tests.test_bulk_api import applicants

RECIPIENTS = 400
BULK = "/api/v1/bulk-messages"

pytestmark = pytest.mark.slow


def spawn_worker(
    database_url: str, workdir: Path, name: str
) -> tuple[subprocess.Popen[bytes], IO[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": database_url,
        "JOBCHAT_API_KEY": API_KEY,
        # A job a killed worker held is taken up again this soon.
        "JOBCHAT_JOB_LEASE_SECONDS": "2",
        "JOBCHAT_WORKER_POLL_SECONDS": "0.2",
    }
    log = (workdir / name).open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "jobchat", "worker"],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


def output(log: IO[str]) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def test_a_killed_worker_leaves_nobody_messaged_twice_or_forgotten(
    world: World, db: Database, database_url: str, tmp_path: Path
) -> None:
    apps = applicants(db, RECIPIENTS)
    tess = world["emp_team"]
    queued = body(tess.post(BULK, {"applications": apps, "body": "Hello", "channel": "app"}), 202)

    def progress() -> dict[str, Any]:
        return body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)

    first, first_log = spawn_worker(database_url, tmp_path, "worker-1.log")
    try:
        eventually(
            lambda: True if progress()["sent"] > 0 else None,
            "the first worker started sending",
            log=lambda: output(first_log),
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=15)
    finally:
        if first.poll() is None:
            first.kill()
    midway = progress()
    assert 0 < midway["sent"] < RECIPIENTS, "killed too late to show anything"

    second, second_log = spawn_worker(database_url, tmp_path, "worker-2.log")
    try:
        eventually(
            lambda: True if progress()["status"] == "done" else None,
            "the second worker finished the bulk",
            timeout=120,
            log=lambda: output(second_log),
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
    done = progress()
    assert (done["sent"], done["skipped"]) == (RECIPIENTS, [])
    assert len({r["message"] for r in done["recipients"]}) == RECIPIENTS
    author = user_id(db, "emp_team")
    with db.read() as session:
        per_conversation = session.execute(
            select(Message.conversation_id, func.count())
            .where(Message.author_id == author)
            .group_by(Message.conversation_id)
        ).all()
    assert len(per_conversation) == RECIPIENTS
    assert {count for _conv, count in per_conversation} == {1}
