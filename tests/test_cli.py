"""The ``jobchat`` command: ``db upgrade``, ``api-key create`` and ``serve``, run as processes.

Each test gets its own fresh database: a temporary SQLite file, or, when the suite runs on
PostgreSQL (JOBCHAT_TEST_DATABASE_URL), a new database on that server, dropped afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from jobchat.app import create_app
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.models import Base
from tests.fresh_database import fresh_database
from tests.support import assert_error, free_port, spawn_serve, stop, wait_until_serving

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")


@pytest.fixture
def cli_database_url(tmp_path: Path) -> Iterator[str]:
    """A database URL (as a user would write it) for a database that does not exist yet."""
    with fresh_database(PG_URL, tmp_path, "cli") as url:
        yield url


def jobchat_env(database_url: str) -> dict[str, str]:
    """The environment for a ``jobchat`` process: ours, minus any JOBCHAT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env["JOBCHAT_DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def jobchat(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobchat", *args],
        env=jobchat_env(database_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def table_names(database_url: str) -> set[str]:
    db = Database(Settings(database_url=database_url).sqlalchemy_url)
    try:
        return set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()


def test_db_upgrade_creates_the_schema(cli_database_url: str, tmp_path: Path) -> None:
    """``jobchat db upgrade`` creates every table on a new database, and running it again is a
    harmless no-op."""
    result = jobchat(cli_database_url, tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    tables = table_names(cli_database_url)
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables

    again = jobchat(cli_database_url, tmp_path, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert table_names(cli_database_url) == tables


def test_api_key_create_makes_a_working_integration_key(
    cli_database_url: str, tmp_path: Path
) -> None:
    """``jobchat api-key create`` prints a new key that a server on that database accepts as the
    integration key; only its SHA-256 digest is stored."""
    upgraded = jobchat(cli_database_url, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    first = jobchat(cli_database_url, tmp_path, "api-key", "create", "--name", "ats")
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert key and "\n" not in key and " " not in key
    second = jobchat(cli_database_url, tmp_path, "api-key", "create")
    assert second.returncode == 0, second.stderr
    other_key = second.stdout.strip()
    assert other_key != key

    settings = Settings(database_url=cli_database_url, api_key=None, _env_file=None)
    db = Database(settings.sqlalchemy_url)
    try:
        with db.read() as s:
            rows = [tuple(r) for r in s.execute(text("SELECT * FROM api_keys"))]
            named = s.execute(text("SELECT name, secret_hash FROM api_keys ORDER BY id")).all()
        assert tuple(named[0]) == ("ats", hashlib.sha256(key.encode()).hexdigest())
        assert len(rows) == 2
        assert not any(key in str(v) or other_key in str(v) for row in rows for v in row)

        with TestClient(create_app(settings, db=db)) as client:
            for secret in (key, other_key):
                r = client.put(
                    f"/api/v1/organizations/org-{secret[-6:]}",
                    json={"name": "Acme", "kind": "employer"},
                    headers={"Authorization": f"Bearer {secret}"},
                )
                assert r.status_code == 201, r.text
            wrong = client.put(
                "/api/v1/organizations/x",
                json={"name": "X", "kind": "employer"},
                headers={"Authorization": f"Bearer {key}x"},
            )
            assert_error(wrong, 401)
            assert_error(client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}), 403)
    finally:
        db.dispose()


@pytest.mark.slow
def test_serve_starts_and_publishes_its_openapi(cli_database_url: str, tmp_path: Path) -> None:
    """``jobchat serve`` on a fresh database creates the schema and serves the API; its OpenAPI
    document lists the conversation endpoints."""
    port = free_port()
    process, log = spawn_serve(port, jobchat_env(cli_database_url), tmp_path)
    base = f"http://127.0.0.1:{port}"

    def output() -> str:
        log.seek(0)
        return log.read()

    try:
        response = wait_until_serving(process, base, output)
        assert response.status_code == 200, response.text
        paths = response.json()["paths"]
        assert "/api/v1/conversations" in paths
        assert "/api/v1/conversations/{conversation_id}/messages" in paths
        # It answers API calls in the error shape, over real HTTP.
        assert_error(httpx.get(f"{base}/api/v1/me", timeout=5), 401)
        assert set(Base.metadata.tables) <= table_names(cli_database_url)
    finally:
        stop(process)
        log.close()
