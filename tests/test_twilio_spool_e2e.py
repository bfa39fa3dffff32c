"""A real ``jobchat serve`` on SQLite: a candidate's text that arrives while another connection
holds the database's write lock is answered 200 (Twilio would never send it again), survives a
kill -9 of the server before the database took it, and lands in its thread exactly once after
the next start, however often Twilio repeats the webhook."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobchat.sms.spool import Spool
from tests.support import (
    API_KEY,
    ServedProcess,
    eventually,
    free_port,
    spawn_serve,
    wait_until_serving,
)
from tests.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    INBOUND_PATH,
    inbound_sms_form,
    sign,
)

pytestmark = pytest.mark.slow

PHONE = "+14155550142"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def serve(workdir: Path, database: Path, spool: Path, log_name: str) -> ServedProcess:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOBCHAT_", "TWILIO_")) and k not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    env |= {
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "JOBCHAT_DATABASE_URL": f"sqlite:///{database}",
        "JOBCHAT_API_KEY": API_KEY,
        "JOBCHAT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "JOBCHAT_SPOOL_DIR": str(spool),
        "JOBCHAT_SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        # Nothing is texted out here; were it, it would reach no one.
        "JOBCHAT_TWILIO_API_URL": f"http://127.0.0.1:{free_port()}",
    }
    process, log = spawn_serve(port, env, workdir, log_name)
    served = ServedProcess(port, process, log)
    response = wait_until_serving(process, served.base, served.output)
    assert response.status_code == 200, response.text
    return served


def call(server: ServedProcess, method: str, path: str, token: str, json: Any = None) -> Any:
    response = server.http.request(
        method, path, json=json, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 201), (method, path, response.text)
    return response.json()


def text_in(server: ServedProcess, form: dict[str, str]) -> httpx.Response:
    signature = sign(server.base + INBOUND_PATH, form)
    return server.http.post(
        INBOUND_PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=60
    )


def test_a_text_that_meets_a_locked_database_survives_kill_9_and_lands_once(
    tmp_path: Path,
) -> None:
    database, spool = tmp_path / "jobchat.db", tmp_path / "spool"
    first = serve(tmp_path, database, spool, "first.log")
    second: ServedProcess | None = None
    holder: sqlite3.Connection | None = None
    try:

        def put(kind: str, ext: str, body: dict[str, Any]) -> None:
            call(first, "PUT", f"/api/v1/{kind}/{ext}", API_KEY, body)

        put("organizations", "acme", {"name": "Acme Health", "kind": "employer"})
        put(
            "users",
            "tess",
            {"name": "Tess", "email": "t@example.com", "organization": "acme", "role": "admin"},
        )
        put("candidates", "carla", {"name": "Carla", "email": "c@example.org", "phone": PHONE})
        put("jobs", "nurse", {"title": "Nurse", "employer": "acme"})
        put("applications", "app", {"job": "nurse", "candidate": "carla", "stage": "interview"})
        token = call(first, "POST", "/api/v1/users/tess/tokens", API_KEY)["token"]
        chat = call(
            first,
            "POST",
            "/api/v1/conversations",
            token,
            {"kind": "application", "application": "app"},
        )["id"]

        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        form = inbound_sms_form(from_number=PHONE, body="Running late, there at 10:15.")
        answer = text_in(first, form)  # waits out the busy timeout, then answers
        assert (answer.status_code, answer.text) == (200, EMPTY_TWIML), answer.text
        assert len(Spool(spool).pending()) == 1

        first.process.kill()  # the server dies before the database ever took the text
        first.process.wait(timeout=15)
        holder.execute("ROLLBACK")
        holder.close()
        holder = None

        second = serve(tmp_path, database, spool, "second.log")

        def thread() -> list[str]:
            items = call(second, "GET", f"/api/v1/conversations/{chat}/messages", token)["items"]
            return [m["body"] for m in items]

        eventually(lambda: thread() or None, "the text in its thread", log=second.output)
        # Twilio repeating the webhook (say, after a timeout) stores nothing twice.
        assert text_in(second, form).text == EMPTY_TWIML
        assert thread() == ["Running late, there at 10:15."]
        assert Spool(spool).pending() == []
    finally:
        if holder is not None:
            holder.close()
        for served in (first, second):
            if served is not None:
                served.terminate()  # returns at once for the one killed
