"""The demo world: conversations of every kind, every persona signs in and has something unread,
and the stored read state is exactly what a recount gives. ``jobchat demo`` serves it at once."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.app import create_app
from jobchat.auth.csrf import CSRF_HEADER, csrf_token
from jobchat.auth.deps import SESSION_COOKIE
from jobchat.auth.models import Credential, CredentialKind
from jobchat.config import Settings
from jobchat.conversations.models import Kind, Member
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.demo import build_demo, fresh_database
from jobchat.directory.models import Organization
from jobchat.directory.schemas import OrganizationIn
from jobchat.jobqueue.models import QueuedJob
from jobchat.messages.queries import count_unread
from jobchat.scheduling.actions import SCHEDULED_SEND_JOB
from jobchat.scheduling.models import ScheduledMessage
from tests.support import free_port, stop, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_URL = "http://testserver"


@dataclass
class Demo:
    db: Database
    url: str
    links: list[tuple[str, str]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    db = fresh_database(url)
    started = time.monotonic()
    links = build_demo(db, public_url=PUBLIC_URL)
    assert time.monotonic() - started < 10, "the demo should build in a few seconds"
    yield Demo(db, url, links)
    db.dispose()


@pytest.fixture(scope="module")
def client(demo: Demo) -> Iterator[TestClient]:
    settings = Settings(
        database_url=demo.url,
        public_url=PUBLIC_URL,
        _env_file=None,
    )
    with TestClient(create_app(settings, db=demo.db)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def sessions(demo: Demo, client: TestClient) -> dict[str, str]:
    """Each persona's sign-in link spent once: persona label -> session cookie."""
    cookies = {}
    for label, url in demo.links:
        assert url.startswith(f"{PUBLIC_URL}/login/"), url
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, (label, response.text)
        cookies[label] = response.cookies[SESSION_COOKIE]
        client.cookies.clear()
    return cookies


def _get(client: TestClient, cookie: str, path: str, **params: Any) -> Any:
    response = client.get(
        path, params=params or None, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
    )
    assert response.status_code == 200, (path, response.text)
    return response.json()


def test_personas_cover_every_side(demo: Demo) -> None:
    labels = [label for label, _ in demo.links]
    assert len(labels) == len(set(labels)) >= 6
    for side in ("admin", "recruiter", "caseworker", "agency", "Candidate"):
        assert any(side in label for label in labels), side
    assert sum(label.startswith("Candidate") for label in labels) >= 2
    assert all(" — " in label for label in labels)


def test_every_persona_signs_in_with_something_unread(
    demo: Demo, client: TestClient, sessions: dict[str, str]
) -> None:
    for label, cookie in sessions.items():
        me = _get(client, cookie, "/api/v1/me")
        assert me["name"] == label.split(" — ")[1], label
        unread = _get(client, cookie, "/api/v1/unread")
        assert unread["messages"] > 0, label
        assert unread["conversations"] > 0, label
        inbox = _get(client, cookie, "/api/v1/conversations", filter="unread", limit=200)
        assert sum(c["unread_count"] for c in inbox["items"]) == unread["messages"], label


def test_a_sign_in_link_works_once(
    demo: Demo, client: TestClient, sessions: dict[str, str]
) -> None:
    _label, url = demo.links[0]
    assert client.get(url, follow_redirects=False).status_code == 404
    client.cookies.clear()


def test_links_are_valid_for_a_day(demo: Demo) -> None:
    with demo.db.read() as session:
        links = list(
            session.scalars(select(Credential).where(Credential.kind == CredentialKind.login_link))
        )
    assert len(links) == len(demo.links)
    for link in links:
        assert link.expires_at is not None
        assert link.expires_at - link.created_at == timedelta(hours=24)


def test_there_is_a_conversation_of_every_kind(
    client: TestClient, sessions: dict[str, str]
) -> None:
    kinds: set[str] = set()
    statuses: set[str] = set()
    channels: set[str] = set()
    subjects: set[str] = set()
    deleted = 0
    for cookie in sessions.values():
        inbox = _get(client, cookie, "/api/v1/conversations", limit=200)
        assert inbox["next_cursor"] is None
        for conv in inbox["items"]:
            kinds.add(conv["kind"])
            statuses.add(conv["status"])
            page = _get(client, cookie, f"/api/v1/conversations/{conv['id']}/messages", limit=200)
            assert 1 <= len(page["items"]) <= 12, conv["title"]
            for message in page["items"]:
                channels.add(message["channel"])
                if message["subject"]:
                    subjects.add(message["subject"])
                if message["deleted"]:
                    deleted += 1
                    assert message["body"] == ""
    assert kinds == {k.value for k in Kind}
    assert statuses == {"open", "ended"}
    assert channels == {"app", "email", "sms"}
    assert subjects
    assert deleted >= 1


