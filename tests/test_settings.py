"""Settings are checked when a process starts: a bad one stops every command with one line that
names the variable and what is wrong (exit 2); a database that cannot be opened is one line too
(exit 1). Never a traceback.

The commands run as processes in a temporary folder (so no ./.env is read) with exactly the
environment each test gives them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings, settings_problem
from jobchat.db.engine import Database
from tests.support import Api, free_port


def problem(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> str:
    """The one line a process would print for ``variable=value``."""
    for name in list(os.environ):
        if name.startswith(("JOBCHAT_", "TWILIO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)
    return settings_problem(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        # Defect 6: 0 minutes made sign-in links that never expire.
        ("JOBCHAT_LOGIN_LINK_MINUTES", "0", "must be at least 1"),
        ("JOBCHAT_LOGIN_LINK_MINUTES", "-5", "must be at least 1"),
        ("JOBCHAT_LOGIN_LINK_MINUTES", "fifteen", "must be a whole number"),
        ("JOBCHAT_SESSION_DAYS", "0", "must be at least 1"),
        ("JOBCHAT_TOKEN_DAYS", "0", "must be at least 1"),
        ("JOBCHAT_WRITE_TIMEOUT_SECONDS", "0", "must be more than 0"),
        ("JOBCHAT_SEND_RATE_PER_MINUTE", "0", "must be at least 1"),
        ("JOBCHAT_MAX_REQUEST_BYTES", "10", "must be at least 1024"),
        ("JOBCHAT_MAX_MESSAGE_CHARS", "0", "must be at least 1"),
        ("JOBCHAT_MAX_SMS_CHARS", "0", "must be at least 1"),
        ("JOBCHAT_INBOUND_SMTP_PORT", "0", "must be at least 1"),
        ("JOBCHAT_INBOUND_SMTP_PORT", "70000", "must be at most 65535"),
        ("JOBCHAT_WORKER_CONCURRENCY", "0", "must be at least 1"),
        ("JOBCHAT_JOB_MAX_ATTEMPTS", "0", "must be at least 1"),
        ("JOBCHAT_STREAM_HEARTBEAT_SECONDS", "0", "must be more than 0"),
        ("JOBCHAT_RUN_WORKER", "perhaps", "must be true or false"),
        ("JOBCHAT_DATABASE_URL", "mysql://db/jobchat", "sqlite:/// or postgresql://"),
        ("JOBCHAT_DATABASE_URL", "jobchat.db", "is not a database URL"),
        ("JOBCHAT_DATABASE_URL", "postgresql://db.internal", "names no database"),
        ("JOBCHAT_PUBLIC_URL", "chat.example.com", "http:// or https:// URL with a host"),
        ("JOBCHAT_PUBLIC_URL", "ftp://chat.example.com", "http:// or https:// URL with a host"),
        ("JOBCHAT_SMTP_URL", "mail.example.com:25", "smtp://"),
        ("JOBCHAT_SMTP_URL", "smtp://mail.example.com:smtp", "port"),
        ("JOBCHAT_REDIS_URL", "localhost:6379", "redis://"),
        ("JOBCHAT_LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("JOBCHAT_LOG_FORMAT", "xml", "text or json"),
        ("JOBCHAT_TRUSTED_PROXIES", "10.0.0.1, proxy.internal", "'proxy.internal'"),
        ("JOBCHAT_TRUSTED_PROXIES", "*, 10.0.0.1", "cannot be combined"),
        ("JOBCHAT_SMS_PROVIDER", "nexmo", "twilio or console"),
        ("JOBCHAT_SMS_PROVIDER", "twilio", "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
        ("JOBCHAT_DEFAULT_PHONE_REGION", "XX", "region code"),
        ("JOBCHAT_EMAIL_FROM", "jobchat", "email address"),
        ("JOBCHAT_REDIS_PREFIX", "job chat", "non-empty word"),
        ("JOBCHAT_VAPID_PRIVATE_KEY", "not-a-key", "must be a P-256 private key"),
        ("JOBCHAT_VAPID_SUBJECT", "hiring@example.com", "mailto: or https:"),
        ("JOBCHAT_CANDIDATE_QUIET_HOURS", "9pm-8am", "HH:MM-HH:MM"),
        ("JOBCHAT_CANDIDATE_QUIET_HOURS", "21:00-21:00", "use off for no quiet hours"),
        ("JOBCHAT_PUSH_TTL_SECONDS", "-1", "must be at least 0"),
    ],
)
def test_a_bad_setting_is_named_with_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    line = problem(monkeypatch, variable, value)
    assert variable in line, line
    assert says in line, line
    assert "\n" not in line


def test_a_zero_lifetime_that_reaches_the_code_is_over_at_once(
    settings: Settings, db: Database, clock: FrozenClock
) -> None:
    """Defect 6 at its root: a lifetime of 0 was taken for "no lifetime", so the link never
    expired. Settings refuse 0 now; should a 0 reach the code anyway, the link is dead."""
    zero = settings.model_copy(update={"login_link_minutes": 0})
    with TestClient(create_app(zero, db=db, clock=clock)) as client:
        api = Api(client)
        api.candidate("c-zero", "Zoe Zero")
        made = api.integration.post("/api/v1/candidates/c-zero/login-links")
        assert made.status_code == 201, made.text
        clock.advance(seconds=1)
        followed = client.get(made.json()["url"], follow_redirects=False)
        assert followed.status_code == 404, followed.text
        assert "set-cookie" not in followed.headers


def test_a_secret_setting_is_never_repeated_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    line = problem(monkeypatch, "JOBCHAT_SMTP_URL", "mail://user:hunter2@mail.example.com")
    assert "JOBCHAT_SMTP_URL" in line
    assert "hunter2" not in line


def test_good_settings_are_taken_and_normalised() -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql://jobchat:secret@db.internal:5432/jobchat",
        public_url="https://chat.example.com/",
        log_level="debug",
        log_format="JSON",
        trusted_proxies=" 10.0.0.1 , 192.168.0.0/16,::1 ",
        sms_provider="",
        smtp_url="",
        redis_url="rediss://cache.internal:6380/1",
        default_phone_region="gb",
        email_from=" Acme Hiring <hiring@acme.example> ",
    )
    assert settings.email_from == "Acme Hiring <hiring@acme.example>"
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"
    assert settings.trusted_proxies == "10.0.0.1,192.168.0.0/16,::1"
    assert settings.sms_provider is None  # an empty variable is unset, not a provider named ""
    assert settings.smtp_url is None
    assert settings.public_url == "https://chat.example.com"
    assert settings.default_phone_region == "GB"
    assert Settings(_env_file=None, trusted_proxies="*").trusted_proxies == "*"
    assert Settings(_env_file=None, api_key="  ").api_key is None


# --- through the command line ---------------------------------------------------------------------


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``jobchat ARGS`` in ``cwd`` with our environment less any JOBCHAT_*, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCHAT_", "TWILIO_"))}
    return subprocess.run(
        [sys.executable, "-m", "jobchat", *args],
        env=full | {"PYTHONUNBUFFERED": "1"} | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "1"],
        ["worker", "--once"],
        ["db", "upgrade"],
        ["demo", "--port", "1"],
        ["api-key", "create"],
    ],
    ids=lambda c: " ".join(c),
)
def test_every_command_stops_on_a_bad_setting(tmp_path: Path, command: list[str]) -> None:
    env = {
        "JOBCHAT_DATABASE_URL": f"sqlite:///{tmp_path / 'jobchat.db'}",
        "JOBCHAT_LOGIN_LINK_MINUTES": "0",
    }
    line = assert_one_line(run(tmp_path, env, *command), 2)
    assert "JOBCHAT_LOGIN_LINK_MINUTES must be at least 1 (got '0')" in line, line
    assert not (tmp_path / "jobchat.db").exists()  # stopped before touching anything


def test_a_bad_setting_in_dot_env_stops_it_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JOBCHAT_LOG_FORMAT=yaml\n")
    line = assert_one_line(run(tmp_path, {}, "db", "upgrade"), 2)
    assert "JOBCHAT_LOG_FORMAT must be text or json" in line


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://jobchat:hunter2@127.0.0.1:{port}/jobchat"
    for command in (["serve", "--port", str(free_port())], ["db", "upgrade"]):
        line = assert_one_line(run(tmp_path, {"JOBCHAT_DATABASE_URL": url}, *command), 1)
        assert f"cannot reach the database jobchat on 127.0.0.1:{port}" in line, line
        assert "hunter2" not in line
        assert "refused" in line.lower(), line


def test_a_sqlite_file_in_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "no-such-folder" / "jobchat.db"
    env = {"JOBCHAT_DATABASE_URL": f"sqlite:///{path}"}
    line = assert_one_line(run(tmp_path, env, "serve", "--port", str(free_port())), 1)
    assert f"cannot open the SQLite database {path}" in line, line
    assert "does its folder exist" in line
