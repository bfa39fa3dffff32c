"""``jobchat api-key list`` and ``jobchat api-key revoke``, run as processes: a revoked key gets
401 at once from a server on that database, which never cached it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobchat.app import create_app
from jobchat.config import Settings
from jobchat.db.engine import Database
from tests.support import assert_error
from tests.test_cli import cli_database_url, jobchat

__all__ = ["cli_database_url"]  # the fixture: a fresh database for each test

ORG = {"name": "Acme", "kind": "employer"}
# A line of the log, which the CLI writes to stderr too (on a busy machine, a write that held
# the write turn long is logged as a warning): not what the command says.
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\dT\S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.mark.slow  # runs the CLI eight times
def test_keys_are_listed_without_their_secrets_and_a_revoked_one_gets_401_at_once(
    cli_database_url: str, tmp_path: Path
) -> None:
    empty = jobchat(cli_database_url, tmp_path, "api-key", "list")
    assert empty.returncode == 0, empty.stderr
    assert "no integration keys" in empty.stdout

    first = jobchat(cli_database_url, tmp_path, "api-key", "create", "--name", "ats")
    second = jobchat(cli_database_url, tmp_path, "api-key", "create", "--name", "backup")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    key, other = first.stdout.strip(), second.stdout.strip()

    settings = Settings(database_url=cli_database_url, api_key=None, _env_file=None)
    db = Database(settings.sqlalchemy_url)
    try:
        with TestClient(create_app(settings, db=db)) as client:

            def put(secret: str) -> int:
                headers = {"Authorization": f"Bearer {secret}"}
                r = client.put("/api/v1/organizations/acme", json=ORG, headers=headers)
                status: int = r.status_code
                return status

            assert put(key) in (200, 201) and put(other) == 200

            listed = jobchat(cli_database_url, tmp_path, "api-key", "list")
            assert listed.returncode == 0, listed.stderr
            assert key not in listed.stdout and other not in listed.stdout
            rows = [line.split() for line in listed.stdout.splitlines()[1:]]
            # id, created (date and time), revoked ("-"), name
            assert [(r[0], r[3], r[-1]) for r in rows] == [("1", "-", "ats"), ("2", "-", "backup")]

            revoked = jobchat(cli_database_url, tmp_path, "api-key", "revoke", "1")
            assert revoked.returncode == 0, revoked.stderr
            assert "revoked" in revoked.stdout
            # The very next call, on a server that accepted the key a moment ago.
            headers = {"Authorization": f"Bearer {key}"}
            assert_error(client.put("/api/v1/organizations/acme", json=ORG, headers=headers), 401)
            assert put(other) == 200

            relisted = jobchat(cli_database_url, tmp_path, "api-key", "list").stdout
            first_row = relisted.splitlines()[1].split()
            assert first_row[0] == "1" and first_row[3] != "-" and first_row[-1] == "ats"

            # Revoking it again is harmless; an unknown id is one clear line and exit 1.
            assert jobchat(cli_database_url, tmp_path, "api-key", "revoke", "1").returncode == 0
            unknown = jobchat(cli_database_url, tmp_path, "api-key", "revoke", "99")
            assert unknown.returncode == 1
            said = [line for line in unknown.stderr.splitlines() if not LOG_RECORD.match(line)]
            assert said == ["jobchat: there is no integration key with id 99"]
            assert unknown.stdout == ""
    finally:
        db.dispose()