def test_the_picker_has_templates_to_choose_from(
    client: TestClient, sessions: dict[str, str]
) -> None:
    def templates(persona: str) -> dict[str, dict[str, Any]]:
        cookie = next(c for label, c in sessions.items() if persona in label)
        return {t["name"]: t for t in _get(client, cookie, "/api/v1/templates")["items"]}

    tom = templates("Tom Reilly")
    assert {name: t["shared"] for name, t in tom.items()} == {
        "Checking in": False,
        "Interview invitation": True,
        "Thanks for applying": True,
    }
    assert tom["Checking in"]["can_edit"] and not tom["Interview invitation"]["can_edit"]
    assert set(templates("Priya Shah")) == {"Interview invitation", "Thanks for applying"}
    assert templates("Marcus Bell") == {} and templates("Layla Haddad") == {}

    # Filled in for one of Tom's applicants, every field has a value.
    cookie = next(c for label, c in sessions.items() if "Tom Reilly" in label)
    response = client.post(
        f"/api/v1/templates/{tom['Interview invitation']['id']}/preview",
        json={"application": "app-swe-ahmed"},
        headers={"Cookie": f"{SESSION_COOKIE}={cookie}", CSRF_HEADER: csrf_token(cookie)},
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["missing"] == []
    job = "Senior Software Engineer — Melbourne (visa sponsored)"
    assert preview["subject"] == f"Interview for {job}"
    assert preview["body"].startswith(f"Hi Ahmed, thank you for applying for {job}: the hiring")
    assert preview["body"].endswith("Best,\nTom")


def test_marcus_has_a_follow_up_waiting_for_tomorrow_morning(
    demo: Demo, client: TestClient, sessions: dict[str, str]
) -> None:
    def scheduled(persona: str) -> list[dict[str, Any]]:
        cookie = next(c for label, c in sessions.items() if persona in label)
        items: list[dict[str, Any]] = _get(client, cookie, "/api/v1/scheduled-messages")["items"]
        return items

    [waiting] = scheduled("Marcus Bell")
    assert waiting["status"] == "scheduled"
    assert waiting["channel"] == "app" and waiting["message"] is None
    assert waiting["body"].startswith("Hi Hannah, Marcus Bell here")
    # At 08:00 in Marcus's Chicago on the day after the demo was built: still to come.
    now = datetime.now(UTC)
    local = datetime.fromisoformat(waiting["send_at"]).astimezone(ZoneInfo("America/Chicago"))
    assert (local.hour, local.minute) == (8, 0)
    assert now < local <= now + timedelta(hours=32)
    # In Hannah's application chat, which Aisha started and Marcus is in.
    marcus = next(c for label, c in sessions.items() if "Marcus Bell" in label)
    conv = _get(client, marcus, f"/api/v1/conversations/{waiting['conversation']}")
    assert conv["kind"] == "application" and "Hannah Lee" in conv["title"]
    # The worker will post it then: its job is queued for that moment.
    with demo.db.read() as session:
        row = session.get(ScheduledMessage, waiting["id"])
        assert row is not None and row.job_id is not None
        job = session.get(QueuedJob, row.job_id)
        assert job is not None and job.kind == SCHEDULED_SEND_JOB
        assert job.status == "queued" and job.run_at == local
    # Nobody else has anything waiting.
    for label in sessions:
        if "Marcus Bell" not in label:
            assert scheduled(label.split(" — ")[1]) == [], label


def test_stored_unread_counts_equal_a_recount(demo: Demo) -> None:
    with demo.db.read() as session:
        members = list(session.scalars(select(Member)))
        assert members
        for m in members:
            exact = count_unread(session, m.conversation_id, m.user_id, m.last_read_message_id)
            assert m.unread_count == exact, (m.conversation_id, m.user_id)
        assert any(m.unread_count > 0 for m in members)
        assert any(m.unread_count == 0 for m in members)


def test_fresh_database_erases_what_was_there(tmp_path: Path) -> None:
    from jobchat.directory.actions import do_upsert_organization
    from jobchat.directory.models import OrgKind

    url = f"sqlite:///{tmp_path / 'nested' / 'demo.db'}"
    db = fresh_database(url)
    with db.write() as session:
        do_upsert_organization(session, "acme", OrganizationIn(name="Acme", kind=OrgKind.employer))
    db.dispose()
    db = fresh_database(url)
    with db.read() as session:
        assert session.scalars(select(Organization)).first() is None
    db.dispose()


# --- the command ---------------------------------------------------------------------------------


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _demo_env(**extra: str) -> dict[str, str]:
    env = os.environ | {
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    for name in ("JOBCHAT_DATABASE_URL", "JOBCHAT_PUBLIC_URL", "JOBCHAT_API_KEY"):
        env.pop(name, None)
    return env | extra


def _jobchat_demo(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``jobchat demo ARGS`` run to its end (``--links``, or a refusal)."""
    return subprocess.run(
        [sys.executable, "-m", "jobchat", "demo", *args],
        cwd=tmp_path,  # away from any .env in the checkout
        env=_demo_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _printed_links(output: str, labels: list[str]) -> dict[str, str]:
    return {
        label: line.split()[-1]
        for line in output.splitlines()
        for label in labels
        if label in line and "/login/" in line
    }


@pytest.mark.slow
def test_demo_command_serves_with_links_a_key_and_a_token(demo: Demo, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobchat", "demo", "--port", str(port), "--database", database],
        cwd=tmp_path,
        env=_demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    output: list[str] = []
    expected = [label for label, _ in demo.links]
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("New sign-in links") for line in output):
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the demo printed no access in time:\n" + "".join(output)
            try:
                output.append(lines.get(timeout=min(remaining, 1.0)))
            except queue.Empty:
                assert proc.poll() is None, "jobchat demo exited:\n" + "".join(output)
        text_out = "".join(output)
        printed = _printed_links(text_out, expected)
        assert set(printed) == set(expected), text_out
        assert all(url.startswith(f"{base}/login/") for url in printed.values())
        key = re.search(r"integration key: (jck_\S+)", text_out)
        token = re.search(r"user token \(Iress recruiter — Tom Reilly.*\): (jct_\S+)", text_out)
        assert key and token, text_out

        served = wait_until_serving(proc, base, lambda: "".join(output))
        assert served.status_code == 200

        # A printed link signs in on the running server, once.
        first = printed[expected[0]]
        response = httpx.get(first, follow_redirects=False, timeout=5.0)
        assert response.status_code == 303
        assert SESSION_COOKIE in response.cookies
        assert httpx.get(first, follow_redirects=False, timeout=5.0).status_code == 404
        # The token reads Tom's inbox; the key acts for the ATS.
        as_tom = {"Authorization": f"Bearer {token.group(1)}"}
        inbox = httpx.get(f"{base}/api/v1/conversations", headers=as_tom, timeout=5.0)
        assert inbox.status_code == 200 and inbox.json()["items"], inbox.text
        as_ats = {"Authorization": f"Bearer {key.group(1)}"}
        org = {"name": "Demo Partner", "kind": "source_partner"}
        put = httpx.put(f"{base}/api/v1/organizations/try-it", json=org, headers=as_ats)
        assert put.status_code == 201, put.text

        # Fresh links for the running demo, to its own address or to JOBCHAT_PUBLIC_URL.
        again = _jobchat_demo(tmp_path, "--links", "--port", str(port), "--database", database)
        assert again.returncode == 0, again.stderr
        fresh = _printed_links(again.stdout, expected)
        assert set(fresh) == set(expected)
        response = httpx.get(fresh[expected[0]], follow_redirects=False, timeout=5.0)
        assert response.status_code == 303
        proxied = _jobchat_demo(
            tmp_path, "--links", "--database", database, JOBCHAT_PUBLIC_URL="https://demo.example"
        )
        assert proxied.returncode == 0, proxied.stderr
        assert all(
            url.startswith("https://demo.example/login/")
            for url in _printed_links(proxied.stdout, expected).values()
        ), proxied.stdout
    finally:
        stop(proc)


def test_demo_checks_the_port_before_it_erases_anything(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    database.write_bytes(b"an earlier demo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _jobchat_demo(tmp_path, "--port", str(port), "--database", f"sqlite:///{database}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"jobchat demo: cannot serve on 127.0.0.1:{port}: Address already in use"
    ]
    assert database.read_bytes() == b"an earlier demo"


def test_demo_links_need_a_demo_database(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(Database(empty).engine)
    result = _jobchat_demo(tmp_path, "--links", "--database", empty)
    assert result.returncode == 1
    assert "holds no demo" in result.stderr
    assert "Traceback" not in result.stderr
