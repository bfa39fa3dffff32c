"""Email throughput and reply latency: notifications a second to a loopback SMTP server, and the
time from a reply reaching the inbound SMTP port to its message being readable through the API.

Run from the project root:

    .venv/bin/python bench/bench_email.py
    .venv/bin/python bench/bench_email.py --database postgresql://postgres@127.0.0.1:5432/jc_bench_mail

It starts a real ``jobchat serve`` (a fresh SQLite file in a temporary directory, or the
PostgreSQL database given, created if missing and its ``public`` schema dropped; ``test`` is
refused) with its jobs worker off, its inbound SMTP listener on, and JOBCHAT_NOTIFY_DELAY_SECONDS
at 0, so that every unread message is due for a notification at once. Outgoing mail goes to an
aiosmtpd server in a separate process that only counts what it receives. Through the
integration API it seeds one employer, one hiring-team member and N candidates (default 500),
each with an application and its conversation. Then:

(a) notifications: the staff member writes one app message into each conversation (N unread
    messages, N notification clocks run out), and a worker sends them all, timed from the start
    until the SMTP server has received N emails. Twice: the worker in this process
    (``Worker.drain()``, as ``jobchat worker --once`` runs it), then a fresh round through a real
    ``jobchat worker`` process (its continuous loop, as deployed). Reported: notifications a
    second and CPU per notification: of the worker's process, the SMTP server's, and on
    PostgreSQL its backends'.
(b) replies: R replies (default 200), one at a time, each a Gmail-style reply (text and HTML, a
    quoted original) from a candidate to their reply address, sent with smtplib to the inbound
    port. Timed: the SMTP session up to the server's 250 answer to DATA (it answers once the
    mail is stored and posted), and from that answer until ``GET
    /api/v1/conversations/{id}/messages`` shows the reply (polled back to back); p50/p99/max.

The figures are printed and written to ``bench/results/email-<dialect>.json``. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import re
import secrets
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from functools import partial
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from seeding import reset_database, sqlalchemy_url
from sqlalchemy import select
from sqlalchemy.engine import make_url

from jobchat.background import build_worker
from jobchat.clock import SystemClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.mail.service import MailService

REPLY_DOMAIN = "reply.bench.example"
EMAIL_FROM = "Bench Hiring <hiring@bench.example>"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SEED_CONCURRENCY = 16
T = TypeVar("T")


# --- measuring ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def backend_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``database`` on this machine."""
    found: dict[int, float] = {}
    if not database:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        if cmdline.startswith("postgres: ") and f" {database} " in cmdline:
            found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def backend_delta(before: dict[int, float], database: str | None) -> float:
    """CPU the backends used since ``before`` (those that exited meanwhile are not counted:
    measure before closing connections)."""
    after = backend_cpu(database)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def latency(values_ms: Iterable[float]) -> dict[str, float]:
    ms = sorted(values_ms)
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- the outgoing SMTP server, in its own process -------------------------------------------------


