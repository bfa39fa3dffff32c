"""Web Push: pushes a second to 10,000 subscriptions through a loopback push service, and the
delay from a message's send to its push arriving (decrypted) at the push service.

Run from the project root:

    .venv/bin/python bench/bench_push.py
    .venv/bin/python bench/bench_push.py --database postgresql://postgres@127.0.0.1:5432/bench_push
    .venv/bin/python bench/bench_push.py --runs 3

It starts a real ``jobchat serve`` (a fresh SQLite file in a temporary directory, or the
PostgreSQL database given, created if missing and its ``public`` schema dropped; ``test`` is
refused) with its jobs worker in-process, as deployed, and JOBCHAT_PUSH_ALLOW_INSECURE=true so
that it may push to the loopback push service (tests/push_service.py: RFC 8030, checks each
push's VAPID signature and claims, decrypts its RFC 8291 body), which runs in a process of its
own so that its CPU is neither charged to jobchat nor slows jobchat's event loop.

Through the integration API it seeds one employer, one staff member (the sender) and N
candidates (default 10,000), each with an application and its conversation, a user token, one
push subscription (``POST /api/v1/push/subscriptions`` as the candidate, with the keys the push
service made for it) and no quiet hours (``PATCH /api/v1/me {"quiet_hours": null}``). Nobody
has a socket open, so the notification ladder pushes every message at once. Then:

1. rate: a warm-up (not counted), then messages sent over HTTP at --rate a second (open loop:
   each POST goes out on schedule whether or not earlier ones were answered) for --seconds,
   each to a conversation of its own; for each, the delay from the send's 201 to its push
   arriving; pushes received against expected (exactly one per message: none lost, none
   twice); CPU per push of the jobchat process (and of the push service, and PostgreSQL's
   backends);
2. throughput: a burst of --burst messages sent as fast as the server takes them
   (--burst-concurrency in flight), each to another conversation, and the pushes a second the
   worker sustains until all have arrived.

The data is seeded once; each of --runs runs starts a fresh server on it. With
--worker-process-runs, more runs follow with the worker as its own ``jobchat worker`` process.
The figures are printed and written to ``bench/results/push-<dialect>.json``. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from bench_email import (
    SEED_CONCURRENCY,
    Api,
    Server,
    backend_cpu,
    backend_delta,
    code_version,
    cpu_seconds,
    gather_limited,
    jobchat,
    latency,
    pct,
    start_server,
)
from bench_email import seed as seed_people
from seeding import reset_database, sqlalchemy_url
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from jobchat.db.engine import Database
from jobchat.jobqueue.models import QueuedJob

ROOT = Path(__file__).resolve().parent.parent
EMAIL_FROM = "Bench Hiring <hiring@bench.example>"
NONE = "\N{EN DASH}"  # a figure a run does not have
# A message's body: what the push shows as "Tess Team: …" (well under the push's 200 chars).
BODY = "Bench {phase} {i}: thanks for applying! Are you free for a call on Tuesday at 10?"


# --- the push service, in its own process -------------------------------------------------------


def _service_main(conn: Connection, count: int) -> None:
    """tests/push_service.py's PushService with ``count`` browsers' subscriptions; answers the
    parent's questions over ``conn`` until told to stop."""
    sys.path.insert(0, str(ROOT))
    from tests.push_service import PushService

    service = PushService().start()
    conn.send([service.subscription(f"c{i}").json() for i in range(count)])
    while True:
        command, arg = conn.recv()
        if command == "count":
            with service.lock:
                conn.send((len(service.received), len(service.attempts), len(service.rejected)))
        elif command == "since":
            with service.lock:
                new = service.received[arg:]
                rejected = [(a.subscription, a.status, a.reason) for a in service.rejected]
            conn.send(([(p.subscription, p.payload.get("message"), p.at) for p in new], rejected))
        else:
            service.stop()
            conn.send(None)
            return


@dataclass
class PushServiceProcess:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    subscriptions: list[dict[str, Any]]
    seen: int = 0  # pushes already collected with since()

    @classmethod
    def start(cls, count: int) -> PushServiceProcess:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_service_main, args=(child, count), daemon=True)
        process.start()
        if not parent.poll(120):
            raise SystemExit("the push service did not start")
        subscriptions: list[dict[str, Any]] = parent.recv()
        return cls(process, parent, subscriptions)

    def ask(self, command: str, arg: int = 0) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()

    def count(self) -> int:
        received, _, _ = self.ask("count")
        return int(received)

    def collect(self) -> tuple[list[tuple[str, int, float]], list[tuple[str, int, str]]]:
        """The pushes that arrived since the last call: (subscription, message id, arrival
        time.time()); and every push refused so far."""
        new, rejected = self.ask("since", self.seen)
        self.seen += len(new)
        return new, rejected

    @property
    def cpu(self) -> float:
        return cpu_seconds(self.process.pid or 0)

    def stop(self) -> None:
        if self.process.is_alive():
            self.ask("stop")
        self.process.join(10)


