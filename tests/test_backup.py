"""``jobchat db backup PATH``, run as a process: a consistent copy of a SQLite database taken while
a server writes to it; an existing file kept unless ``--force``; PostgreSQL pointed to pg_dump.

The command copies SQLite databases only, so these tests make their own SQLite file whichever
database the suite runs on.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support import (
    API_KEY,
    ServedProcess,
    free_port,
    spawn_serve,
    wait_until,
    wait_until_serving,
)
from tests.test_cli import jobchat, jobchat_env


def backup(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return jobchat(database_url, cwd, "db", "backup", *args)


def org_ids(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT ext_id FROM organizations ORDER BY id")]


def integrity(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


@pytest.mark.slow
def test_a_backup_taken_while_a_server_writes_is_a_consistent_database(tmp_path: Path) -> None:
    """While a ``jobchat serve`` stores one organisation after another, ``jobchat db backup``
    copies the database: the copy passes SQLite's integrity check, opens on its own (no -wal
    beside it), holds every organisation whose PUT was answered before the backup started, and
    holds a gapless prefix of the sequence (one moment's state, not a torn mixture)."""
    database_url = f"sqlite:///{tmp_path / 'live.db'}"
    port = free_port()
    env = jobchat_env(database_url) | {"JOBCHAT_API_KEY": API_KEY, "JOBCHAT_RUN_WORKER": "false"}
    process, log = spawn_serve(port, env, tmp_path)
    server = ServedProcess(port, process, log)
    acknowledged: list[str] = []
    stop = threading.Event()
    failures: list[str] = []

    def write() -> None:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        index = 0
        while not stop.is_set() and index < 5000:
            ext_id = f"org-{index:05d}"
            r = server.http.put(
                f"/api/v1/organizations/{ext_id}",
                json={"name": f"Organisation {index}", "kind": "employer"},
                headers=headers,
            )
            if r.status_code != 201:
                failures.append(r.text)
                return
            acknowledged.append(ext_id)
            index += 1

    writer = threading.Thread(target=write)
    try:
        wait_until_serving(process, server.base, server.output)
        writer.start()
        wait_until(lambda: len(acknowledged) >= 50, "the writer got going", log=server.output)
        before = list(acknowledged)
        result = backup(database_url, tmp_path, "copy.db")
        during = len(acknowledged)
        wait_until(
            lambda: len(acknowledged) >= during + 20,
            "writes go on after the backup",
            log=server.output,
        )
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(timeout=30)
        server.terminate()
    assert not failures, failures
    assert result.returncode == 0, result.stderr
    assert "copy.db" in result.stdout

    copy = tmp_path / "copy.db"
    assert integrity(copy) == ["ok"]
    assert not (tmp_path / "copy.db-wal").exists()
    stored = org_ids(copy)
    assert stored[: len(before)] == before
    assert stored == [f"org-{index:05d}" for index in range(len(stored))]
    assert len(stored) < len(acknowledged), "the copy is a snapshot, not the database of later"


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    """A backup over an existing file is refused with one line and the file untouched; with
    ``--force`` it is replaced by a good copy. No temporary file is left behind either way."""
    database = tmp_path / "jobchat.db"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE organizations (id INTEGER PRIMARY KEY, ext_id TEXT)")
        conn.execute("INSERT INTO organizations (ext_id) VALUES ('acme')")
        conn.commit()
    url = f"sqlite:///{database}"
    target = tmp_path / "backups" / "jobchat.db"
    target.parent.mkdir()
    target.write_bytes(b"yesterday's backup")

    refused = backup(url, tmp_path, str(target))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert target.read_bytes() == b"yesterday's backup"

    forced = backup(url, tmp_path, str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert integrity(target) == ["ok"]
    assert org_ids(target) == ["acme"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["jobchat.db"]


def test_refusals_are_one_line_and_leave_nothing(tmp_path: Path) -> None:
    """PostgreSQL is pointed to pg_dump, a database that does not exist is not created, and a
    target in a missing folder is refused: each with exit 1, one line, no traceback."""
    cases = {
        "postgresql://postgres@127.0.0.1:5432/jobchat": "pg_dump",
        f"sqlite:///{tmp_path / 'missing.db'}": "no database",
    }
    for url, expected in cases.items():
        result = backup(url, tmp_path, "copy.db")
        assert result.returncode == 1, (url, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    with contextlib.closing(sqlite3.connect(tmp_path / "jobchat.db")) as conn:
        conn.execute("CREATE TABLE t (x)")
    result = backup(f"sqlite:///{tmp_path / 'jobchat.db'}", tmp_path, "nowhere/copy.db")
    assert result.returncode == 1
    assert "nowhere is not a directory" in result.stderr, result.stderr
