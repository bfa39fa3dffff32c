"""What one send costs the server: CPU, wall time and SQL statements per POST …/messages.

Run from the project root:

    .venv/bin/python bench/bench_send.py
    .venv/bin/python bench/bench_send.py --database postgresql://postgres@127.0.0.1:5432/jc_send

Everything runs in this one process: the app (as ``jobchat serve`` builds it, with its hub
following the event table) behind httpx's ASGI transport, a world seeded through the
integration API like bench_stream's (10 staff in every conversation, one candidate each), and
then sends, one at a time, in rounds. Per send it reports this process's CPU time (all threads:
the app, the hub, and the in-process client, whose share stays the same from one version of the
code to the next), the wall time, and the SQL statements the request and the hub executed; on
PostgreSQL also the CPU of the database's backends. CPU time and statement counts are the A/B
signal on a shared machine; wall time is noisy. The figures are printed and written to
``bench/results/send-<dialect>.json``. See bench/README.md.

With ``--concurrency N`` it measures throughput instead: a real ``jobchat serve`` (its worker
in-process, as deployed) in a process of its own, the same world seeded over HTTP, and this
process as the load: N senders at once over keep-alive connections (aiohttp), ``--sends`` in
all after ``--warmup``. Reported: messages a second, the server process's CPU per message
(from /proc, all its threads; on PostgreSQL plus its backends'), latency p50/p99 and any
answer that was not 201 (503 ``busy`` past the write queue counts as failed). Results go to
``bench/results/send-<dialect>-c<N>.json``:

    .venv/bin/python bench/bench_send.py --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from seeding import reset_database, sqlalchemy_url
from sqlalchemy import event
from sqlalchemy.engine import make_url

from jobchat.app import create_app
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.serving import settle_collector

API_KEY = "bench-send-integration-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- counting statements -----------------------------------------------------------------------


@dataclass
class StatementCounter:
    """Statements executed, split into the hub's (its reader thread) and everyone else's."""

    requests: int = 0
    hub: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    record_kinds: bool = False

    def __call__(self, _c: Any, _cur: Any, statement: str, _p: Any, _x: Any, _m: bool) -> None:
        if threading.current_thread().name.startswith("jobchat-stream"):
            self.hub += 1
            return
        self.requests += 1
        if self.record_kinds:
            self.kinds[_label(statement)] += 1


def _label(statement: str) -> str:
    flat = " ".join(statement.split())
    head = flat.split(" ", 1)[0].upper()
    if head in ("INSERT", "UPDATE", "DELETE"):
        return flat[:60]
    if head == "SELECT" and " FROM " in flat:
        return "SELECT … " + flat[flat.find(" FROM ") + 1 :][:70]
    return flat[:60]


class CallCounter:
    """Python function calls made in this process (all threads) while ``on``: a measure of the
    work a send does that, unlike CPU time, other processes on a busy machine do not disturb.
    Installed (``--count-calls``) before the app starts, so that its threads are counted too; it
    slows everything, so CPU and wall times of such a run are not comparable with others."""

    def __init__(self) -> None:
        self.on = False
        self.calls = 0
        # Those made on the thread pool that runs the sync routes (the send's own work, from
        # the access check to the commit), apart: the worker's and the hub's vary with timing.
        self.route_calls = 0
        # ... and those on the event loop's thread (the HTTP layers, the dependencies, the
        # thread hand-offs, and the in-process client, whose share stays the same).
        self.loop_calls = 0

    def __call__(self, _frame: Any, event: str, _arg: Any) -> None:
        if self.on and event == "call":
            self.calls += 1
            name = threading.current_thread().name
            if name.startswith("AnyIO worker"):
                self.route_calls += 1
            elif name == "MainThread":
                self.loop_calls += 1

    def install(self) -> None:
        sys.setprofile(self)
        threading.setprofile(self)


# --- the PostgreSQL backends' CPU ----------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def backend_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``database`` on this machine."""
    if not database:
        return {}
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        if cmdline.startswith("postgres: ") and f" {database} " in cmdline:
            found[int(entry.name)] = _proc_cpu(int(entry.name))
    return found