# --- seeding through the integration API ----------------------------------------------------------


@dataclass
class World:
    staff_token: str
    conversations: list[int]  # conversation i is candidate i's, pushed to subscription c<i>


async def seed(api: Api, subscriptions: list[dict[str, Any]]) -> World:
    """bench_email's world (a recruiter, and candidates each with an application chat and a
    user token), then one push subscription per candidate and their quiet hours off."""
    people = await seed_people(api, len(subscriptions))

    async def subscribe(i: int) -> None:
        token = people.candidate_tokens[i]
        await api.call("POST", "/api/v1/push/subscriptions", subscriptions[i], token)
        # New candidates get the default quiet hours (21:00-08:00): off, so pushes go at once.
        me = await api.call("PATCH", "/api/v1/me", {"quiet_hours": None}, token)
        if me.get("quiet_hours") is not None:
            ext = people.candidates[i]
            raise SystemExit(f"{ext} still has quiet hours: {me['quiet_hours']}")

    await gather_limited(
        [partial(subscribe, i) for i in range(len(subscriptions))], SEED_CONCURRENCY
    )
    return World(people.staff_token, list(people.conversations))


# --- sending ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """One POST of a message: when it went and was answered (time.time()), and the id."""

    index: int
    conversation: int
    started: float
    answered: float = 0.0
    status: int = 0
    message_id: int | None = None


