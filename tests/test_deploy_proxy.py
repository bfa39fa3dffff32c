"""``JOBCHAT_TRUSTED_PROXIES``: a ``jobchat serve`` process believes ``X-Forwarded-For`` and
``X-Forwarded-Proto`` only from a peer the setting names.

The client address a server settles on shows in its log lines of each request (found by a unique
probe, in the query for uvicorn's access log and in X-Request-ID for jobchat's own lines), and
the scheme in the absolute URLs it makes (the redirect that drops a trailing slash). The test
client connects from 127.0.0.1. The proxy in front of a real deployment is tested in
tests/test_deploy.py; here the servers run alone on a SQLite file of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import (
    API_KEY,
    ServedProcess,
    eventually,
    free_port,
    spawn_serve,
    wait_until_serving,
)

pytestmark = pytest.mark.slow

CLIENT = "203.0.113.7"  # TEST-NET-3: an address no test machine has
FORWARDED = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env.pop("FORWARDED_ALLOW_IPS", None)  # uvicorn's own variable must not decide either
    return env | {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": f"sqlite:///{tmp_path / 'jobchat.db'}",
        "JOBCHAT_API_KEY": API_KEY,
        "JOBCHAT_RUN_WORKER": "false",
        **{f"JOBCHAT_{key.upper()}": value for key, value in settings.items()},
    }


@contextmanager
def served(tmp_path: Path, **settings: str) -> Iterator[ServedProcess]:
    port = free_port()
    process, log = spawn_serve(port, _env(tmp_path, **settings), tmp_path, f"serve-{port}.log")
    server = ServedProcess(port, process, log)
    try:
        wait_until_serving(process, server.base, server.output)
        yield server
    finally:
        server.terminate()


def seen_as(server: ServedProcess) -> tuple[str, str]:
    """(the log lines of one request that carries forwarded headers, the scheme of a redirect
    made for such a request)."""
    redirect = server.http.get("/api/v1/conversations/", headers=FORWARDED)
    assert redirect.status_code == 307, redirect.text
    scheme = redirect.headers["location"].split("://", 1)[0]
    probe = uuid.uuid4().hex
    server.http.get(
        "/api/v1/me", params={"probe": probe}, headers=FORWARDED | {"X-Request-ID": probe}
    )

    def logged() -> str | None:
        lines = [line for line in server.output().splitlines() if probe in line]
        return "\n".join(lines) if lines else None

    lines = eventually(logged, f"the log lines of request {probe}", log=server.output)
    return lines, scheme


def test_forwarded_headers_are_ignored_by_default(tmp_path: Path) -> None:
    """With the setting unset, a client on loopback that sends X-Forwarded-For and
    X-Forwarded-Proto is still itself: 127.0.0.1 over http. (uvicorn alone believes any
    loopback peer.)"""
    with served(tmp_path) as server:
        line, scheme = seen_as(server)
    assert CLIENT not in line and "127.0.0.1" in line, line
    assert scheme == "http"


def test_a_trusted_proxy_is_believed(tmp_path: Path) -> None:
    """A peer named in the setting (here among other entries, a network written loosely
    included) passes on the client's address and scheme."""
    with served(tmp_path, trusted_proxies="10.1.2.3/8, 127.0.0.1 ,::1") as server:
        line, scheme = seen_as(server)
    assert CLIENT in line, line
    assert scheme == "https"


def test_a_peer_outside_the_trusted_networks_is_not(tmp_path: Path) -> None:
    with served(tmp_path, trusted_proxies="10.0.0.0/8,192.168.0.10") as server:
        line, scheme = seen_as(server)
    assert CLIENT not in line and "127.0.0.1" in line, line
    assert scheme == "http"


def test_a_bad_entry_stops_start_up_with_one_line(tmp_path: Path) -> None:
    """A host name, or a typo, would trust nobody without a word: start-up stops instead, with
    one line naming the setting and the entry."""
    result = subprocess.run(
        [sys.executable, "-m", "jobchat", "serve", "--port", str(free_port())],
        env=_env(tmp_path, trusted_proxies="127.0.0.1,nginx"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2  # a bad setting, like every other
    errors = [line for line in result.stderr.splitlines() if "JOBCHAT_TRUSTED_PROXIES" in line]
    assert len(errors) == 1 and "'nginx'" in errors[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
