"""What ``jobchat serve`` writes to its log: JOBCHAT_LOG_FORMAT (text, or one JSON object a line)
and JOBCHAT_LOG_LEVEL, applied to uvicorn's access log too, each line of a request naming its
X-Request-ID; and a warning when no integration key exists."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.support import ServedProcess, eventually, free_port, spawn_serve, wait_until_serving

pytestmark = pytest.mark.slow


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCHAT_", "TWILIO_"))}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": f"sqlite:///{tmp_path / 'jobchat.db'}",
        "JOBCHAT_RUN_WORKER": "false",
    }
    return env | {f"JOBCHAT_{name.upper()}": value for name, value in settings.items()}


def jobchat(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobchat", *args],
        env=environment(tmp_path, **settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def serve(tmp_path: Path, **settings: str) -> ServedProcess:
    env = environment(tmp_path, **settings)
    port = free_port()
    process, log = spawn_serve(port, env, tmp_path)
    server = ServedProcess(port=port, process=process, log=log)
    wait_until_serving(process, server.base, server.output)
    return server


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[ServedProcess]:
    server = serve(tmp_path, log_format="json", log_level="info")
    yield server
    server.terminate()


def json_lines(server: ServedProcess) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be one JSON object."""
    lines = [line for line in server.output().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n{server.output()}") from None
    return parsed


def test_json_lines_name_the_request_and_warn_without_a_key(json_server: ServedProcess) -> None:
    server = json_server
    assert server.http.get("/api/v1/me", headers={"X-Request-ID": "trace-401"}).status_code == 401
    missing = server.http.get("/api/v1/nowhere", headers={"X-Request-ID": "trace-404"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "trace-404"
    made = server.http.get("/api/v1/me").headers["x-request-id"]

    def access_lines() -> list[dict[str, Any]] | None:
        found = [line for line in json_lines(server) if line["logger"] == "uvicorn.access"]
        return found if len(found) >= 3 else None

    access = eventually(access_lines, "three access log lines", log=server.output)
    by_id = {line["request_id"]: line for line in access}
    assert "GET /api/v1/me" in by_id["trace-401"]["message"]
    assert "401" in by_id["trace-401"]["message"]
    assert "GET /api/v1/nowhere" in by_id["trace-404"]["message"]
    assert made in by_id
    for line in json_lines(server):
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), line
    startup = [line for line in json_lines(server) if line["request_id"] is None]
    warnings = [line for line in startup if "no integration key" in line["message"]]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING", startup


def test_the_socket_upgrade_line_names_the_request(json_server: ServedProcess) -> None:
    url = f"ws://127.0.0.1:{json_server.port}/api/v1/events?token=not-a-token"
    # Refused or closed at once: either way the upgrade was logged.
    with (
        contextlib.suppress(Exception),
        connect(url, additional_headers={"X-Request-ID": "trace-ws"}, open_timeout=10),
    ):
        pass

    def upgrade_lines() -> list[dict[str, Any]] | None:
        found = [
            line
            for line in json_lines(json_server)
            if "WebSocket /api/v1/events" in line["message"]
        ]
        return found or None

    lines = eventually(upgrade_lines, "the WebSocket line", log=json_server.output)
    assert {line["request_id"] for line in lines} == {"trace-ws"}, lines
    assert all("not-a-token" not in line["message"] for line in lines)  # still redacted


def test_text_lines_at_the_level_asked(tmp_path: Path) -> None:
    """At WARNING, the access log (INFO) is left out; a line that is written names its
    request id in brackets ("-" outside any request)."""
    server = serve(tmp_path, log_level="warning", api_key="k" * 24)
    try:
        assert server.http.get("/api/v1/me", headers={"X-Request-ID": "quiet"}).status_code == 401
        assert server.http.get("/openapi.json").status_code == 200
        output = server.output()
    finally:
        server.terminate()
    assert "quiet" not in output
    assert "GET /api/v1/me" not in output
    assert "no integration key" not in output  # JOBCHAT_API_KEY is set
    assert "Traceback" not in output


def test_text_access_lines_carry_the_request_id(tmp_path: Path) -> None:
    server = serve(tmp_path, api_key="k" * 24)
    try:
        assert server.http.get("/api/v1/me", headers={"X-Request-ID": "plain-1"}).status_code == 401
        line = eventually(
            lambda: next((ln for ln in server.output().splitlines() if "[plain-1]" in ln), None),
            "the access line",
            log=server.output,
        )
    finally:
        server.terminate()
    assert " INFO uvicorn.access [plain-1] " in line, line
    assert "GET /api/v1/me" in line


def test_a_key_made_with_the_command_is_enough(tmp_path: Path) -> None:
    made = jobchat(tmp_path, "api-key", "create")
    assert made.returncode == 0, made.stderr
    server = serve(tmp_path)
    try:
        assert server.http.get("/openapi.json").status_code == 200
        output = server.output()
    finally:
        server.terminate()
    assert "no integration key" not in output


def test_the_worker_logs_in_the_format_asked(tmp_path: Path) -> None:
    ran = jobchat(tmp_path, "worker", "--once", log_format="json", log_level="debug")
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stderr.splitlines() if line.strip()]
    assert lines, ran.stderr  # the schema's creation, at least
    assert all(line["request_id"] is None for line in lines)
    assert any(line["logger"] == "jobchat.migrate" for line in lines)
    # Alembic's own lines are kept to warnings: the migration's one line says what happened.
    assert not any(line["logger"].startswith("alembic") for line in lines)