async def post_message(
    client: httpx.AsyncClient, token: str, conversation: int, text: str, sent: Sent
) -> None:
    try:
        response = await client.post(
            f"/api/v1/conversations/{conversation}/messages",
            json={"body": text},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError:
        sent.answered, sent.status = time.time(), -1
        return
    sent.answered, sent.status = time.time(), response.status_code
    if response.status_code == 201:
        sent.message_id = int(response.json()["id"])


async def send_paced(
    base: str,
    token: str,
    conversations: list[int],
    rate: float,
    phase: str,
    max_in_flight: int,
) -> tuple[list[Sent], float]:
    """Open loop: message k goes out at start + k / rate, answered or not (up to max_in_flight
    outstanding: past that the sender has fallen behind, which the achieved rate shows)."""
    sents: list[Sent] = []
    gate = asyncio.Semaphore(max_in_flight)
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    async with httpx.AsyncClient(
        base_url=base, timeout=60, trust_env=False, limits=limits
    ) as client:

        async def one(sent: Sent, text: str) -> None:
            try:
                await post_message(client, token, sent.conversation, text, sent)
            finally:
                gate.release()

        tasks: list[asyncio.Task[None]] = []
        t0 = time.perf_counter()
        for k, conversation in enumerate(conversations):
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            sent = Sent(k, conversation, time.time())
            sents.append(sent)
            tasks.append(asyncio.create_task(one(sent, BODY.format(phase=phase, i=k))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    return sents, elapsed


async def send_burst(
    base: str, token: str, conversations: list[int], concurrency: int, phase: str
) -> tuple[list[Sent], float]:
    """Closed loop: ``concurrency`` senders, each sending its next message when the last was
    answered: as fast as the server takes them."""
    sents = [Sent(k, c, 0.0) for k, c in enumerate(conversations)]
    queue = iter(sents)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, timeout=60, trust_env=False, limits=limits
    ) as client:

        async def sender() -> None:
            for sent in queue:
                sent.started = time.time()
                text = BODY.format(phase=phase, i=sent.index)
                await post_message(client, token, sent.conversation, text, sent)

        t0 = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return sents, elapsed


# --- collecting pushes ----------------------------------------------------------------------------


@dataclass
class Arrivals:
    """Every push the push service took, by message id."""

    by_message: dict[int, list[tuple[str, float]]] = field(default_factory=dict)
    rejected: list[tuple[str, int, str]] = field(default_factory=list)

    def take(self, service: PushServiceProcess) -> None:
        new, self.rejected = service.collect()
        for subscription, message_id, at in new:
            self.by_message.setdefault(int(message_id), []).append((subscription, at))


def wait_for_pushes(
    service: PushServiceProcess, target: int, quiet_seconds: float = 15.0, limit: float = 600.0
) -> float:
    """Wait until the push service has ``target`` pushes in all, or none came for
    ``quiet_seconds``; the seconds waited."""
    t0 = last_change = time.perf_counter()
    last = service.count()
    while last < target:
        time.sleep(0.05)
        now = time.perf_counter()
        count = service.count()
        if count != last:
            last, last_change = count, now
        elif now - last_change > quiet_seconds or now - t0 > limit:
            print(f"  gave up waiting: {count} of {target} pushes", flush=True)
            break
    return time.perf_counter() - t0


def check_pushes(
    sents: list[Sent], arrivals: Arrivals, conversations: dict[int, int]
) -> dict[str, Any]:
    """Exactly one push per message answered 201, to that conversation's candidate."""
    expected = [s for s in sents if s.status == 201 and s.message_id is not None]
    missing = duplicated = wrong = received = 0
    for s in expected:
        got = arrivals.by_message.get(s.message_id or 0, [])
        received += len(got)
        if not got:
            missing += 1
        elif len(got) > 1:
            duplicated += 1
        if any(sub != f"c{conversations[s.conversation]}" for sub, _ in got):
            wrong += 1
    return {
        "sends": len(sents),
        "sends_201": len(expected),
        "sends_failed": Counter(str(s.status) for s in sents if s.status != 201),
        "pushes_expected": len(expected),
        "pushes_received": received,
        "missing": missing,
        "duplicated": duplicated,
        "to_wrong_subscription": wrong,
    }


def delays(sents: list[Sent], arrivals: Arrivals) -> tuple[list[float], list[float]]:
    """Per message with a push: ms from the 201 to the (first) push, and from the POST."""
    after_201: list[float] = []
    after_post: list[float] = []
    for s in sents:
        got = arrivals.by_message.get(s.message_id or 0) if s.status == 201 else None
        if got:
            at = min(a for _, a in got)
            after_201.append(1000 * (at - s.answered))
            after_post.append(1000 * (at - s.started))
    return after_201, after_post


def arrival_times(sents: list[Sent], arrivals: Arrivals) -> list[float]:
    return sorted(
        a
        for s in sents
        if s.status == 201
        for _, a in arrivals.by_message.get(s.message_id or 0, [])
    )


def per_second(times: list[float], start: float) -> list[int]:
    """How many of ``times`` fall in each second from ``start``."""
    if not times:
        return []
    buckets = [0] * (int(max(times) - start) + 1)
    for t in times:
        buckets[max(0, int(t - start))] += 1
    return buckets


# --- a run ----------------------------------------------------------------------------------------


@dataclass
class Meter:
    """CPU seconds of jobchat (the server, and the worker process if there is one), the push
    service and PostgreSQL's backends since start."""

    server: Server
    service: PushServiceProcess
    database: str | None
    worker_pid: int | None = None
    server0: float = 0.0
    worker0: float = 0.0
    service0: float = 0.0
    backends0: dict[int, float] = field(default_factory=dict)

    def start(self) -> Meter:
        self.server0 = cpu_seconds(self.server.process.pid)
        self.worker0 = cpu_seconds(self.worker_pid) if self.worker_pid else 0.0
        self.service0 = self.service.cpu
        self.backends0 = backend_cpu(self.database)
        return self

    def per_push(self, pushes: int) -> dict[str, float]:
        n = max(pushes, 1)
        server = cpu_seconds(self.server.process.pid) - self.server0
        worker = cpu_seconds(self.worker_pid) - self.worker0 if self.worker_pid else 0.0
        out = {
            "server_cpu_ms_per_push": round(1000 * (server + worker) / n, 3),
            "push_service_cpu_ms_per_push": round(1000 * (self.service.cpu - self.service0) / n, 3),
        }
        if self.worker_pid:
            out["of_which_worker_process_cpu_ms_per_push"] = round(1000 * worker / n, 3)
        if self.database:
            out["db_backends_cpu_ms_per_push"] = round(
                1000 * backend_delta(self.backends0, self.database) / n, 3
            )
        return out


def jobs_by_kind_and_status(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        with db.read() as session:
            rows = session.execute(
                select(QueuedJob.kind, QueuedJob.status, func.count()).group_by(
                    QueuedJob.kind, QueuedJob.status
                )
            ).all()
    finally:
        db.dispose()
    return {f"{kind} {status}": int(count) for kind, status, count in rows}


def rate_phase(
    args: argparse.Namespace,
    server: Server,
    service: PushServiceProcess,
    world: World,
    conversations: list[int],
    owner: dict[int, int],
    database: str | None,
    phase: str,
    worker_pid: int | None = None,
) -> dict[str, Any]:
    before = service.count()
    load = os.getloadavg()[0]
    meter = Meter(server, service, database, worker_pid).start()
    sents, elapsed = asyncio.run(
        send_paced(
            server.base, world.staff_token, conversations, args.rate, phase, args.max_in_flight
        )
    )
    answered = sum(1 for s in sents if s.status == 201)
    waited = wait_for_pushes(service, before + answered)
    cpu = meter.per_push(answered)
    arrivals = Arrivals()
    arrivals.take(service)
    after_201, after_post = delays(sents, arrivals)
    post_ms = [1000 * (s.answered - s.started) for s in sents if s.status == 201]
    return {
        "rate_asked": args.rate,
        "rate_achieved": round(len(sents) / elapsed, 1),
        "send_seconds": round(elapsed, 2),
        "waited_after_sends_s": round(waited, 2),
        "post_response": latency(post_ms) if post_ms else {},
        "delay_201_to_push": with_p90(after_201),
        "delay_post_to_push": with_p90(after_post),
        "delay_by_second_p99_ms": by_second_p99(sents, arrivals),
        **check_pushes(sents, arrivals, owner),
        "rejected_by_push_service": len(arrivals.rejected),
        **cpu,
        "loadavg_1m_before": load,
        "loadavg_1m_after": os.getloadavg()[0],
    }


def with_p90(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ms = sorted(values)
    return latency(ms) | {"p90_ms": round(pct(ms, 90), 2)}


def by_second_p99(sents: list[Sent], arrivals: Arrivals) -> list[float]:
    """The p99 delay (201 to push) of the messages sent in each second of the phase."""
    if not sents:
        return []
    start = sents[0].started
    seconds: dict[int, list[float]] = {}
    for s in sents:
        got = arrivals.by_message.get(s.message_id or 0) if s.status == 201 else None
        if got:
            at = min(a for _, a in got)
            seconds.setdefault(int(s.started - start), []).append(1000 * (at - s.answered))
    return [round(pct(sorted(seconds[k]), 99), 1) for k in sorted(seconds)]


def burst_phase(
    args: argparse.Namespace,
    server: Server,
    service: PushServiceProcess,
    world: World,
    conversations: list[int],
    owner: dict[int, int],
    database: str | None,
    worker_pid: int | None = None,
) -> dict[str, Any]:
    before = service.count()
    load = os.getloadavg()[0]
    meter = Meter(server, service, database, worker_pid).start()
    t0 = time.time()
    sents, elapsed = asyncio.run(
        send_burst(server.base, world.staff_token, conversations, args.burst_concurrency, "burst")
    )
    sends_done = time.time()
    answered = sum(1 for s in sents if s.status == 201)
    wait_for_pushes(service, before + answered)
    cpu = meter.per_push(answered)
    arrivals = Arrivals()
    arrivals.take(service)
    times = arrival_times(sents, arrivals)
    n = len(times)
    out: dict[str, Any] = {
        "messages": len(sents),
        "burst_concurrency": args.burst_concurrency,
        "send_seconds": round(elapsed, 2),
        "sends_per_second": round(len(sents) / elapsed, 1),
        **check_pushes(sents, arrivals, owner),
        "rejected_by_push_service": len(arrivals.rejected),
    }
    if n:
        during = sum(1 for t in times if t <= sends_done)
        after = n - during
        last = times[-1]
        # The sustained rate: the middle 80% of the pushes over the time they took to arrive
        # (leaves out the start-up and the last stragglers).
        lo, hi = times[n // 10], times[max(n * 9 // 10 - 1, n // 10)]
        out |= {
            "first_send_to_last_push_s": round(last - t0, 2),
            "pushes_per_second_overall": round(n / (last - t0), 1),
            "pushes_per_second_middle_80pct": round(0.8 * n / (hi - lo), 1) if hi > lo else None,
            "pushes_during_sends": during,
            "pushes_per_second_during_sends": round(during / (sends_done - t0), 1),
            "pushes_per_second_after_sends": (
                round(after / (last - sends_done), 1) if after and last > sends_done else None
            ),
            "backlog_at_end_of_sends": answered - during,
            "pushes_by_second": per_second(times, t0),
            "delay_201_to_push": with_p90(delays(sents, arrivals)[0]),
        }
    return (
        out
        | cpu
        | {
            "loadavg_1m_before": load,
            "loadavg_1m_after": os.getloadavg()[0],
        }
    )


@dataclass
class Bench:
    """What every run shares: the database seeded once, the push service holding the
    browsers' keys, the server's environment."""

    args: argparse.Namespace
    workdir: Path
    url: str
    database: str | None  # PostgreSQL's database name, for its backends' CPU
    service: PushServiceProcess
    env: dict[str, str]
    world: World | None = None


def prepare(args: argparse.Namespace, workdir: Path) -> Bench:
    database_url = args.database or f"sqlite:///{workdir}/push.db"
    url = sqlalchemy_url(database_url)
    reset_database(url)
    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() == "postgresql" else None
    n = args.subscriptions
    t0 = time.perf_counter()
    service = PushServiceProcess.start(n)
    made = time.perf_counter() - t0
    print(f"push service: {n} browsers' keys made in {made:.1f} s", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")} | {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": database_url,
        "JOBCHAT_API_KEY": secrets.token_urlsafe(24),
        "JOBCHAT_SEND_RATE_PER_MINUTE": "1000000",
        "JOBCHAT_EMAIL_FROM": EMAIL_FROM,
        "JOBCHAT_PUSH_ALLOW_INSECURE": "true",
        # Only pushes here: the email clocks (2 minutes by default) would run out mid-run.
        "JOBCHAT_NOTIFY_DELAY_SECONDS": "86400",
        "JOBCHAT_RUN_WORKER": "true",
        "JOBCHAT_WORKER_CONCURRENCY": str(args.concurrency),
    }
    return Bench(args, workdir, url, database, service, env)


def seed_once(bench: Bench) -> dict[str, Any]:
    server = start_server(bench.workdir, bench.env)
    try:
        t0 = time.perf_counter()
        bench.world, requests = asyncio.run(
            seed_over_http(server.base, bench.env["JOBCHAT_API_KEY"], bench.service.subscriptions)
        )
        seconds = round(time.perf_counter() - t0, 1)
    finally:
        server.stop()
    print(
        f"seeded {len(bench.world.conversations)} candidates, each with a conversation and a "
        f"push subscription, in {seconds} s ({requests} requests)",
        flush=True,
    )
    return {"seconds": seconds, "requests": requests}


def start_worker(bench: Bench, number: int) -> tuple[subprocess.Popen[bytes], Path]:
    """``jobchat worker`` on its own (--worker-process), started once its log says so."""
    log = bench.workdir / f"worker-run{number}.log"
    env = bench.env | {"JOBCHAT_WORKER_POLL_SECONDS": str(bench.args.worker_poll)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            jobchat("worker"), env=env, cwd=bench.workdir, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while " started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)
    return process, log


def stop_process(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
    return process.returncode


def worker_log(log: str) -> dict[str, Any]:
    """What the worker said about trouble. It backs off (1 s, doubling up to 30 s) when it
    cannot take or record jobs, e.g. when every place in the write turn's queue is taken by
    requests (which are answered 503 busy then)."""
    return {
        "could not take jobs": log.count("could not take jobs"),
        "failed attempts before taking jobs again": [
            int(n) for n in re.findall(r"takes jobs again \((\d+) failed", log)
        ],
        "could not record job": log.count("could not record job"),
        "job attempt failed": log.count(") attempt "),
    }


def run_once(bench: Bench, number: int, *, worker_process: bool = False) -> dict[str, Any]:
    """A fresh server process (and worker process, with --worker-process) on the seeded
    database: the warm-up, the rate phase and the burst, each message to a conversation of
    its own."""
    args, world, database = bench.args, bench.world, bench.database
    assert world is not None
    warmup = int(args.rate * args.warmup_seconds)
    measured = int(args.rate * args.seconds)
    jobs_before = jobs_by_kind_and_status(bench.url)
    env = bench.env | ({"JOBCHAT_RUN_WORKER": "false"} if worker_process else {})
    server = start_server(bench.workdir, env)
    worker, worker_log_path = start_worker(bench, number) if worker_process else (None, None)
    wpid = worker.pid if worker is not None else None
    service = bench.service
    owner = {conv: i for i, conv in enumerate(world.conversations)}
    convs = world.conversations
    out: dict[str, Any] = {"run": number, "worker": "process" if worker_process else "in-server"}
    try:
        out["warmup"] = rate_phase(
            args, server, service, world, convs[:warmup], owner, database, "warmup", wpid
        )
        print(f"  warm-up: {summary_line(out['warmup'])}", flush=True)
        profile = start_py_spy(args, worker or server.process, bench.workdir, number)
        measured_convs = convs[warmup : warmup + measured]
        out["rate"] = rate_phase(
            args, server, service, world, measured_convs, owner, database, "rate", wpid
        )
        if profile is not None:
            out["rate"]["profile"] = stop_py_spy(profile, args.results_dir, number)
        print(f"  rate:    {summary_line(out['rate'])}", flush=True)
        start = warmup + measured
        out["burst"] = burst_phase(
            args, server, service, world, convs[start : start + args.burst], owner, database, wpid
        )
        b = out["burst"]
        print(
            f"  burst:   {b['messages']} sends at {b['sends_per_second']}/s; "
            f"{b['pushes_received']} of {b['pushes_expected']} pushes, "
            f"{b.get('pushes_per_second_overall')}/s overall, "
            f"{b.get('pushes_per_second_after_sends')}/s after the sends",
            flush=True,
        )
        jobs_after = jobs_by_kind_and_status(bench.url)
        out["jobs"] = {k: v - jobs_before.get(k, 0) for k, v in jobs_after.items()}
    finally:
        code = server.stop()
        log = server.log.read_text(errors="replace")
        if worker is not None and worker_log_path is not None:
            out["worker_exit"] = stop_process(worker)
            log += worker_log_path.read_text(errors="replace")
        out["worker_log"] = worker_log(log)
        if "Traceback" in log or " ERROR " in log:
            dialect = make_url(bench.url).get_backend_name()
            copy = args.results_dir / f"push-{dialect}-run{number}-server.log"
            copy.write_text(log)
            print(f"  the server logged errors: {copy}", flush=True)
            out["server_logged_errors"] = str(copy)
    out["server_exit"] = code
    return out


# --- profiling (optional) -------------------------------------------------------------------------


@dataclass
class Profile:
    process: subprocess.Popen[bytes]
    raw: Path


def start_py_spy(
    args: argparse.Namespace, target: subprocess.Popen[bytes], workdir: Path, number: int
) -> Profile | None:
    """py-spy on the server (or the worker process, with --worker-process) for the rate phase:
    the stacks of the thread holding the GIL (what bounds one Python process), as collapsed
    stacks."""
    if not args.py_spy:
        return None
    raw = workdir / f"py-spy-run{number}.txt"
    process = subprocess.Popen(
        [
            args.py_spy,
            "record",
            "--pid",
            str(target.pid),
            "--rate",
            "200",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(raw),
            "--duration",
            str(int(args.seconds) + 60),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return Profile(process, raw)


def stop_py_spy(profile: Profile, results_dir: Path, number: int) -> dict[str, Any]:
    profile.process.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
    profile.process.wait(60)
    copy = results_dir / f"push-py-spy-run{number}.txt"
    if profile.raw.exists():
        copy.write_text(profile.raw.read_text())
    return summarise_stacks(copy) | {"stacks": str(copy)}


# Parts of the work: a sample counts for the first of these (in this order) its stack has.
PARTS: list[tuple[str, str]] = [
    ("ladder job: decide, in its settle transaction", "Ladder.decide "),
    ("ladder job: who is pushable, presence", "Ladder.run "),
    ("push job: read the payload", "Pusher._prepare "),
    ("push job: encrypt (RFC 8291)", "WebPusher."),
    ("push job: VAPID sign", "Vapid02.sign "),
    ("push job: POST to the push service", "Egress."),
    ("push job: other", "Pusher."),
    ("worker: claim jobs", "Worker._claim "),
    ("worker: settle (mark done, commit)", "Worker._settle "),
    ("worker: other", "jobqueue/worker.py"),
    ("send: POST …/messages (route)", "send_message (jobchat/messages/api.py"),
    ("HTTP stack (uvicorn, middleware, FastAPI)", "RequestResponseCycle.run_asgi "),
]


def summarise_stacks(path: Path) -> dict[str, Any]:
    """Samples per part of the work, from py-spy's collapsed stacks (``frames… count``)."""
    parts: Counter[str] = Counter()
    total = 0
    if path.exists():
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            for label, needle in PARTS:
                if needle in stack:
                    parts[label] += int(count)
                    break
            else:
                parts["other"] += int(count)
    return {
        "samples": total,
        "parts_pct": {k: round(100 * v / total, 1) for k, v in parts.most_common()}
        if total
        else {},
    }


async def seed_over_http(
    base: str, api_key: str, subscriptions: list[dict[str, Any]]
) -> tuple[World, int]:
    async with httpx.AsyncClient(base_url=base, timeout=60, trust_env=False) as client:
        api = Api(client, api_key)
        world = await seed(api, subscriptions)
        return world, api.requests


def summary_line(r: dict[str, Any]) -> str:
    d = r["delay_201_to_push"]
    return (
        f"{r['sends']} sends at {r['rate_achieved']}/s; {r['pushes_received']} of "
        f"{r['pushes_expected']} pushes (missing {r['missing']}, twice {r['duplicated']}); "
        f"201->push p50 {d.get('p50_ms')} p99 {d.get('p99_ms')} max {d.get('max_ms')} ms; "
        f"server {r['server_cpu_ms_per_push']} ms CPU/push"
    )


# --- reporting ------------------------------------------------------------------------------------

# (label, phase, key path) of the figures taken as medians over runs and shown in the table.
FIGURES: list[tuple[str, str, tuple[str, ...]]] = [
    ("sends a second achieved", "rate", ("rate_achieved",)),
    ("POST …/messages p50 ms", "rate", ("post_response", "p50_ms")),
    ("POST …/messages p99 ms", "rate", ("post_response", "p99_ms")),
    ("201 → push p50 ms", "rate", ("delay_201_to_push", "p50_ms")),
    ("201 → push p90 ms", "rate", ("delay_201_to_push", "p90_ms")),
    ("201 → push p99 ms", "rate", ("delay_201_to_push", "p99_ms")),
    ("201 → push max ms", "rate", ("delay_201_to_push", "max_ms")),
    ("pushes expected", "rate", ("pushes_expected",)),
    ("pushes received", "rate", ("pushes_received",)),
    ("missing / twice", "rate", ("missing",)),
    ("jobchat CPU ms per push (send included)", "rate", ("server_cpu_ms_per_push",)),
    ("of which the worker process", "rate", ("of_which_worker_process_cpu_ms_per_push",)),
    ("push service CPU ms per push", "rate", ("push_service_cpu_ms_per_push",)),
    ("PostgreSQL backends CPU ms per push", "rate", ("db_backends_cpu_ms_per_push",)),
    ("burst: sends a second", "burst", ("sends_per_second",)),
    ("burst: pushes a second, first send to last push", "burst", ("pushes_per_second_overall",)),
    ("burst: pushes a second, middle 80%", "burst", ("pushes_per_second_middle_80pct",)),
    ("burst: pushes a second while sends came in", "burst", ("pushes_per_second_during_sends",)),
    ("burst: pushes a second after the sends", "burst", ("pushes_per_second_after_sends",)),
    ("burst: backlog when the sends ended", "burst", ("backlog_at_end_of_sends",)),
    ("burst: first send to last push s", "burst", ("first_send_to_last_push_s",)),
    ("burst: pushes received / expected", "burst", ("pushes_received",)),
    ("burst: jobchat CPU ms per push", "burst", ("server_cpu_ms_per_push",)),
    ("burst: sends answered 503 busy", "burst", ("sends_failed", "503")),
    ("sends answered 503 busy", "rate", ("sends_failed", "503")),
]


def figure(run: dict[str, Any], phase: str, path: tuple[str, ...]) -> Any:
    value: Any = run.get(phase, {})
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def shown(run: dict[str, Any], label: str, phase: str, path: tuple[str, ...]) -> str:
    value = figure(run, phase, path)
    if value is None:
        return NONE
    if label == "missing / twice":
        return f"{value} / {run[phase]['duplicated']}"
    if label.endswith("received / expected"):
        return f"{value} / {run[phase]['pushes_expected']}"
    return str(value)


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, phase, path in FIGURES:
        values = [figure(r, phase, path) for r in runs]
        numbers = [v for v in values if isinstance(v, int | float)]
        if numbers:
            out[label] = round(statistics.median(numbers), 2)
    return out


def print_table(dialect: str, runs: list[dict[str, Any]], mids: dict[str, float]) -> None:
    print(f"\n## {dialect}\n")
    heads = [f"run {i + 1}" for i in range(len(runs))]
    print("| figure | " + " | ".join(heads) + (" | median |" if len(runs) > 1 else " |"))
    print("|---|" + "---:|" * (len(runs) + (1 if len(runs) > 1 else 0)))
    for label, phase, path in FIGURES:
        cells = [shown(r, label, phase, path) for r in runs]
        if all(c == NONE for c in cells):
            continue
        row = f"| {label} | " + " | ".join(cells)
        if len(runs) > 1:
            row += f" | {mids.get(label, NONE)}"
        print(row + " |")
    for i, r in enumerate(runs):
        rate, burst = r["rate"], r["burst"]
        print(
            f"\nrun {i + 1}: load average (1 min) {rate['loadavg_1m_before']:.2f} before the rate "
            f"phase, {burst['loadavg_1m_after']:.2f} after the burst; jobs {r.get('jobs')}; "
            f"worker log {r.get('worker_log')}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--subscriptions", type=int, default=10_000, help="candidates to seed")
    parser.add_argument("--rate", type=float, default=100.0, help="messages a second (phase 1)")
    parser.add_argument("--seconds", type=float, default=30.0, help="phase 1's length")
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--max-in-flight", type=int, default=100)
    parser.add_argument("--burst", type=int, default=5_000, help="messages in phase 2")
    parser.add_argument("--burst-concurrency", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8, help="the worker's concurrency")
    parser.add_argument(
        "--runs", type=int, default=1, help="runs on the data seeded once, a fresh server each"
    )
    parser.add_argument("--py-spy", help="path to py-spy: profile the server's rate phase")
    parser.add_argument(
        "--worker-process-runs",
        type=int,
        default=0,
        help="then as many runs with the jobs worker as its own `jobchat worker` process "
        "(JOBCHAT_RUN_WORKER=false in the server), on the same data",
    )
    parser.add_argument(
        "--worker-poll",
        type=float,
        default=0.1,
        help="the worker process's JOBCHAT_WORKER_POLL_SECONDS (nothing wakes it sooner)",
    )
    parser.add_argument("--out", help="results file name (default: push-<dialect>.json)")
    args = parser.parse_args(argv)

    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    args.results_dir = results_dir
    dialect = "sqlite"
    if args.database:
        dialect = make_url(sqlalchemy_url(args.database)).get_backend_name()
    n = args.subscriptions
    needed = int(args.rate * args.warmup_seconds) + int(args.rate * args.seconds) + args.burst
    if needed > n:
        parser.error(
            f"{needed} messages need as many conversations: raise --subscriptions to {needed} "
            "or lower --seconds or --burst"
        )
    load_before = os.getloadavg()
    print(f"jobchat push benchmark on {dialect}", flush=True)
    series: dict[str, list[dict[str, Any]]] = {"in-server": [], "process": []}
    with tempfile.TemporaryDirectory(prefix="jobchat-push-") as tmp:
        bench = prepare(args, Path(tmp))
        try:
            seeded = seed_once(bench)
            plan = [("in-server", args.runs), ("process", args.worker_process_runs)]
            for worker, count in plan:
                for i in range(count):
                    print(f"run {i + 1} of {count}, worker {worker}", flush=True)
                    result = run_once(bench, i + 1, worker_process=worker == "process")
                    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
                    series[worker].append(result)
        finally:
            bench.service.stop()
    out: dict[str, Any] = {
        "database": dialect,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "args": {k: str(v) for k, v in vars(args).items() if k != "results_dir"},
        "seed": seeded,
    }
    met = True
    for worker, runs in series.items():
        if not runs:
            continue
        mids = medians(runs)
        title = f"{dialect}, the worker {'in the server' if worker == 'in-server' else 'apart'}"
        print_table(title, runs, mids)
        goal_p99 = mids.get("201 → push p99 ms")
        lost = sum(r["rate"]["missing"] + r["burst"]["missing"] for r in runs)
        twice = sum(r["rate"]["duplicated"] + r["burst"]["duplicated"] for r in runs)
        # At the rate asked: a server that refused sends (503) was not pushing for 100 a second.
        refused = sum(r["rate"]["sends"] - r["rate"]["sends_201"] for r in runs)
        ok = goal_p99 is not None and goal_p99 < 1000 and not lost and not twice
        ok = ok and refused <= 0.01 * sum(r["rate"]["sends"] for r in runs)
        met = met and ok
        print(
            f"\ngoal (p99 send-to-push under 1 s at {args.rate:g} messages a second, none lost "
            f"or twice): {'met' if ok else 'MISSED'} (median p99 {goal_p99} ms; lost {lost}, "
            f"twice {twice}; sends not answered 201: {refused})"
        )
        key = "" if worker == "in-server" else "worker_process_"
        out[f"{key}goal"] = {"p99_ms_median": goal_p99, "lost": lost, "twice": twice, "met": ok}
        out[f"{key}medians"] = mids
        out[f"{key}runs"] = runs
    load_after = os.getloadavg()
    print(f"load average before {load_before}, after {load_after}")
    out["machine"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    path = results_dir / (args.out or f"push-{dialect}.json")
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
