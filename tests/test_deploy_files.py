"""The files of deploy/ say what jobchat understands: the settings files name real settings with
valid values, the units and compose.yaml start real commands, and the ports agree with the nginx
site. (tests/test_deploy.py runs the site itself; no systemd or Docker runs in the suite.)
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from pydantic import AliasChoices

from jobchat.cli import build_parser, cmd_serve, cmd_worker
from jobchat.config import Settings
from jobchat.proxies import trusted_proxies

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / "deploy" / "jobchat.env"
COMPOSE_ENV = ROOT / "deploy" / "compose.env.example"
SERVER_UNIT = ROOT / "deploy" / "systemd" / "jobchat@.service"
WORKER_UNIT = ROOT / "deploy" / "systemd" / "jobchat-worker.service"
SITE = ROOT / "deploy" / "nginx" / "jobchat.conf"
COMPOSE = ROOT / "compose.yaml"

_ASSIGNMENT = re.compile(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$")


def setting_names() -> set[str]:
    """Every environment variable Settings reads."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"JOBCHAT_{name.upper()}")
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(c) for c in field.validation_alias.choices if str(c).isupper())
    return names


def assignments(path: Path) -> list[tuple[bool, str, str]]:
    """(active, name, value) of each VARIABLE=value line, commented-out examples included;
    values unquoted as systemd does."""
    found = []
    for line in path.read_text().splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match:
            commented, name, value = match.groups()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found.append((not commented, name, value))
    return found


@pytest.mark.parametrize("path", [ENV_FILE, COMPOSE_ENV], ids=lambda p: p.name)
def test_settings_files_name_only_real_settings(path: Path) -> None:
    known = setting_names() | {"POSTGRES_PASSWORD"}  # compose's own, for the postgres service
    unknown = {name for _, name, _ in assignments(path)} - known
    assert not unknown, f"{path.name} sets what jobchat does not read: {sorted(unknown)}"


def test_the_example_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/jobchat.env, as systemd passes it, is valid as it stands (its placeholders
    included), and leaves JOBCHAT_RUN_WORKER alone: an EnvironmentFile wins over the units'
    Environment= lines, and the servers' false must hold."""
    values = {name: value for active, name, value in assignments(ENV_FILE) if active}
    assert "JOBCHAT_RUN_WORKER" not in values
    for name in list(setting_names()):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.email_from == "Hiring <hiring@example.com>"
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://")
    assert trusted_proxies(settings.trusted_proxies) == ["127.0.0.1", "::1"]


def _exec_start(unit: Path, instance: str) -> list[str]:
    lines = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].removeprefix("ExecStart=").replace("%i", instance))


def test_the_units_start_real_commands() -> None:
    server = _exec_start(SERVER_UNIT, "8001")
    assert server[0] == "/opt/jobchat/venv/bin/jobchat"
    args = build_parser().parse_args(server[1:])
    assert args.func is cmd_serve and (args.host, args.port) == ("127.0.0.1", 8001)
    assert "Environment=JOBCHAT_RUN_WORKER=false" in SERVER_UNIT.read_text().splitlines()

    worker = _exec_start(WORKER_UNIT, "")
    assert build_parser().parse_args(worker[1:]).func is cmd_worker
    for unit in (SERVER_UNIT, WORKER_UNIT):
        text = unit.read_text()
        assert "EnvironmentFile=/etc/jobchat/jobchat.env" in text
        assert "User=jobchat" in text and "Restart=always" in text


def test_compose_starts_the_servers_the_site_sends_to() -> None:
    """compose.yaml's servers listen on the ports of the site's upstream block, on loopback (they
    share nginx's network namespace), with real commands."""
    upstream = re.findall(r"^\s*server 127\.0\.0\.1:(\d+);", SITE.read_text(), re.MULTILINE)
    commands = [
        json.loads(found)
        for found in re.findall(r"^\s*command: (\[.*\])$", COMPOSE.read_text(), re.MULTILINE)
    ]
    ours = [argv for argv in commands if argv[0] == "jobchat"]
    assert len(ours) == 3, commands  # two servers and a worker
    ports = []
    for argv in ours:
        args = build_parser().parse_args(argv[1:])
        if args.func is cmd_serve:
            assert args.host == "127.0.0.1"
            ports.append(str(args.port))
        else:
            assert args.func is cmd_worker
    assert sorted(ports) == sorted(upstream) and len(ports) == 2