def _sink_main(port: int, received: Synchronized[int], ready: EventType, done: EventType) -> None:
    """An aiosmtpd server that accepts everything and only counts it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

    class Counting:
        async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
            self, server: SMTP, session: Session, envelope: Envelope
        ) -> str:
            with received.get_lock():
                received.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    done.wait()
    controller.stop()


@dataclass
class Sink:
    port: int
    process: multiprocessing.process.BaseProcess
    received: Synchronized[int]
    done: EventType

    @classmethod
    def start(cls) -> Sink:
        context = multiprocessing.get_context("spawn")
        port = free_port()
        received: Synchronized[int] = context.Value("i", 0)
        ready, done = context.Event(), context.Event()
        process = context.Process(
            target=_sink_main, args=(port, received, ready, done), daemon=True
        )
        process.start()
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")
        return cls(port, process, received, done)

    @property
    def count(self) -> int:
        return int(self.received.value)

    @property
    def cpu(self) -> float:
        return cpu_seconds(self.process.pid or 0)

    def stop(self) -> None:
        self.done.set()
        self.process.join(10)


# --- the server -----------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return self.process.returncode


def jobchat(*argv: str) -> list[str]:
    return [sys.executable, "-m", "jobchat", *argv]


def start_server(workdir: Path, env: dict[str, str]) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            jobchat("serve", "--host", "127.0.0.1", "--port", str(port)),
            env={**env, "JOBCHAT_PUBLIC_URL": base},
            cwd=workdir,  # no .env of the caller's working directory
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, base, log)
    wait_until_serving(server)
    return server


class Served(Protocol):
    """A `jobchat serve` a benchmark started: what waiting for it needs."""

    process: subprocess.Popen[bytes]
    base: str

    def stop(self) -> object: ...

    def log_tail(self) -> str: ...


def wait_until_serving(server: Served, timeout: float = 120) -> None:
    """Return once ``server`` answers HTTP; stop it and exit with its log if it dies or stays
    silent past ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise SystemExit(f"the server exited with {code}:\n{server.log_tail()}")
        try:
            httpx.get(f"{server.base}/openapi.json", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                server.stop()
                raise SystemExit(f"the server did not answer:\n{server.log_tail()}") from None
            time.sleep(0.2)


# --- seeding through the integration API ----------------------------------------------------------


@dataclass
class World:
    staff_token: str
    candidates: list[str]  # external ids
    candidate_tokens: list[str]
    conversations: list[int]


class Api:
    def __init__(self, client: httpx.AsyncClient, api_key: str) -> None:
        self.client = client
        self.api_key = api_key
        self.requests = 0

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> dict[str, Any]:
        self.requests += 1
        response = await self.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token or self.api_key}"}
        )
        if response.status_code not in (200, 201):
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
        data: dict[str, Any] = response.json()
        return data


async def gather_limited(jobs: Iterable[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(job) for job in jobs))


async def seed(api: Api, n: int) -> World:
    await api.call("PUT", "/api/v1/organizations/acme", {"name": "Acme Health", "kind": "employer"})
    staff = {
        "name": "Tess Team",
        "email": "tess@bench.example",
        "organization": "acme",
        "role": "member",
    }
    await api.call("PUT", "/api/v1/users/tess", staff)
    job = {"title": "Registered Nurse", "employer": "acme", "team": ["tess"]}
    await api.call("PUT", "/api/v1/jobs/nurse", job)
    staff_token = (await api.call("POST", "/api/v1/users/tess/tokens"))["token"]

    async def candidate(i: int) -> tuple[str, str, int]:
        ext = f"cand-{i}"
        person = {"name": f"Candidate {i}", "email": f"{ext}@bench.example"}
        await api.call("PUT", f"/api/v1/candidates/{ext}", person)
        application = {
            "job": "nurse",
            "candidate": ext,
            "stage": "interview",
            "applied_at": "2026-01-05T09:00:00Z",
        }
        await api.call("PUT", f"/api/v1/applications/app-{i}", application)
        token = (await api.call("POST", f"/api/v1/candidates/{ext}/tokens"))["token"]
        start = {"kind": "application", "application": f"app-{i}"}
        conv = await api.call("POST", "/api/v1/conversations", start, staff_token)
        return ext, token, int(conv["id"])

    made = await gather_limited([partial(candidate, i) for i in range(n)], SEED_CONCURRENCY)
    return World(
        staff_token,
        [ext for ext, _, _ in made],
        [token for _, token, _ in made],
        [conv for _, _, conv in made],
    )


async def write_to_everyone(api: Api, world: World, round_no: int) -> None:
    """One app message from the staff member into every conversation: N unread messages."""

    async def send(conv: int) -> None:
        body = {
            "body": f"Round {round_no}: thanks for applying! Are you free for a call on Tuesday?"
        }
        await api.call("POST", f"/api/v1/conversations/{conv}/messages", body, world.staff_token)

    await gather_limited([partial(send, c) for c in world.conversations], SEED_CONCURRENCY)


async def over_http(
    base: str, api_key: str, work: Callable[..., Awaitable[T]], *args: Any
) -> tuple[T, int]:
    """``work(api, *args)`` with a client of the server: its result and the requests made."""
    async with httpx.AsyncClient(base_url=base, timeout=60, trust_env=False) as client:
        api = Api(client, api_key)
        result = await work(api, *args)
        return result, api.requests


# --- (a) notifications ----------------------------------------------------------------------------