def backend_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    staff_tokens: list[str]
    candidate_tokens: list[str]
    conversations: list[int]


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, token: str
) -> dict[str, Any]:
    response = await client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code not in (200, 201):
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    data: dict[str, Any] = response.json()
    return data


async def _webhook_receiver() -> tuple[web.AppRunner, str]:
    """An endpoint on loopback that takes every webhook with 204 (nothing checked: the tests
    do that)."""

    async def take(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/{n}", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/hooks"


async def seed(client: httpx.AsyncClient, n_staff: int, n_conversations: int) -> World:
    """One employer, ``n_staff`` staff (an admin and the job's team), and per conversation a
    candidate, an application and its application conversation: every conversation has the
    whole staff and its candidate as members, as in bench_stream."""
    key = API_KEY
    await _call(
        client,
        "PUT",
        "/api/v1/organizations/bench-employer",
        {"name": "B", "kind": "employer"},
        key,
    )
    staff = [f"bench-staff-{i}" for i in range(n_staff)]
    for i, ext in enumerate(staff):
        body = {
            "name": f"Staff {i}",
            "email": f"{ext}@bench.example",
            "organization": "bench-employer",
            "role": "admin" if i == 0 else "member",
        }
        await _call(client, "PUT", f"/api/v1/users/{ext}", body, key)
    job = {"title": "Send bench", "employer": "bench-employer", "team": staff[1:]}
    await _call(client, "PUT", "/api/v1/jobs/bench-job", job, key)
    staff_tokens = [
        (await _call(client, "POST", f"/api/v1/users/{ext}/tokens", None, key))["token"]
        for ext in staff
    ]
    candidate_tokens: list[str] = []
    conversations: list[int] = []
    for i in range(n_conversations):
        ext = f"bench-candidate-{i}"
        body = {"name": f"Candidate {i}", "email": f"{ext}@bench.example"}
        await _call(client, "PUT", f"/api/v1/candidates/{ext}", body, key)
        app = {"job": "bench-job", "candidate": ext, "stage": "interview"}
        await _call(client, "PUT", f"/api/v1/applications/bench-app-{i}", app, key)
        candidate_tokens.append(
            (await _call(client, "POST", f"/api/v1/candidates/{ext}/tokens", None, key))["token"]
        )
        start = {"kind": "application", "application": f"bench-app-{i}"}
        conv = await _call(client, "POST", "/api/v1/conversations", start, staff_tokens[0])
        conversations.append(int(conv["id"]))
    sample = await _call(
        client, "GET", f"/api/v1/conversations/{conversations[0]}", None, staff_tokens[0]
    )
    if len(sample["members"]) != n_staff + 1:
        raise SystemExit(f"expected {n_staff + 1} members, got {sample['members']}")
    return World(staff_tokens, candidate_tokens, conversations)


# --- measuring ---------------------------------------------------------------------------------


def author_of(seq: int, world: World) -> tuple[int, str]:
    """(conversation, author token) of send ``seq``: conversations in turn; three sends in four
    from the staff in turn, the fourth from the conversation's candidate (as bench_stream)."""
    index = seq % len(world.conversations)
    n_staff = len(world.staff_tokens)
    token = world.candidate_tokens[index] if seq % 4 == 3 else world.staff_tokens[seq % n_staff]
    return world.conversations[index], token


@dataclass
class Round:
    sends: int
    cpu_s: float
    wall_s: float
    statements: int
    hub_statements: int
    backend_cpu_s: float
    cpu_ms: list[float]
    wall_ms: list[float]
    python_calls: int = 0
    route_calls: int = 0
    loop_calls: int = 0

    def summary(self) -> dict[str, Any]:
        n = self.sends
        return {
            "sends": n,
            "cpu_ms_per_send": round(1000 * self.cpu_s / n, 3),
            "cpu_ms_p50": round(statistics.median(self.cpu_ms), 3),
            "wall_ms_per_send": round(1000 * self.wall_s / n, 3),
            "wall_ms_p50": round(statistics.median(self.wall_ms), 3),
            "statements_per_send": round(self.statements / n, 2),
            "hub_statements_per_send": round(self.hub_statements / n, 2),
            "db_backend_cpu_ms_per_send": round(1000 * self.backend_cpu_s / n, 3),
            "python_calls_per_send": round(self.python_calls / n),
            "route_thread_calls_per_send": round(self.route_calls / n),
            "loop_thread_calls_per_send": round(self.loop_calls / n),
        }


async def send_round(
    client: httpx.AsyncClient,
    world: World,
    first: int,
    n: int,
    counter: StatementCounter,
    database: str | None,
    path: str = "messages",
    calls: CallCounter | None = None,
) -> Round:
    cpu_ms: list[float] = []
    wall_ms: list[float] = []
    statements0, hub0 = counter.requests, counter.hub
    backends0 = backend_cpu(database)
    calls0 = calls.calls if calls else 0
    route0 = calls.route_calls if calls else 0
    loop0 = calls.loop_calls if calls else 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for seq in range(first, first + n):
        conv, token = author_of(seq, world)
        c, w = time.process_time(), time.perf_counter()
        if path == "messages":
            response = await client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"body": f"jcbench seq={seq} Hello from the send benchmark."},
                headers={"Authorization": f"Bearer {token}"},
            )
            expected = 201
        else:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            expected = 200
        if response.status_code != expected:
            raise SystemExit(f"{path}: {response.status_code} {response.text}")
        cpu_ms.append(1000 * (time.process_time() - c))
        wall_ms.append(1000 * (time.perf_counter() - w))
    cpu1, wall1 = time.process_time(), time.perf_counter()
    # The hub reads each commit's events on its own thread, after the response: let it finish.
    await asyncio.sleep(0.05)
    return Round(
        sends=n,
        cpu_s=cpu1 - cpu0,
        wall_s=wall1 - wall0,
        statements=counter.requests - statements0,
        hub_statements=counter.hub - hub0,
        backend_cpu_s=backend_delta(backends0, backend_cpu(database)),
        cpu_ms=cpu_ms,
        wall_ms=wall_ms,
        python_calls=(calls.calls - calls0) if calls else 0,
        route_calls=(calls.route_calls - route0) if calls else 0,
        loop_calls=(calls.loop_calls - loop0) if calls else 0,
    )


