"""The index: filled for existing messages by migration 0016, rebuilt by ``jobchat search
reindex``, left alone by sends while indexing is switched off (the benchmark's comparison), and
fed by every path that stores a message (here: a candidate's SMS reply)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient

from jobchat.db.engine import Database
from jobchat.db.migrate import alembic_config
from jobchat.jobqueue.worker import Worker
from jobchat.search import index
from tests.mail_support import drain
from tests.support import As, World, body, sent, start
from tests.twilio_support import (
    INBOUND_PATH,
    candidate_daytime_clock,
    inbound_sms_form,
    twilio,
    twilio_app_settings,
    webhook,
    worker,
)

__all__ = ["candidate_daytime_clock", "twilio", "twilio_app_settings", "worker"]


def found(user: As, q: str) -> list[int]:
    page = body(user.get("/api/v1/search", q=q, limit=50), 200)
    return [item["message"]["id"] for item in page["items"]]


def _migrate(db: Database, *targets: str) -> None:
    config = alembic_config(db.engine.url.render_as_string(hide_password=False))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        for target in targets:
            if target == "0015":
                command.downgrade(config, target)
            else:
                command.upgrade(config, target)


def test_the_migration_indexes_the_messages_there_are(world: World, db: Database) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    tess = world["emp_team"]
    first = sent(tess.send(conv, "Your interview is on Monday", channel="email", subject="Visa"))
    second = sent(world["cand"].send(conv, "Interviewing sounds great, thanks"))
    gone = sent(tess.send(conv, "Interview cancelled, sorry"))
    assert tess.delete(f"/api/v1/messages/{gone['id']}", **{"for": "everyone"}).status_code == 204
    before = {q: found(tess, q) for q in ("interview", "visa", '"interview cancelled"', "sorr*")}
    try:
        # Back to before search existed (the index is dropped), and up again: the backfill.
        _migrate(db, "0015", "head")
    finally:
        _migrate(db, "head")  # whatever happened: other tests share the schema on PostgreSQL
    db.engine.dispose()
    after = {q: found(tess, q) for q in before}
    assert after == before
    assert after["interview"] == [first["id"], second["id"]]
    assert after["visa"] == [first["id"]]
    assert after['"interview cancelled"'] == after["sorr*"] == []


@pytest.fixture
def indexing_off() -> Iterator[None]:
    index.set_indexing(False)
    try:
        yield
    finally:
        index.set_indexing(True)


def _cli_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env["JOBCHAT_DATABASE_URL"] = database_url
    return env


def test_reindex_finds_what_was_sent_with_indexing_off(
    world: World, database_url: str, tmp_path: Path, indexing_off: None
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    unseen = sent(world["emp_team"].send(conv, "Relocation package details"))["id"]
    assert found(world["cand"], "relocation") == []
    index.set_indexing(True)
    kept = sent(world["cand"].send(conv, "Relocation sounds good"))["id"]
    assert found(world["cand"], "relocation") == [kept]
    result = subprocess.run(
        [sys.executable, "-m", "jobchat", "search", "reindex"],
        env=_cli_env(database_url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "search index rebuilt: 2 message(s)"
    assert found(world["cand"], "relocation") == [kept, unseen]


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated")
@pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated")
def test_a_reply_by_sms_is_found(world: World, client: TestClient, worker: Worker) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    body(world["emp_team"].send(chat, "Are you free Tuesday?", channel="sms"), 201)
    drain(worker)
    form: dict[str, Any] = inbound_sms_form(from_number="+14155550123", body="Thursday suits me")
    assert webhook(client, INBOUND_PATH, form).status_code == 200
    (hit,) = body(world["emp_team"].get("/api/v1/search", q="thursday"), 200)["items"]
    assert hit["message"]["channel"] == "sms"
    assert hit["message"]["author"]["id"] == "cand"
    assert (hit["snippet"], hit["highlights"]) == ("Thursday suits me", [[0, 8]])