def wait_for_count(sink: Sink, target: int, timeout: float) -> float:
    """Wait until the sink has ``target`` emails; the moment it did (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while sink.count < target:
        if time.perf_counter() > deadline:
            raise SystemExit(f"the SMTP server received {sink.count} of {target} emails in time")
        time.sleep(0.002)
    return time.perf_counter()


def notification_summary(
    n: int, wall: float, worker_cpu: float, sink_cpu: float, db_cpu: float | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "notifications": n,
        "wall_s": round(wall, 3),
        "per_second": round(n / wall, 1),
        "worker_cpu_ms_per_notification": round(1000 * worker_cpu / n, 3),
        "smtp_server_cpu_ms_per_notification": round(1000 * sink_cpu / n, 3),
    }
    if db_cpu is not None:
        out["db_backends_cpu_ms_per_notification"] = round(1000 * db_cpu / n, 3)
    return out


def drain_in_process(
    settings: Settings, sink: Sink, n: int, database: str | None
) -> dict[str, Any]:
    """The worker in this process: ``Worker.drain()`` runs every due notification."""
    db = Database(settings.sqlalchemy_url)
    mail = MailService.create(db, SystemClock(), settings)
    worker = build_worker(mail, name="bench-drain")
    before, sink_cpu0, db_cpu0 = sink.count, sink.cpu, backend_cpu(database)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    ran = asyncio.run(worker.drain())
    cpu1 = time.process_time()
    wall1 = wait_for_count(sink, before + n, 60)
    sink_cpu, db_cpu = sink.cpu - sink_cpu0, backend_delta(db_cpu0, database)
    db.dispose()
    sent = worker.stats.by_kind.get("email.notification", 0)
    if sent != n or worker.stats.failed or worker.stats.retried:
        raise SystemExit(f"drain: expected {n} notifications, got {worker.stats} ({ran} jobs)")
    return notification_summary(
        n, wall1 - wall0, cpu1 - cpu0, sink_cpu, db_cpu if database else None
    ) | {"jobs_run": ran, "concurrency": settings.worker_concurrency}


def run_worker_process(
    env: dict[str, str], workdir: Path, sink: Sink, n: int, database: str | None
) -> dict[str, Any]:
    """A real ``jobchat worker`` (its continuous loop), timed from its "started" log line until
    the SMTP server has every notification."""
    log = workdir / "worker.log"
    before = sink.count
    with log.open("wb") as out:
        process = subprocess.Popen(
            jobchat("worker"), env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while " started" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.002)
        wall0, cpu0 = time.perf_counter(), cpu_seconds(process.pid)
        sink_cpu0, db_cpu0 = sink.cpu, backend_cpu(database)
        wall1 = wait_for_count(sink, before + n, 120)
        cpu1 = cpu_seconds(process.pid)
        sink_cpu, db_cpu = sink.cpu - sink_cpu0, backend_delta(db_cpu0, database)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    if re.search(r"failed|Traceback", log.read_text(errors="replace")):
        raise SystemExit(f"the worker logged failures:\n{log.read_text()[-4000:]}")
    return notification_summary(
        n, wall1 - wall0, cpu1 - cpu0, sink_cpu, db_cpu if database else None
    ) | {"concurrency": int(env.get("JOBCHAT_WORKER_CONCURRENCY", "8"))}


# --- (b) replies ----------------------------------------------------------------------------------


class _Smtp(smtplib.SMTP):
    """smtplib's client, keeping the server's answer to DATA."""

    data_reply: tuple[int, bytes] = (0, b"")

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_reply = super().data(msg)
        return self.data_reply


def gmail_reply(sender: str, to: str, text: str) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = formataddr(("A Candidate", sender))
    reply["To"] = to
    reply["Subject"] = "Re: 1 unread message: Registered Nurse · Acme Health"
    reply["Date"] = formatdate(localtime=True)
    reply["Message-ID"] = make_msgid(domain="mail.gmail.com")
    original = "Thanks for applying! Are you free for a call on Tuesday?"
    attribution = "On Mon, 5 Jan 2026 at 10:00, Bench Hiring <hiring@bench.example> wrote:"
    reply.set_content(f"{text}\n\n{attribution}\n\n> Tess Team (Acme Health):\n> {original}\n")
    reply.add_alternative(
        f'<div dir="ltr">{text}</div><br><div class="gmail_quote"><div dir="ltr" '
        f'class="gmail_attr">{attribution}<br></div><blockquote class="gmail_quote" '
        'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
        f'padding-left:1ex">Tess Team (Acme Health):<br>{original}</blockquote></div>',
        subtype="html",
    )
    return reply


def measure_replies(
    server: Server,
    settings: Settings,
    world: World,
    inbound_port: int,
    count: int,
    database: str | None,
) -> dict[str, Any]:
    db = Database(settings.sqlalchemy_url)
    keys = MailService.create(db, SystemClock(), settings).keys
    with db.read() as session:
        rows = session.execute(select(User.ext_id, User.id).where(User.kind == "candidate"))
        ids: dict[str, int] = dict(rows.all())
    db.dispose()
    smtp_ms: list[float] = []
    visible_ms: list[float] = []
    total_ms: list[float] = []
    polls: list[int] = []
    server_cpu0, db_cpu0 = cpu_seconds(server.process.pid), backend_cpu(database)
    with httpx.Client(base_url=server.base, timeout=30, trust_env=False) as http:
        for i in range(count):
            index = i % len(world.conversations)
            conv, ext = world.conversations[index], world.candidates[index]
            sender = f"{ext}@bench.example"
            marker = f"jcbench-{i}-{secrets.token_hex(4)}"
            text = f"Yes, Tuesday works for me. ({marker})"
            mail = gmail_reply(sender, keys.reply_address(conv, ids[ext]), text)
            headers = {"Authorization": f"Bearer {world.candidate_tokens[index]}"}
            path = f"/api/v1/conversations/{conv}/messages"

            t0 = time.perf_counter()
            with _Smtp("127.0.0.1", inbound_port, timeout=30) as smtp:
                smtp.send_message(mail, from_addr=sender)
                t1 = time.perf_counter()
                code, answer = smtp.data_reply
            if code != 250 or b"(posted)" not in answer:
                raise SystemExit(f"reply {i}: {code} {answer!r}")
            tries = 0
            while True:
                tries += 1
                page = http.get(path, params={"limit": 5}, headers=headers)
                if page.status_code != 200:
                    raise SystemExit(f"{path}: {page.status_code} {page.text}")
                if any(m["body"] == text for m in page.json()["items"]):
                    break
                if time.perf_counter() - t1 > 30:
                    raise SystemExit(f"reply {i} never showed up in {path}")
            t2 = time.perf_counter()
            smtp_ms.append(1000 * (t1 - t0))
            visible_ms.append(1000 * (t2 - t1))
            total_ms.append(1000 * (t2 - t0))
            polls.append(tries)
    server_cpu = cpu_seconds(server.process.pid) - server_cpu0
    db_cpu = backend_delta(db_cpu0, database)
    return {
        "replies": count,
        "smtp_until_250": latency(smtp_ms),
        "after_250_until_visible": latency(visible_ms),
        "smtp_start_until_visible": latency(total_ms),
        "gets_until_visible": {"max": max(polls), "mean": round(statistics.fmean(polls), 2)},
        "server_cpu_ms_per_reply_incl_gets": round(1000 * server_cpu / count, 2),
    } | (
        {"db_backends_cpu_ms_per_reply_incl_gets": round(1000 * db_cpu / count, 2)}
        if database
        else {}
    )


# --- the run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = sqlalchemy_url(args.database)
    reset_database(url)
    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() == "postgresql" else None
    sink = Sink.start()
    inbound_port = free_port()
    api_key = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")} | {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": args.database,
        "JOBCHAT_API_KEY": api_key,
        "JOBCHAT_SEND_RATE_PER_MINUTE": "1000000",
        "JOBCHAT_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "JOBCHAT_EMAIL_FROM": EMAIL_FROM,
        "JOBCHAT_REPLY_DOMAIN": REPLY_DOMAIN,
        "JOBCHAT_INBOUND_SMTP_PORT": str(inbound_port),
        "JOBCHAT_NOTIFY_DELAY_SECONDS": "0",
        "JOBCHAT_RUN_WORKER": "false",
        "JOBCHAT_WORKER_CONCURRENCY": str(args.concurrency),
        "JOBCHAT_WORKER_POLL_SECONDS": "0.2",
    }
    server = start_server(workdir, env)
    settings = Settings(
        database_url=args.database,
        public_url=server.base,
        smtp_url=f"smtp://127.0.0.1:{sink.port}",
        email_from=EMAIL_FROM,
        reply_domain=REPLY_DOMAIN,
        worker_concurrency=args.concurrency,
        _env_file=None,
    )
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        world, requests = asyncio.run(over_http(server.base, api_key, seed, args.notifications))
        out["seed"] = {"seconds": round(time.perf_counter() - t0, 1), "requests": requests}
        print(
            f"seeded {len(world.conversations)} candidates with a conversation each in "
            f"{out['seed']['seconds']} s ({requests} requests)",
            flush=True,
        )
        n = len(world.conversations)

        asyncio.run(over_http(server.base, api_key, write_to_everyone, world, 1))
        time.sleep(0.05)  # the clocks are due at once (delay 0): past them by a margin
        out["drain_in_process"] = drain_in_process(settings, sink, n, database)
        print(f"  in-process drain: {out['drain_in_process']}", flush=True)

        asyncio.run(over_http(server.base, api_key, write_to_everyone, world, 2))
        out["jobchat_worker"] = run_worker_process(env, workdir, sink, n, database)
        print(f"  jobchat worker:   {out['jobchat_worker']}", flush=True)

        out["replies"] = measure_replies(
            server, settings, world, inbound_port, args.replies, database
        )
        print(f"  replies: {out['replies']}", flush=True)
    finally:
        code = server.stop()
        sink.stop()
        log = server.log.read_text(errors="replace")
        if "Traceback" in log or " ERROR " in log:
            copy = args.results_dir / f"email-{parsed.get_backend_name()}-server.log"
            copy.write_text(log)
            print(f"the server logged errors: {copy}")
    out["server_exit"] = code
    return out


def code_version() -> dict[str, Any]:
    def git(*argv: str) -> str:
        try:
            return subprocess.run(
                ["git", *argv], capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "-s"))}


def print_table(dialect: str, results: dict[str, Any]) -> None:
    print(f"\n## {dialect}\n")
    print(
        "| notifications | n | wall s | per second | worker CPU ms/notif | SMTP server CPU ms/notif"
        " | DB backends CPU ms/notif |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, key in (
        ("in-process Worker.drain()", "drain_in_process"),
        ("`jobchat worker` process", "jobchat_worker"),
    ):
        r = results[key]
        backend = r.get("db_backends_cpu_ms_per_notification", "n/a")
        print(
            f"| {label} (concurrency {r['concurrency']}) | {r['notifications']} | {r['wall_s']} "
            f"| {r['per_second']} | {r['worker_cpu_ms_per_notification']} "
            f"| {r['smtp_server_cpu_ms_per_notification']} | {backend} |"
        )
    replies = results["replies"]
    print(f"\n| replies (n = {replies['replies']}) | p50 ms | p99 ms | max ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    for label, key in (
        ("SMTP session start until 250 (stored and posted)", "smtp_until_250"),
        ("250 until visible in GET …/messages", "after_250_until_visible"),
        ("SMTP session start until visible", "smtp_start_until_visible"),
    ):
        r = replies[key]
        print(f"| {label} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['mean_ms']} |")
    print(
        f"\nGETs until visible: max {replies['gets_until_visible']['max']}, mean "
        f"{replies['gets_until_visible']['mean']}; server CPU per reply (with its GETs): "
        f"{replies['server_cpu_ms_per_reply_incl_gets']} ms"
        + (
            f", PostgreSQL backends {replies['db_backends_cpu_ms_per_reply_incl_gets']} ms"
            if "db_backends_cpu_ms_per_reply_incl_gets" in replies
            else ""
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--notifications", type=int, default=500, help="candidates to notify")
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="the worker's concurrency")
    parser.add_argument("--out", help="results file name (default: email-<dialect>.json)")
    args = parser.parse_args(argv)
    if args.replies > args.notifications:
        parser.error("--replies may not exceed --notifications (one reply per conversation)")

    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    args.results_dir = results_dir
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jobchat-email-") as tmp:
        if args.database is None:
            args.database = f"sqlite:///{tmp}/email.db"
        dialect = make_url(sqlalchemy_url(args.database)).get_backend_name()
        print(f"jobchat email benchmark on {dialect}", flush=True)
        results = run(args, Path(tmp))
    print_table(dialect, results)
    out = {
        "database": dialect,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "args": {k: str(v) for k, v in vars(args).items() if k != "results_dir"},
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        **results,
    }
    path = results_dir / (args.out or f"email-{dialect}.json")
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
