"""Migrations under a lock: several ``jobchat serve`` and a ``jobchat db upgrade`` started at the
same moment on one fresh database all come up, and the schema is made once.

The database is new for each test: a SQLite file in the test's directory, or, when the suite runs
on PostgreSQL (JOBCHAT_TEST_DATABASE_URL), a database created on that server and dropped after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import alembic_config
from jobchat.db.models import Base
from tests.fresh_database import fresh_database
from tests.support import API_KEY, ServedProcess, free_port, spawn_serve, wait_until_serving

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")
SERVERS = 3


@pytest.fixture
def new_database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(PG_URL, tmp_path, "migrate") as url:
        yield url


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    return env | {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": database_url,
        "JOBCHAT_API_KEY": API_KEY,
        "JOBCHAT_RUN_WORKER": "false",
    }


def test_servers_and_an_upgrade_started_together_all_come_up(
    new_database_url: str, tmp_path: Path
) -> None:
    """Three ``jobchat serve`` and one ``jobchat db upgrade``, started together on a database
    that does not exist yet: every server answers, the upgrade exits 0, and the database holds
    the newest schema with exactly one version row."""
    env = _env(new_database_url)
    servers: list[ServedProcess] = []
    upgrade_log = (tmp_path / "upgrade.log").open("w+")
    try:
        # Started back to back, before any of them has imported jobchat (a second or so each):
        # their migrations overlap.
        for index in range(SERVERS):
            port = free_port()
            process, log = spawn_serve(port, env, tmp_path, f"serve-{index}.log")
            servers.append(ServedProcess(port, process, log))
        upgrade = subprocess.Popen(
            [sys.executable, "-m", "jobchat", "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=upgrade_log,
            stderr=subprocess.STDOUT,
        )

        status = upgrade.wait(timeout=120)
        upgrade_log.seek(0)
        assert status == 0, upgrade_log.read()
        for server in servers:
            response = wait_until_serving(server.process, server.base, server.output, 120)
            assert response.status_code == 200, response.text
    finally:
        for server in servers:
            server.terminate()
        upgrade_log.close()

    head = ScriptDirectory.from_config(alembic_config(new_database_url)).get_current_head()
    db = Database(Settings(database_url=new_database_url, _env_file=None).sqlalchemy_url)
    try:
        with db.read() as session:
            versions = session.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [tuple(row) for row in versions] == [(head,)]
        assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()