@contextmanager
def py_spy(binary: str | None, out: Path, pid: int | None = None) -> Iterator[None]:
    """Profile this process (or ``pid``) with py-spy (``--gil``: the thread holding the GIL)
    meanwhile."""
    if not binary:
        yield
        return
    target = str(pid if pid is not None else os.getpid())
    command = [binary, "record", "--pid", target, "--gil", "--format", "raw"]
    spy = subprocess.Popen(
        [*command, "--rate", "250", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


# Where a sample's time goes: the innermost frame that matches a marker of BUDGET names its part
# (so a statement counts for the code that issued it, and the ORM's flush and commit for
# themselves); a sample in none of them goes to the innermost library of LAYERS.
BUDGET: tuple[tuple[str, str], ...] = (
    ("SessionTransaction.commit (sqlalchemy", "db: COMMIT (and the flush it runs)"),
    ("Session.flush (sqlalchemy", "db: ORM flush (unit of work)"),
    ("(jobchat/realtime/hub.py", "hub: reading and routing events"),
    ("events_after (jobchat", "hub: reading and routing events"),
    ("jobchat/jobqueue/", "worker: claiming and settling jobs (the ladder job of each send)"),
    ("jobchat/notifications/ladder", "worker: the ladder job's own work"),
    ("(jobchat/webhooks/", "send: webhooks (the event for them)"),
    ("(jobchat/messages/audience.py", "send: anyone to push or text? webhooks enabled?"),
    ("read_event (jobchat", "send: the writer's read-marker event"),
    ("(jobchat/events/", "send: event INSERT (the read marker's with it on PostgreSQL)"),
    ("shift_totals (jobchat", "send: users' badge totals UPDATE … RETURNING"),
    ("expire_loaded_members (jobchat", "send: members UPDATE … RETURNING"),
    ("add_entry (jobchat", "send: search index INSERT (SQLite)"),
    ("(jobchat/notifications/queue", "send: ladder job INSERT"),
    ("_payload (jobchat/messages", "send: event payload (MessageOut)"),
    ("sent_with_key (jobchat", "send: idempotency lookup"),
    ("(jobchat/messages/store.py", "send: message INSERT (and its index entry on PostgreSQL)"),
    ("(jobchat/messages/bump.py", "send: conversation and members UPDATEs (+ users' lock)"),
    ("do_send_message (jobchat", "send: the rest of do_send_message"),
    ("(jobchat/access.py", "access: conversation and member"),
    ("MessageOut.of (jobchat", "route: the answer's MessageOut"),
    ("Caller.write (jobchat", "db: BEGIN, the user's row, the write turn"),
    ("<lambda> (jobchat/auth/deps.py", "db: BEGIN, the user's row, the write turn"),
    ("(jobchat/db/engine.py", "db: BEGIN, the user's row, the write turn"),
    ("(jobchat/db/group_commit.py", "db: group commit (a batch's pieces, each piece's expiry)"),
    ("(jobchat/scheduling/posting.py", "route: post_as / send_as"),
    ("(jobchat/messages/requests.py", "route: post_as / send_as"),
    ("send_message (jobchat/messages/api.py", "route: send_message"),
    ("answer_send (jobchat/messages/api.py", "route: send_message"),
    ("serialize_response (fastapi", "http: response validation and JSON"),
    ("request_body_to_args (fastapi", "http: body validation"),
    ("(jobchat/auth/", "http: auth (require_user, token cache)"),
)
LAYERS: tuple[tuple[str, str], ...] = (
    ("solve_dependencies (fastapi", "http: FastAPI dependencies"),
    ("run_in_threadpool (starlette", "http: thread-pool hop"),
    ("(jobchat/ops/metrics.py", "http: metrics middleware"),
    ("(jobchat/ops/requests.py", "http: request-id middleware"),
    ("(jobchat/http_errors.py", "http: body-limit middleware"),
    ("(jobchat/messages/fast_send.py", "http: the send taken before FastAPI (FastSend)"),
    ("(jobchat/web/security.py", "http: security-headers middleware"),
    ("(jobchat/realtime/api.py", "http: event-stream middleware (pass-through)"),
    ("fastapi/", "http: FastAPI and Starlette (routing, the rest)"),
    ("starlette/", "http: FastAPI and Starlette (routing, the rest)"),
    ("uvicorn/", "http: uvicorn"),
    ("httpx/", "client: the in-process httpx client"),
    ("sqlalchemy/", "db: SQLAlchemy, other"),
    ("anyio/", "event loop and threads (asyncio, anyio)"),
    ("asyncio/", "event loop and threads (asyncio, anyio)"),
    ("threading.py", "event loop and threads (asyncio, anyio)"),
    ("concurrent/futures", "event loop and threads (asyncio, anyio)"),
)


def _part_of(frames: list[str]) -> str:
    for markers in (BUDGET, LAYERS):
        for frame in reversed(frames):
            for marker, part in markers:
                if marker in frame:
                    return part
    return "other"


def profile_summary(path: Path, top: int = 40) -> dict[str, Any]:
    """Where the samples went: the parts of the work (``BUDGET``: each sample to the innermost
    part it is in), and the functions of jobchat and SQLAlchemy most often on the stack
    (inclusive), in % of all samples."""
    functions: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        samples += n
        parts[_part_of(frames)] += n
        # "function (path/to/file.py:line)" -> "function (file.py)", each counted once a sample.
        names = {
            f"{f.split(' (')[0]} ({f.rsplit('/', 1)[-1].rsplit(':', 1)[0]})"
            for f in frames
            if "jobchat/" in f or "sqlalchemy/" in f
        }
        for name in names:
            functions[name] += n

    def share(n: int) -> float:
        return round(100 * n / max(samples, 1), 1)

    return {
        "samples": samples,
        "parts_percent": {name: share(n) for name, n in parts.most_common()},
        "top_inclusive_percent": [(share(n), name) for name, n in functions.most_common(top)],
    }


# --no-timers: nothing the app does on a clock (the jobs worker, the stream's poll, heartbeats,
# presence, the token cache's 5 s), so that what the sends cost does not depend on how long
# they took: bench_pg_instructions.py counts the database's instructions under callgrind,
# where everything runs fifty times slower; bench_instructions.py's sends take the same.
NO_TIMERS: dict[str, Any] = {
    "run_worker": False,
    "stream_poll_seconds": 3600,
    "stream_heartbeat_seconds": 3600,
    "presence_ttl_seconds": 3600,
}


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    database = make_url(url).database if make_url(url).get_backend_name() != "sqlite" else None
    db = Database(url)
    upgrade(db.engine)
    settings = Settings(
        database_url=args.database,
        api_key=API_KEY,
        send_rate_per_minute=10**9,
        webhooks_allow_insecure=bool(args.webhooks),
        _env_file=None,
        **(NO_TIMERS if args.no_timers else {}),
    )
    calls = CallCounter() if args.count_calls else None
    if calls is not None:
        calls.install()
    app = create_app(settings, db=db)
    if args.no_timers:
        app.state.jobchat.tokens.ttl_seconds = 3600.0
    counter = StatementCounter()
    event.listen(db.engine, "before_cursor_execute", counter)
    transport = httpx.ASGITransport(app=app)
    out: dict[str, Any] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        t0 = time.perf_counter()
        world = await seed(client, args.staff, args.conversations)
        out["seed_seconds"] = round(time.perf_counter() - t0, 1)
        print(
            f"seeded {len(world.conversations)} conversations of {args.staff + 1} members "
            f"in {out['seed_seconds']} s",
            flush=True,
        )
        receiver = await _webhook_receiver() if args.webhooks else None
        for i in range(args.webhooks):
            # Subscribed to every send, delivered by the in-process worker to a receiver on
            # loopback (in this process too) that answers 204.
            assert receiver is not None
            hook = {"url": f"{receiver[1]}/{i}", "events": ["message.created"]}
            await _call(client, "POST", "/api/v1/webhooks", hook, API_KEY)
        seq = 0
        warm = await send_round(client, world, seq, args.warmup, counter, database)
        seq += args.warmup
        # As `jobchat serve` does right before serving: everything alive now (here also the
        # warmed-up engine) is frozen, and the collector gets the server's thresholds.
        settle_collector()
        counter.record_kinds = True
        one = await send_round(client, world, seq, 4, counter, database)
        seq += 4
        counter.record_kinds = False
        out["statements_of_one_send"] = {
            k: round(v / 4, 2) for k, v in sorted(counter.kinds.items(), key=lambda kv: -kv[1])
        }
        del one
        rounds: list[Round] = []
        per_round = max(1, args.sends // args.rounds)
        spy_out = args.results_dir / f"send-{make_url(url).get_backend_name()}.pyspy.txt"
        with py_spy(args.py_spy, spy_out):
            for r in range(args.rounds):
                if calls is not None:
                    calls.on = True
                result = await send_round(
                    client, world, seq, per_round, counter, database, calls=calls
                )
                if calls is not None:
                    calls.on = False
                seq += per_round
                rounds.append(result)
                s = result.summary()
                print(
                    f"  round {r + 1}/{args.rounds}: {s['sends']} sends, "
                    f"CPU {s['cpu_ms_per_send']:.2f} ms/send (p50 {s['cpu_ms_p50']:.2f}), "
                    f"wall {s['wall_ms_per_send']:.2f} ms/send, "
                    f"{s['statements_per_send']:.2f} statements/send "
                    f"(+{s['hub_statements_per_send']:.2f} by the hub)"
                    + (
                        f", {s['python_calls_per_send']} Python calls/send "
                        f"({s['route_thread_calls_per_send']} on the route's thread, "
                        f"{s['loop_thread_calls_per_send']} on the loop's)"
                        if calls
                        else ""
                    )
                    + (
                        f", database backends {s['db_backend_cpu_ms_per_send']:.2f} ms/send"
                        if database
                        else ""
                    ),
                    flush=True,
                )
        if calls is not None:
            calls.on = True
        badge = await send_round(
            client, world, seq, args.reads, counter, database, "/api/v1/unread", calls
        )
        if calls is not None:
            calls.on = False
        if args.py_spy and spy_out.exists():
            out["profile"] = {"file": str(spy_out), **profile_summary(spy_out)}
        if receiver is not None:
            await receiver[0].cleanup()
    event.remove(db.engine, "before_cursor_execute", counter)
    db.dispose()
    summaries = [r.summary() for r in rounds]
    cpu = sorted(s["cpu_ms_per_send"] for s in summaries)
    out.update(
        {
            "warmup": warm.summary(),
            "rounds": summaries,
            "send": {
                "sends": sum(r.sends for r in rounds),
                "cpu_ms_per_send_min_round": cpu[0],
                "cpu_ms_per_send_median_round": statistics.median(cpu),
                "cpu_ms_p50": round(statistics.median([x for r in rounds for x in r.cpu_ms]), 3),
                "wall_ms_per_send_median_round": statistics.median(
                    s["wall_ms_per_send"] for s in summaries
                ),
                "statements_per_send": summaries[-1]["statements_per_send"],
                "hub_statements_per_send": summaries[-1]["hub_statements_per_send"],
                "db_backend_cpu_ms_per_send_median_round": statistics.median(
                    s["db_backend_cpu_ms_per_send"] for s in summaries
                ),
                "python_calls_per_send": statistics.median(
                    s["python_calls_per_send"] for s in summaries
                ),
                "route_thread_calls_per_send": statistics.median(
                    s["route_thread_calls_per_send"] for s in summaries
                ),
                "loop_thread_calls_per_send": statistics.median(
                    s["loop_thread_calls_per_send"] for s in summaries
                ),
            },
            "badge_get_unread": badge.summary(),
        }
    )
    return out


# --- throughput against a real server ------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request of a load: what to call, with what JSON body, as whom."""

    method: str
    path: str
    body: Any
    token: str


def message_request(seq: int, world: World) -> Request:
    """Send ``seq`` of the load: POST …/messages by its author (author_of)."""
    conv, token = author_of(seq, world)
    body = {"body": f"jcbench seq={seq} Hello from the send benchmark."}
    return Request("POST", f"/api/v1/conversations/{conv}/messages", body, token)


async def load_requests(
    base: str, request_of: Callable[[int], Request], first: int, n: int, concurrency: int
) -> tuple[float, list[float], Counter[int]]:
    """Requests ``first`` .. ``first + n - 1`` (``request_of`` builds each) from
    ``concurrency`` clients at once, each on its keep-alive connection: (wall seconds,
    latencies in ms, answers by status)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    next_seq = first
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector) as http:

        async def sender() -> None:
            nonlocal next_seq
            while next_seq < first + n:
                seq = next_seq
                next_seq += 1
                request = request_of(seq)
                started = time.perf_counter()
                async with http.request(
                    request.method,
                    request.path,
                    json=request.body,
                    headers={"Authorization": f"Bearer {request.token}"},
                ) as response:
                    await response.read()
                    statuses[response.status] += 1
                latencies.append(1000 * (time.perf_counter() - started))

        t0 = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies, statuses


async def _load(
    base: str, world: World, first: int, n: int, concurrency: int
) -> tuple[float, list[float], Counter[int]]:
    """``n`` sends from ``concurrency`` senders at once: (wall seconds, latencies in ms,
    answers by status)."""
    return await load_requests(base, lambda seq: message_request(seq, world), first, n, concurrency)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def serve_env(database_url: str) -> dict[str, str]:
    """The environment ``jobchat serve`` runs in for a throughput run: this one's without its
    JOBCHAT_ settings, plus the database, the integration key, no send rate limit, and logging
    at WARNING."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    return env | {
        "JOBCHAT_DATABASE_URL": database_url,
        "JOBCHAT_API_KEY": API_KEY,
        "JOBCHAT_SEND_RATE_PER_MINUTE": str(10**9),
        "JOBCHAT_LOG_LEVEL": "WARNING",
    }


async def run_concurrent(args: argparse.Namespace, url: str, workdir: Path) -> dict[str, Any]:
    from bench_stream import cpu_seconds, start_server

    database = make_url(url).database if make_url(url).get_backend_name() != "sqlite" else None
    server = start_server(workdir, serve_env(args.database), nofile=4096, name="send-server")
    out: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
            world = await seed(client, args.staff, args.conversations)
        print(f"seeded {len(world.conversations)} conversations through {server.base}", flush=True)
        await _load(server.base, world, 0, args.warmup, args.concurrency)
        rounds = []
        seq = args.warmup
        per_round = max(1, args.sends // args.rounds)
        spy_out = workdir / "py-spy-server.txt"
        spying = py_spy(args.py_spy, spy_out, pid=server.pid)
        spying.__enter__()
        for r in range(args.rounds):
            cpu0, backends0 = cpu_seconds(server.pid), backend_cpu(database)
            wall, latencies, statuses = await _load(
                server.base, world, seq, per_round, args.concurrency
            )
            seq += per_round
            cpu = cpu_seconds(server.pid) - cpu0
            backends = backend_delta(backends0, backend_cpu(database))
            ok = statuses.get(201, 0)
            result = {
                "sends": per_round,
                "ok": ok,
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "messages_per_second": round(ok / wall, 1),
                "server_cpu_ms_per_message": round(1000 * cpu / max(ok, 1), 3),
                "server_cpu_cores": round(cpu / wall, 2),
                "db_backend_cpu_ms_per_message": round(1000 * backends / max(ok, 1), 3),
                "latency_ms_p50": round(_percentile(latencies, 0.5), 1),
                "latency_ms_p99": round(_percentile(latencies, 0.99), 1),
            }
            rounds.append(result)
            print(
                f"  round {r + 1}/{args.rounds}: {result['messages_per_second']} msg/s, "
                f"server CPU {result['server_cpu_ms_per_message']:.2f} ms/msg "
                f"({result['server_cpu_cores']} cores)"
                + (
                    f" + backends {result['db_backend_cpu_ms_per_message']:.2f} ms"
                    if database
                    else ""
                )
                + f", p50 {result['latency_ms_p50']} ms, p99 {result['latency_ms_p99']} ms, "
                f"answers {result['statuses']}",
                flush=True,
            )
        spying.__exit__(None, None, None)
        if args.py_spy and spy_out.exists():
            kept = args.results_dir / f"py-spy-serve-{make_url(url).get_backend_name()}.txt"
            kept.write_text(spy_out.read_text())
            out["profile"] = {"file": str(kept), **profile_summary(kept)}
        out["rounds"] = rounds
        out["median"] = {
            key: round(statistics.median(r[key] for r in rounds), 3)
            for key in (
                "messages_per_second",
                "server_cpu_ms_per_message",
                "db_backend_cpu_ms_per_message",
                "latency_ms_p50",
                "latency_ms_p99",
            )
        }
        problems = server.log_problems()
        if problems:
            out["server_log_problems"] = problems[:20]
    finally:
        server.stop()
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


def _main_concurrent(
    args: argparse.Namespace, url: str, dialect: str, workdir: Path, load_before: Any
) -> int:
    results = asyncio.run(run_concurrent(args, url, workdir))
    median = results["median"]
    print(
        f"\n## {dialect}, c={args.concurrency}: {median['messages_per_second']} messages/s, "
        f"server CPU {median['server_cpu_ms_per_message']:.2f} ms/message"
        + (
            f" + PostgreSQL backends {median['db_backend_cpu_ms_per_message']:.2f} ms"
            if dialect == "postgresql"
            else ""
        )
        + f", p50 {median['latency_ms_p50']} ms, p99 {median['latency_ms_p99']} ms (median round)"
    )
    for problem in results.get("server_log_problems", []):
        print(f"  server log: {problem}")
    if "profile" in results:
        profile = results["profile"]
        per_message = median["server_cpu_ms_per_message"]
        print(f"\nprofile of jobchat serve ({profile['file']}: {profile['samples']} samples)")
        for name, share in profile["parts_percent"].items():
            print(f"  {share:5.1f}%  {per_message * share / 100:5.2f} ms  {name}")
        print("functions most often on the stack:")
        for share, name in profile["top_inclusive_percent"][:25]:
            print(f"  {share:5.1f}%  {name}")
    path = args.results_dir / (args.out or f"send-{dialect}-c{args.concurrency}.json")
    write_results(path, dialect, args, load_before, results)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--sends", type=int, default=2000, help="sends measured, in all rounds")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--staff", type=int, default=10, help="staff in every conversation")
    parser.add_argument(
        "--conversations",
        type=int,
        default=101,
        help="(101: each conversation hears from every staff member and its candidate in turn)",
    )
    parser.add_argument("--reads", type=int, default=500, help="GET /api/v1/unread measured")
    parser.add_argument(
        "--py-spy", metavar="PATH", help="a py-spy binary: profile the measured sends (--gil)"
    )
    parser.add_argument(
        "--count-calls",
        action="store_true",
        help="count Python function calls per send (slows the run: its times do not compare)",
    )
    parser.add_argument(
        "--webhooks", type=int, default=0, help="webhooks subscribed to message.created"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="throughput instead: N senders at once against a real jobchat serve",
    )
    parser.add_argument(
        "--no-timers",
        action="store_true",
        help="no jobs worker, stream poll, heartbeats or token expiry (for instruction counts)",
    )
    parser.add_argument("--out", help="results file name (default: send-<dialect>.json)")
    args = parser.parse_args(argv)

    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    args.results_dir = results_dir
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jobchat-send-") as tmp:
        if args.database is None:
            args.database = f"sqlite:///{tmp}/send.db"
        url = sqlalchemy_url(args.database)
        reset_database(url)
        dialect = make_url(url).get_backend_name()
        print(f"jobchat send benchmark on {dialect}", flush=True)
        if args.concurrency:
            return _main_concurrent(args, url, dialect, Path(tmp), load_before)
        results = asyncio.run(run(args, url))
    send = results["send"]
    print(f"\n## {dialect}: {send['sends']} sends, {args.staff + 1} members a conversation\n")
    print(
        f"CPU per send (this process, all threads): {send['cpu_ms_per_send_median_round']:.2f} ms "
        f"(median round; best round {send['cpu_ms_per_send_min_round']:.2f}, "
        f"p50 of sends {send['cpu_ms_p50']:.2f})"
    )
    print(f"wall per send: {send['wall_ms_per_send_median_round']:.2f} ms (median round)")
    print(
        f"SQL statements per send: {send['statements_per_send']:.2f} by the request, "
        f"{send['hub_statements_per_send']:.2f} by the hub"
    )
    if dialect == "postgresql":
        print(
            "PostgreSQL backends' CPU per send: "
            f"{send['db_backend_cpu_ms_per_send_median_round']:.2f} ms"
        )
    if args.count_calls:
        print(
            f"Python function calls per send: {send['python_calls_per_send']} "
            f"({send['route_thread_calls_per_send']} on the route's thread pool, "
            f"{send['loop_thread_calls_per_send']} on the event loop's thread with the client)"
        )
    badge = results["badge_get_unread"]
    print(
        f"GET /api/v1/unread: CPU {badge['cpu_ms_per_send']:.2f} ms, "
        f"{badge['statements_per_send']:.2f} statements"
        + (f", {badge['python_calls_per_send']} Python calls" if args.count_calls else "")
    )
    print("\nthe statements of one send:")
    for label, count in results["statements_of_one_send"].items():
        print(f"  {count:5.2f}  {label}")
    if "profile" in results:
        profile = results["profile"]
        print(f"\nprofile ({profile['file']}: {profile['samples']} samples, py-spy --gil)")
        per_send = send["cpu_ms_per_send_median_round"]
        print(f"the budget: CPU per send ({per_send:.2f} ms) shared out by the samples")
        for name, share in profile["parts_percent"].items():
            print(f"  {share:5.1f}%  {per_send * share / 100:5.2f} ms  {name}")
        print("functions most often on the stack:")
        for share, name in profile["top_inclusive_percent"]:
            print(f"  {share:5.1f}%  {name}")
    path = results_dir / (args.out or f"send-{dialect}.json")
    write_results(path, dialect, args, load_before, results)
    return 0


def write_results(
    path: Path,
    dialect: str,
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
    results: dict[str, Any],
) -> None:
    """The figures, with what was run and on what machine, as JSON at ``path``."""
    out = {
        "database": dialect,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "args": {k: v for k, v in vars(args).items() if k != "results_dir"},
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        **results,
    }
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    raise SystemExit(main())
