"""Real-time stream under load: 1,000 WebSockets on one ``jobchat serve``, send-to-receive latency.

Run from the project root:

    .venv/bin/python bench/bench_stream.py
    .venv/bin/python bench/bench_stream.py --database postgresql://postgres@127.0.0.1:5432/jc_bench
    .venv/bin/python bench/bench_stream.py --redis redis://127.0.0.1:6379/0
    .venv/bin/python bench/bench_stream.py --processes 2 --redis redis://127.0.0.1:6379/0 \
        --database postgresql://postgres@127.0.0.1:5432/jc_bench

It starts a real ``jobchat serve`` (by default on a fresh SQLite file in a temporary directory;
with ``--processes N``, N of them on one database and Redis, the sockets and sends spread over
them in turn), seeds it through the integration API (one employer, one job with a small team, a
candidate with an application and an application conversation per remaining socket), connects
one WebSocket per user from this process, and measures the server's memory per idle socket, the
latency from just before a POST /messages to each receiving socket's frame at a fixed send rate,
and a ramp of send rates up to the first one whose p99 passes 100 ms. The sends come from a
second process (httpx); the server, this process and the sender share the machine's cores. The
figures are printed and written to ``bench/results/``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

# The goal this benchmark checks (2 cores, 1,000 sockets, 100 messages a second).
GOAL_P99_MS = 50.0
# The ramp goes on while p99 stays at or under this.
RAMP_P99_MS = 100.0
# A step whose sends start at less than this share of the asked rate could not be kept up with.
KEEP_UP = 0.9
DEFAULT_RAMP = "25,50,75,85,95,110,125,150,200,300,400,600,800"
# Every benchmark message body starts with this; the frame's arrival is matched on it.
MARK = re.compile(r"jcbench seq=(\d+) t=(\d+)")
# The event-loop probe pings this often (the server closes a socket sending over 20 frames/s).
PROBE_SECONDS = 0.1
FRAME_TYPE = re.compile(r'"type":"([a-z._]+)"')
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- reading /proc -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return total - idle, total


def pressure_ms(resource_name: str) -> float:
    """Total time some task stalled on cpu or io (Linux PSI), in ms; 0 where unavailable."""
    try:
        first = Path(f"/proc/pressure/{resource_name}").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    return int(first.rsplit("total=", 1)[1]) / 1000


# TCP counters of the machine's network namespace, read per step: a frame or a POST held up by
# a lost packet on loopback (a SYN retried after 1 s then 2 s more, a segment after 200 ms and
# doubling) shows here, where the event loop's ping would not. Machine-wide, so other
# processes' connections count too; zeros are conclusive, anything else a lead.
TCP_COUNTERS = {
    "listen_overflows": "TcpExt.ListenOverflows",
    "listen_drops": "TcpExt.ListenDrops",
    "syn_retransmits": "TcpExt.TCPSynRetrans",
    "retransmit_timeouts": "TcpExt.TCPTimeouts",
    "retransmitted_segments": "Tcp.RetransSegs",
    "tail_loss_probes": "TcpExt.TCPLossProbes",
}


def tcp_counters() -> dict[str, int]:
    """TCP_COUNTERS from /proc/net/netstat and /proc/net/snmp, and the packets the kernel
    dropped from its per-CPU input queues (/proc/net/softnet_stat, where loopback traffic
    waits when it comes faster than it is taken)."""
    found: dict[str, int] = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            prefix = head.split(":", 1)[0]
            for key, value in zip(head.split()[1:], values.split()[1:], strict=False):
                found[f"{prefix}.{key}"] = int(value)
    out = {name: found.get(key, 0) for name, key in TCP_COUNTERS.items()}
    try:
        rows = Path("/proc/net/softnet_stat").read_text().splitlines()
        out["softnet_dropped"] = sum(int(row.split()[1], 16) for row in rows)
    except (OSError, IndexError, ValueError):
        out["softnet_dropped"] = 0
    return out


def processes_matching(test: Any) -> dict[int, float]:
    """CPU seconds of every process whose command line passes ``test``."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        if test(cmdline):
            found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


@dataclass
class CpuSnapshot:
    at: float
    server: float
    me: float
    machine: tuple[int, int]
    postgres: dict[int, float]
    redis: dict[int, float]
    io_stall_ms: float
    cpu_stall_ms: float
    tcp: dict[str, int] = field(default_factory=dict)


# --- statistics --------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def latency_summary(ns: list[int]) -> dict[str, Any]:
    if not ns:
        return {"n": 0}
    ms = sorted(v / 1e6 for v in ns)
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p95_ms": round(pct(ms, 95), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
    }


# --- the server --------------------------------------------------------------------------------


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Raise this process's open-file limit to ``wanted`` (the hard limit too, if allowed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft, hard
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted, wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the work tree differed from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return {}
    return {"commit": commit, "modified": sorted(line[3:] for line in changed if line.strip())}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prepare_postgres(url: str) -> str:
    """Create the database if missing and empty its public schema; returns its name.

    bench_inbox's reset does it (and refuses test, postgres and the templates); it is imported
    here, not at the top, so the socket processes do not load jobchat and SQLAlchemy.
    """
    from seeding import reset_database, sqlalchemy_url
    from sqlalchemy.engine import make_url

    resolved = sqlalchemy_url(url)
    reset_database(resolved)
    return str(make_url(resolved).database)


def jobchat_command() -> list[str]:
    script = Path(sys.executable).with_name("jobchat")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobchat"]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if "Traceback" in line or _LOG_PROBLEM.search(line)
        ]

    def stop(self) -> int | None:
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=20)


@dataclass
class Servers:
    """The server processes under test (one, or several sharing a database and Redis): their
    CPU and memory are summed; sockets and sends are spread over them in turn."""

    members: list[Server]

    @property
    def base(self) -> str:
        return self.members[0].base

    @property
    def bases(self) -> list[str]:
        return [server.base for server in self.members]

    @property
    def pids(self) -> list[int]:
        return [server.pid for server in self.members]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss(self, key: str = "VmRSS") -> int:
        return sum(rss_kib(pid, key) for pid in self.pids)


def start_server(
    workdir: Path,
    env: dict[str, str],
    nofile: int,
    name: str = "server",
    command: list[str] | None = None,
) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**env, "JOBCHAT_PUBLIC_URL": base}
    log = workdir / f"{name}.log"

    def limits() -> None:  # runs in the child before exec: the server gets the raised limit
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        try:  # raising the hard limit needs privileges; without them, up to the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, max(nofile, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))

    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(command or jobchat_command()), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,  # so that no .env of the caller's working directory is read
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limits,
        )
    server = Server(process, base, log, env)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            httpx.get(f"{base}/openapi.json", timeout=2)
            return server
        except httpx.TransportError:
            if time.monotonic() > deadline:
                server.stop()
                raise SystemExit(
                    f"the server did not answer in time:\n{server.log_tail()}"
                ) from None
            time.sleep(0.2)


# --- seeding through the integration API -------------------------------------------------------


@dataclass
class World:
    """Sockets 0..staff-1 are the staff (0 is the employer admin who starts the conversations);
    socket staff+i is candidate i, the one candidate of conversations[i]."""

    staff_tokens: list[str]
    candidate_tokens: list[str]
    conversations: list[int]
    seconds: float
    requests: int

    @property
    def tokens(self) -> list[str]:
        return self.staff_tokens + self.candidate_tokens

    @property
    def fanout(self) -> int:
        return len(self.staff_tokens) + 1


async def seed(base: str, api_key: str, n_staff: int, n_candidates: int) -> World:
    started = time.perf_counter()
    requests = 0
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def call(method: str, path: str, body: dict[str, Any] | None, token: str) -> Any:
            nonlocal requests
            requests += 1
            headers = {"Authorization": f"Bearer {token}"}
            response = await client.request(method, path, json=body, headers=headers)
            if response.status_code not in (200, 201):
                raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
            return response.json()

        async def in_parallel(calls: list[Any], width: int = 8) -> list[Any]:
            slots = asyncio.Semaphore(width)

            async def one(c: Any) -> Any:
                async with slots:
                    return await c

            return list(await asyncio.gather(*(one(c) for c in calls)))

        key = api_key
        await call(
            "PUT",
            "/api/v1/organizations/bench-employer",
            {"name": "Bench", "kind": "employer"},
            key,
        )
        staff = [f"bench-staff-{i}" for i in range(n_staff)]
        await in_parallel(
            [
                call(
                    "PUT",
                    f"/api/v1/users/{ext}",
                    {
                        "name": f"Staff {i}",
                        "email": f"{ext}@bench.example",
                        "organization": "bench-employer",
                        "role": "admin" if i == 0 else "member",
                    },
                    key,
                )
                for i, ext in enumerate(staff)
            ]
        )
        # The admin sees every job of the employer; the others are the job's hiring team.
        job = {"title": "Stream bench", "employer": "bench-employer", "team": staff[1:]}
        await call("PUT", "/api/v1/jobs/bench-job", job, key)
        candidates = [f"bench-candidate-{i}" for i in range(n_candidates)]
        await in_parallel(
            [
                call(
                    "PUT",
                    f"/api/v1/candidates/{ext}",
                    {"name": f"Candidate {i}", "email": f"{ext}@bench.example"},
                    key,
                )
                for i, ext in enumerate(candidates)
            ]
        )
        await in_parallel(
            [
                call(
                    "PUT",
                    f"/api/v1/applications/bench-app-{i}",
                    {"job": "bench-job", "candidate": ext, "stage": "interview"},
                    key,
                )
                for i, ext in enumerate(candidates)
            ]
        )
        staff_tokens = [
            r["token"]
            for r in await in_parallel(
                [call("POST", f"/api/v1/users/{ext}/tokens", None, key) for ext in staff]
            )
        ]
        candidate_tokens = [
            r["token"]
            for r in await in_parallel(
                [call("POST", f"/api/v1/candidates/{ext}/tokens", None, key) for ext in candidates]
            )
        ]
        conversations = [
            int(r["id"])
            for r in await in_parallel(
                [
                    call(
                        "POST",
                        "/api/v1/conversations",
                        {"kind": "application", "application": f"bench-app-{i}"},
                        staff_tokens[0],
                    )
                    for i in range(n_candidates)
                ]
            )
        ]
        # Every conversation has the whole staff and its candidate as members.
        sample = await call(
            "GET", f"/api/v1/conversations/{conversations[0]}", None, staff_tokens[0]
        )
        if len(sample["members"]) != n_staff + 1:
            raise SystemExit(f"expected {n_staff + 1} members, got {sample['members']}")
    return World(
        staff_tokens, candidate_tokens, conversations, time.perf_counter() - started, requests
    )


# --- the sender (a process of its own) ---------------------------------------------------------


def author_of(seq: int, n_staff: int, n_conversations: int) -> tuple[int, int]:
    """(conversation index, author socket) of message ``seq``: conversations in turn; three
    messages in four from the staff in turn, the fourth from the conversation's candidate."""
    conv = seq % n_conversations
    author = n_staff + conv if seq % 4 == 3 else seq % n_staff
    return conv, author


def run_sender(plan: dict[str, Any]) -> dict[str, Any]:
    """Entry point of the sender process: send ``rate`` messages a second for ``seconds``."""
    return asyncio.run(_send(plan))


async def _send(plan: dict[str, Any]) -> dict[str, Any]:
    cpu0 = os.times()
    rate: float = plan["rate"]
    n = round(rate * plan["seconds"])
    first: int = plan["first_seq"]
    tokens: list[str] = plan["tokens"]
    conversations: list[int] = plan["conversations"]
    n_staff: int = plan["staff"]
    width: int = plan["max_in_flight"]
    results: list[tuple[int, int, int, int, int]] = []
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    timeout = httpx.Timeout(60.0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout)
            )
            for base in plan["bases"]
        ]
        slots = asyncio.Semaphore(width)
        waited_for_slot = 0
        errors: Counter[str] = Counter()

        async def one(seq: int, due: int) -> None:
            conv, author = author_of(seq, n_staff, len(conversations))
            client = clients[seq % len(clients)]
            status = 0
            t = time.perf_counter_ns()  # just before the POST; the body carries it
            try:
                response = await client.post(
                    f"/api/v1/conversations/{conversations[conv]}/messages",
                    json={"body": f"jcbench seq={seq} t={t} Hello from the stream benchmark."},
                    headers={"Authorization": f"Bearer {tokens[author]}"},
                )
                status = response.status_code
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                status = 0
            finally:
                slots.release()
            results.append((seq, due, t, time.perf_counter_ns(), status))

        interval = 1e9 / rate
        start = time.perf_counter_ns() + 20_000_000
        tasks: list[asyncio.Task[None]] = []
        for i in range(n):
            due = start + round(i * interval)
            delay = due - time.perf_counter_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            if slots.locked():
                waited_for_slot += 1
            await slots.acquire()
            tasks.append(asyncio.create_task(one(first + i, due)))
        await asyncio.gather(*tasks)
    cpu1 = os.times()
    return {
        "start_ns": start,
        "results": results,
        "waited_for_slot": waited_for_slot,
        "errors": dict(errors),
        "cpu_seconds": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
    }


def _warm_sender() -> int:
    return os.getpid()


# --- the sockets -------------------------------------------------------------------------------


@dataclass
class Receiver:
    """One WebSocket per user, each read by its own task, recording every benchmark frame."""

    uris: list[str]  # socket k connects to uris[k % len(uris)]
    tokens: list[str]
    compression: str | None
    sockets: list[ClientConnection | None] = field(default_factory=list)
    receipts: list[tuple[int, int, int]] = field(default_factory=list)  # (seq, socket, ns)
    frame_types: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    ready_ms: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: bool = False
    window: tuple[int, int] = (0, 0)
    # The event-loop probe: one socket pings every PROBE_SECONDS; (when sent, round trip) in ns.
    probe_socket: int = -1
    pings: deque[int] = field(default_factory=deque)
    pongs: list[tuple[int, int]] = field(default_factory=list)
    in_window: int = 0

    async def open_all(self, concurrency: int) -> float:
        self.sockets = [None] * len(self.tokens)
        slots = asyncio.Semaphore(concurrency)
        ready = [asyncio.Event() for _ in self.tokens]
        started = time.perf_counter()
        for k in range(len(self.tokens)):
            self.tasks.append(asyncio.create_task(self._socket(k, slots, ready[k])))
        await asyncio.gather(*(event.wait() for event in ready))
        if self.probe_socket >= 0:
            self.tasks.append(asyncio.create_task(self._probe(self.probe_socket)))
        return time.perf_counter() - started

    async def _socket(self, k: int, slots: asyncio.Semaphore, ready: asyncio.Event) -> None:
        try:
            async with slots:
                t0 = time.perf_counter()
                ws = await connect(
                    f"{self.uris[k % len(self.uris)]}?token={quote(self.tokens[k])}",
                    compression=self.compression,
                    proxy=None,
                    open_timeout=120,
                    ping_interval=None,  # as a browser: the server's pings keep it alive
                    max_queue=None,  # read everything at once; our task is the consumer
                )
                self.sockets[k] = ws
                while True:
                    first = await asyncio.wait_for(ws.recv(), 120)
                    kind = _frame_type(first)
                    self.frame_types[kind] += 1
                    if kind == "ready":
                        break
                self.ready_ms.append((time.perf_counter() - t0) * 1000)
        except (OSError, TimeoutError, InvalidStatus, ConnectionClosed) as exc:
            self.failed.append(f"socket {k}: {exc!r}")
            return
        finally:
            ready.set()
        await self._follow(k, ws)

    async def _follow(self, k: int, ws: ClientConnection) -> None:
        receipts = self.receipts
        types = self.frame_types
        try:
            async for raw in ws:
                now = time.perf_counter_ns()
                if isinstance(raw, bytes):
                    types["binary"] += 1
                    continue
                kind = _frame_type(raw)
                types[kind] += 1
                if kind == "pong" and k == self.probe_socket and self.pings:
                    sent = self.pings.popleft()
                    self.pongs.append((sent, now - sent))
                elif kind == "message.created":
                    found = MARK.search(raw)
                    if found is not None:
                        seq = int(found[1])
                        receipts.append((seq, k, now - int(found[2])))
                        if self.window[0] <= seq < self.window[1]:
                            self.in_window += 1
        except ConnectionClosed:
            pass
        if not self.stopping:
            self.closes[f"{ws.close_code} {ws.close_reason}"] += 1

    def watch(self, lo: int, hi: int) -> None:
        """Count the frames of messages lo..hi-1 from now on (``in_window``)."""
        self.window = (lo, hi)
        self.in_window = sum(1 for seq, _, _ in self.receipts if lo <= seq < hi)

    async def _probe(self, k: int) -> None:
        """Ping the server's event loop: a pong is answered on the loop itself, so its round
        trip shows how long the loop was busy with something else (a stall)."""
        ws = self.sockets[k]
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            while not self.stopping:
                self.pings.append(time.perf_counter_ns())
                await ws.send('{"type":"ping"}')
                await asyncio.sleep(PROBE_SECONDS)

    def probe_between(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        return latency_summary([rtt for sent, rtt in self.pongs if start_ns <= sent < end_ns])

    async def close_all(self) -> None:
        self.stopping = True
        await asyncio.gather(
            *(ws.close() for ws in self.sockets if ws is not None), return_exceptions=True
        )
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def open_count(self) -> int:
        return sum(1 for ws in self.sockets if ws is not None and ws.close_code is None)


def _frame_type(raw: str | bytes) -> str:
    if isinstance(raw, bytes):
        return "binary"
    found = FRAME_TYPE.search(raw, 0, 200)
    return found[1] if found else "?"


# --- one run of sends --------------------------------------------------------------------------


# A log line of these levels, in either of the server's formats (text or JSON), or uvicorn's.
_LOG_PROBLEM = re.compile(
    r'^(?:\S+ ){0,2}(ERROR|WARNING|CRITICAL)\b|"level": "(ERROR|WARNING|CRITICAL)"'
)
# jobchat_gc_pause_seconds_{bucket,count,sum} lines of /metrics.
_GC_LINE = re.compile(
    r'jobchat_gc_pause_seconds_(bucket|count|sum)\{generation="(\d)"(?:,le="([^"]+)")?\} (\S+)'
)


@dataclass
class Bench:
    args: argparse.Namespace
    servers: Servers
    world: World
    receiver: Receiver
    pool: ProcessPoolExecutor
    sender_pid: int
    pg_database: str | None
    redis: bool
    next_seq: int = 0
    profile_file: Path | None = None
    api_key: str = ""

    async def gc_pauses(self) -> dict[str, list[float]]:
        """The servers' garbage-collection pauses so far (``/metrics``), summed, by generation:
        [collections, seconds, collections over 0.1 s]."""
        totals: dict[str, list[float]] = {g: [0, 0.0, 0] for g in ("0", "1", "2")}
        async with httpx.AsyncClient(timeout=30) as client:
            for base in self.servers.bases:
                answer = await client.get(
                    f"{base}/metrics", headers={"Authorization": f"Bearer {self.api_key}"}
                )
                answer.raise_for_status()
                for line in answer.text.splitlines():
                    found = _GC_LINE.match(line)
                    if found is None:
                        continue
                    kind, generation, le, number = found.groups()
                    row = totals[generation]
                    if kind == "count":
                        row[0] += float(number)
                    elif kind == "sum":
                        row[1] += float(number)
                    elif le == "0.1":
                        row[2] -= float(number)  # under 0.1 s: taken off the count below
        for row in totals.values():
            row[2] += row[0]
        return totals

    def snapshot(self) -> CpuSnapshot:
        pg: dict[int, float] = {}
        if self.pg_database:
            name = f" {self.pg_database} "
            pg = processes_matching(lambda c: c.startswith("postgres: ") and name in c)
        rd = processes_matching(lambda c: c.startswith("redis-server")) if self.redis else {}
        return CpuSnapshot(
            at=time.perf_counter(),
            server=self.servers.cpu(),
            me=cpu_seconds(os.getpid()),
            machine=machine_ticks(),
            postgres=pg,
            redis=rd,
            io_stall_ms=pressure_ms("io"),
            cpu_stall_ms=pressure_ms("cpu"),
            tcp=tcp_counters(),
        )

    def cpu_between(self, a: CpuSnapshot, b: CpuSnapshot, sender_cpu: float) -> dict[str, Any]:
        wall = b.at - a.at
        busy = (b.machine[0] - a.machine[0]) / max(1, b.machine[1] - a.machine[1])

        def spent(before: dict[int, float], after: dict[int, float]) -> float:
            return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())

        out: dict[str, Any] = {
            "wall_seconds": round(wall, 2),
            "server_cpu_seconds": round(b.server - a.server, 2),
            "server_cores": round((b.server - a.server) / wall, 2),
            "receiver_cores": round((b.me - a.me) / wall, 2),
            "sender_cores": round(sender_cpu / wall, 2),
            "machine_busy_cores": round(busy * (os.cpu_count() or 1), 2),
            # Linux pressure stall information: how long some task waited for a CPU, or for
            # I/O (an SQLite checkpoint's fsync, say), during the step.
            "cpu_pressure_ms": round(b.cpu_stall_ms - a.cpu_stall_ms),
            "io_pressure_ms": round(b.io_stall_ms - a.io_stall_ms),
        }
        ours = (b.server - a.server) + (b.me - a.me) + sender_cpu
        if self.pg_database:
            pg = spent(a.postgres, b.postgres)
            ours += pg
            out["postgres_backends_cores"] = round(pg / wall, 2)
        if self.redis:
            rd = spent(a.redis, b.redis)
            ours += rd
            out["redis_server_cores"] = round(rd / wall, 2)
        out["tcp"] = {key: b.tcp.get(key, 0) - a.tcp.get(key, 0) for key in b.tcp}
        # Everything else running on the machine meanwhile: high values mean a noisy run.
        out["other_processes_cores"] = round(max(0.0, out["machine_busy_cores"] - ours / wall), 2)
        return out

    async def step(self, label: str, rate: float, seconds: float) -> dict[str, Any]:
        """Send ``rate`` messages a second for ``seconds``, wait for their frames, measure."""
        first = self.next_seq
        plan = {
            "bases": self.servers.bases,
            "rate": rate,
            "seconds": seconds,
            "first_seq": first,
            "tokens": self.world.tokens,
            "conversations": self.world.conversations,
            "staff": len(self.world.staff_tokens),
            "max_in_flight": self.args.max_in_flight,
        }
        n = round(rate * seconds)
        self.next_seq += n
        load_before = os.getloadavg()[0]
        gc_before = await self.gc_pauses()
        before = self.snapshot()
        profiler = self._start_profiler(label, seconds)
        self.receiver.watch(first, first + n)
        probe_from = time.perf_counter_ns()
        sent = await asyncio.get_running_loop().run_in_executor(self.pool, run_sender, plan)
        results: list[tuple[int, int, int, int, int]] = sent["results"]
        ok = [r for r in results if r[4] == 201]
        fanout = self.world.fanout
        expected = len(ok) * fanout
        # Wait for the frames: until all expected have come, or 10 s without a new one.
        last_count, last_progress = -1, time.perf_counter()
        while True:
            count = self.receiver.in_window
            if count >= expected:
                break
            if count != last_count:
                last_count, last_progress = count, time.perf_counter()
            elif time.perf_counter() - last_progress > 10:
                break
            await asyncio.sleep(0.05)
        after = self.snapshot()
        if profiler is not None:
            profiler.wait()
        report = self._report(label, rate, seconds, first, n, sent, before, after, load_before)
        report["event_loop_probe_ms"] = self.receiver.probe_between(
            probe_from, time.perf_counter_ns()
        )
        gc_after = await self.gc_pauses()
        report["server_gc"] = {
            generation: {
                "collections": int(now[0] - then[0]),
                "ms": round(1000 * (now[1] - then[1]), 1),
                "over_100ms": int(now[2] - then[2]),
            }
            for (generation, now), then in zip(gc_after.items(), gc_before.values(), strict=True)
        }
        return report

    def _start_profiler(self, label: str, seconds: float) -> subprocess.Popen[bytes] | None:
        if not self.args.py_spy or label != "latency":
            return None
        self.profile_file = self.args.results_dir / f"{self.args.out_stem}-server.pyspy.txt"
        return subprocess.Popen(
            [
                self.args.py_spy,
                "record",
                "--pid",
                str(self.servers.pids[0]),  # the first process: a profile is of one
                "--duration",
                str(max(1, int(seconds))),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(self.profile_file),
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _report(
        self,
        label: str,
        rate: float,
        seconds: float,
        first: int,
        n: int,
        sent: dict[str, Any],
        before: CpuSnapshot,
        after: CpuSnapshot,
        load_before: float,
    ) -> dict[str, Any]:
        results: list[tuple[int, int, int, int, int]] = sent["results"]
        n_staff = len(self.world.staff_tokens)
        n_conv = len(self.world.conversations)
        statuses = Counter(r[4] for r in results)
        ok = {r[0] for r in results if r[4] == 201}
        starts = sorted(r[2] for r in results)
        span_ns = (starts[-1] - starts[0]) if len(starts) > 1 else 0
        achieved = (len(starts) - 1) / (span_ns / 1e9) if span_ns else 0.0
        lateness = sorted((r[2] - r[1]) / 1e6 for r in results)
        post_ms = sorted((r[3] - r[2]) / 1e6 for r in results)

        started = {r[0]: r[2] for r in results}
        by_second: dict[int, list[int]] = {}  # latencies by the second of the step they were sent
        got: set[tuple[int, int]] = set()
        duplicates = 0
        latencies: list[int] = []
        staff_lat: list[int] = []
        candidate_lat: list[int] = []
        slowest: dict[int, int] = {}
        unexpected = 0
        for seq, sock, ns in self.receiver.receipts:
            if not first <= seq < first + n:
                continue
            if seq not in ok:
                unexpected += 1
                continue
            if (seq, sock) in got:
                duplicates += 1
                continue
            got.add((seq, sock))
            latencies.append(ns)
            (staff_lat if sock < n_staff else candidate_lat).append(ns)
            slowest[seq] = max(slowest.get(seq, 0), ns)
            by_second.setdefault((started[seq] - starts[0]) // 1_000_000_000, []).append(ns)
        missing: list[tuple[int, int]] = []
        for seq in sorted(ok):
            conv, _ = author_of(seq, n_staff, n_conv)
            for sock in [*range(n_staff), n_staff + conv]:
                if (seq, sock) not in got:
                    missing.append((seq, sock))
        last_arrival = max((starts[0] + ns for ns in latencies), default=starts[0]) if starts else 0
        delivery_span = (max(last_arrival, starts[-1]) - starts[0]) / 1e9 if starts else 0.0
        summary = latency_summary(latencies)
        return {
            "step": label,
            "target_rate": rate,
            "seconds": seconds,
            "messages": n,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "send_rate": round(achieved, 1),
            "kept_up": achieved >= KEEP_UP * rate and statuses.get(201, 0) == n,
            "sender_waited_for_a_connection": sent["waited_for_slot"],
            "sender_errors": sent["errors"],
            "sender_lateness_ms": {
                "p50": round(pct(lateness, 50), 2),
                "p99": round(pct(lateness, 99), 2),
                "max": round(lateness[-1], 2),
            },
            "post_ms": {
                "p50": round(pct(post_ms, 50), 2),
                "p99": round(pct(post_ms, 99), 2),
                "max": round(post_ms[-1], 2),
            },
            "frames_expected": len(ok) * self.world.fanout,
            "frames_received": len(latencies),
            "frames_missing": len(missing),
            "missing_sample": missing[:10],
            "frames_duplicated": duplicates,
            "frames_of_failed_sends": unexpected,
            "delivered_per_second": round(len(latencies) / delivery_span, 1)
            if delivery_span
            else 0.0,
            "latency": summary,
            "latency_staff_sockets": latency_summary(staff_lat),
            "latency_candidate_sockets": latency_summary(candidate_lat),
            "latency_last_socket_per_message": latency_summary(list(slowest.values())),
            "latency_by_second": [
                {"second": sec, **latency_summary(values)}
                for sec, values in sorted(by_second.items())
            ],
            "cpu": self.cpu_between(before, after, sent["cpu_seconds"]),
            "server_cpu_ms_per_message": round(
                1000 * (after.server - before.server) / max(1, len(ok)), 2
            ),
            "server_rss_mib": round(self.servers.rss() / 1024, 1),
            "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "sockets_open": self.receiver.open_count,
        }


def step_line(s: dict[str, Any]) -> str:
    lat = s["latency"]
    cpu = s["cpu"]
    p50 = lat.get("p50_ms", float("nan"))
    p99 = lat.get("p99_ms", float("nan"))
    mx = lat.get("max_ms", float("nan"))
    extra = ""
    if "postgres_backends_cores" in cpu:
        extra += f" pg {cpu['postgres_backends_cores']:.2f}"
    if "redis_server_cores" in cpu:
        extra += f" redis {cpu['redis_server_cores']:.2f}"
    probe = s.get("event_loop_probe_ms", {})
    failed = {k: v for k, v in s["statuses"].items() if k != "201"}
    problems = f" | POSTs not 201 (0 = no answer): {failed}" if failed else ""
    if probe.get("n"):
        problems += f" | loop ping p99 {probe['p99_ms']:.0f} max {probe['max_ms']:.0f} ms"
    full = s.get("server_gc", {}).get("2")
    if full and full["collections"]:
        problems += (
            f" | full GCs {full['collections']} ({full['ms']:.0f} ms, "
            f"{full['over_100ms']} over 100 ms)"
        )
    lost = {
        k: v
        for k, v in cpu.get("tcp", {}).items()
        if v and k not in ("tail_loss_probes", "retransmitted_segments")
    }
    if lost:
        problems += f" | tcp {lost}"
    return (
        f"  {s['step']:<9} {s['target_rate']:>6.0f}/s → sent {s['send_rate']:>7.1f}/s "
        f"(POST p50 {s['post_ms']['p50']:6.1f} p99 {s['post_ms']['p99']:7.1f} ms), "
        f"frames {s['frames_received']}/{s['frames_expected']} "
        f"({s['delivered_per_second']:.0f}/s), latency p50 {p50:7.1f} p99 {p99:7.1f} "
        f"max {mx:7.1f} ms | server CPU {s['server_cpu_ms_per_message']:.1f} ms/message; "
        f"cores: server {cpu['server_cores']:.2f} "
        f"sockets {cpu['receiver_cores']:.2f} sender {cpu['sender_cores']:.2f}{extra} "
        f"others {cpu['other_processes_cores']:.2f}{problems}"
    )


def ramp_ok(s: dict[str, Any]) -> tuple[bool, str]:
    if not s["kept_up"]:
        return False, f"the sends could not be kept up ({s['send_rate']}/s of {s['target_rate']})"
    if s["frames_missing"]:
        return False, f"{s['frames_missing']} frames never arrived"
    p99 = s["latency"].get("p99_ms", math.inf)
    if p99 > RAMP_P99_MS:
        return False, f"p99 {p99} ms > {RAMP_P99_MS:.0f} ms"
    return True, ""


# --- main --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    n_staff = args.staff
    n_candidates = args.sockets - n_staff
    if n_candidates < 1:
        raise SystemExit("--sockets must be larger than --staff")
    nofile = raise_nofile(args.sockets * 2 + 4096)
    server_nofile = max(nofile[0], args.sockets * 2 + 4096)
    api_key = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env |= {
        "JOBCHAT_DATABASE_URL": args.database or f"sqlite:///{workdir / 'stream.db'}",
        "JOBCHAT_API_KEY": api_key,
        # The sends come from a few staff users at up to thousands a second: the per-user send
        # limit (120 a minute) would answer 429, so it is lifted for the benchmark.
        "JOBCHAT_SEND_RATE_PER_MINUTE": str(10**9),
    }
    if args.notify_delay is not None:
        env["JOBCHAT_NOTIFY_DELAY_SECONDS"] = str(args.notify_delay)
    pg_database = None
    if args.database and args.database.startswith(("postgresql://", "postgres://")):
        pg_database = prepare_postgres(args.database)
    elif args.database and not args.database.startswith("sqlite"):
        raise SystemExit("--database is sqlite:///… or postgresql://…")
    redis_prefix = None
    if args.redis:
        redis_prefix = f"jcbench-{uuid.uuid4().hex[:12]}"
        env |= {"JOBCHAT_REDIS_URL": args.redis, "JOBCHAT_REDIS_PREFIX": redis_prefix}

    print(
        f"starting jobchat serve ({'PostgreSQL ' + pg_database if pg_database else 'SQLite'}"
        f"{', Redis prefix ' + redis_prefix if redis_prefix else ''})…",
        flush=True,
    )
    servers = Servers([])
    try:
        for i in range(args.processes):
            # One after another: the first creates the schema, the others find it there.
            name = "server" if args.processes == 1 else f"server-{i + 1}"
            servers.members.append(start_server(workdir, env, server_nofile, name))
    except BaseException:
        for server in servers.members:  # the ones that did start
            server.stop()
        raise
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    receiver: Receiver | None = None
    out: dict[str, Any] = {}
    try:
        sender_pid = await asyncio.get_running_loop().run_in_executor(pool, _warm_sender)
        for server in servers.members:
            print(f"  server pid {server.pid} at {server.base}")
        print(f"  sender pid {sender_pid}")
        print(f"seeding {n_staff} staff and {n_candidates} candidates through the API…", flush=True)
        world = await seed(servers.base, api_key, n_staff, n_candidates)
        print(f"  {world.requests} requests in {world.seconds:.1f} s")
        await asyncio.sleep(2)
        rss_before = servers.rss()
        cpu_before_connect = servers.cpu()

        uris = [base.replace("http://", "ws://") + "/api/v1/events" for base in servers.bases]
        receiver = Receiver(uris, world.tokens, None if args.compression == "none" else "deflate")
        receiver.probe_socket = n_staff  # the first candidate: it receives few frames
        print(f"connecting {args.sockets} WebSockets…", flush=True)
        connect_seconds = await receiver.open_all(args.connect_concurrency)
        if receiver.failed:
            raise SystemExit(f"{len(receiver.failed)} sockets failed: {receiver.failed[:5]}")
        connect_cpu = servers.cpu() - cpu_before_connect
        # The 1,000 client connections live until the end. Out of the collector's sight, they
        # are not walked by this process's full collections, which took 20-90 ms here and,
        # delaying the reading of frames, showed up as server latency that was not.
        gc.collect()
        gc.freeze()
        ready = sorted(receiver.ready_ms)
        print(
            f"  {len(ready)} ready in {connect_seconds:.1f} s (handshake to ready p50 "
            f"{pct(ready, 50):.0f} ms, p99 {pct(ready, 99):.0f} ms; server CPU {connect_cpu:.1f} s)"
        )
        # Idle: presence frames settle; then the server's memory with every socket open, and
        # what the open sockets cost it in CPU (pings, heartbeats, polling the event table).
        await asyncio.sleep(min(2.0, args.settle))
        idle_cpu0, idle_t0 = servers.cpu(), time.perf_counter()
        idle_from = time.perf_counter_ns()
        await asyncio.sleep(max(0.0, args.settle - 2.0))
        idle_cores = (servers.cpu() - idle_cpu0) / max(1e-9, time.perf_counter() - idle_t0)
        rss_idle = servers.rss()
        idle_probe = receiver.probe_between(idle_from, time.perf_counter_ns())
        per_socket_kib = (rss_idle - rss_before) / args.sockets
        print(
            f"  server RSS {rss_before / 1024:.1f} MiB before, {rss_idle / 1024:.1f} MiB with "
            f"{args.sockets} idle sockets: {per_socket_kib:.1f} KiB per socket; "
            f"idle, the server uses {idle_cores:.3f} cores",
            flush=True,
        )
        bench = Bench(
            args,
            servers,
            world,
            receiver,
            pool,
            sender_pid,
            pg_database,
            bool(args.redis),
            api_key=api_key,
        )
        print(
            f"fan-out: each message goes to one application conversation, {world.fanout} "
            f"sockets: its candidate and the {n_staff} staff (every staff socket gets every "
            "message; a candidate socket one in "
            f"{len(world.conversations)})",
            flush=True,
        )
        steps: list[dict[str, Any]] = []
        if args.warmup > 0:
            warm = await bench.step("warm-up", args.rate, args.warmup)
            print(step_line(warm), flush=True)
            steps.append(warm)
        latency = await bench.step("latency", args.rate, args.seconds)
        print(step_line(latency), flush=True)
        steps.append(latency)
        rss_after_latency = servers.rss()
        ramp: list[dict[str, Any]] = []
        stop_reason = ""
        if args.ramp:
            print(f"ramp ({args.ramp_seconds:.0f} s a step; stops when p99 > {RAMP_P99_MS:.0f} ms)")
            for rate in [float(r) for r in args.ramp_rates.split(",")]:
                s = await bench.step(f"ramp {rate:.0f}", rate, args.ramp_seconds)
                print(step_line(s), flush=True)
                ramp.append(s)
                good, stop_reason = ramp_ok(s)
                if not good:
                    print(f"  stopped: {stop_reason}")
                    break
                await asyncio.sleep(1)
        best = max((s for s in ramp if ramp_ok(s)[0]), key=lambda s: s["send_rate"], default=None)
        rss_end = servers.rss()
        hwm = max(servers.rss("VmHWM"), rss_end)  # the kernel updates VmHWM lazily
        open_at_end = receiver.open_count
        out |= {
            "sockets": args.sockets,
            "processes": args.processes,
            "staff": n_staff,
            "candidates": n_candidates,
            "fanout": world.fanout,
            "seed": {"requests": world.requests, "seconds": round(world.seconds, 1)},
            "connect": {
                "seconds": round(connect_seconds, 2),
                "concurrency": args.connect_concurrency,
                "ready_ms": {
                    "p50": round(pct(ready, 50), 1),
                    "p99": round(pct(ready, 99), 1),
                    "max": round(ready[-1], 1),
                },
                "server_cpu_seconds": round(connect_cpu, 2),
            },
            "memory": {
                "server_rss_before_mib": round(rss_before / 1024, 1),
                "server_rss_idle_mib": round(rss_idle / 1024, 1),
                "per_idle_socket_kib": round(per_socket_kib, 1),
                "server_idle_cores": round(idle_cores, 3),
                "event_loop_probe_idle_ms": idle_probe,
                "server_rss_after_latency_mib": round(rss_after_latency / 1024, 1),
                "server_rss_end_mib": round(rss_end / 1024, 1),
                "server_rss_peak_mib": round(hwm / 1024, 1),
                "load_generator_rss_mib": round(rss_kib(os.getpid()) / 1024, 1),
            },
            "steps": steps,
            "ramp": ramp,
            "ramp_stop_reason": stop_reason,
            "best_ramp_step": best["step"] if best else None,
            "frame_types": dict(receiver.frame_types.most_common()),
            "unexpected_closes": dict(receiver.closes),
            "sockets_open_at_end": open_at_end,
            "profile": str(bench.profile_file) if bench.profile_file else None,
        }
        return out
    finally:
        if receiver is not None:
            await receiver.close_all()
        pool.shutdown(wait=True, cancel_futures=True)
        codes = [server.stop() for server in servers.members]
        print(
            f"server stopped (exit {', '.join(map(str, codes))}; -15 is its answer to SIGTERM, "
            "-9 means it was killed)"
        )
        # The logs are read after the servers stopped, so that they include the shutdown.
        problems: list[str] = []
        saved: list[str] = []
        for server, code in zip(servers.members, codes, strict=True):
            found = server.log_problems()
            problems += found
            if found or code == -9:  # keep the whole log beside the results
                saved_log = args.results_dir / f"{args.out_stem}-{server.log.name}"
                saved_log.write_bytes(server.log.read_bytes())
                saved.append(str(saved_log))
        out["server_exit_code"] = -9 if -9 in codes else codes[0]
        out["server_exit_codes"] = codes
        out["server_log_problems"] = problems[:20]
        out["server_log"] = ", ".join(saved) or None
        if redis_prefix:
            _forget_redis(args.redis, redis_prefix)


def _forget_redis(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


# Where the server's time goes: the first of these found in a sampled stack (outermost first
# among the listed ones) names its share. py-spy --gil samples the thread holding the GIL only,
# which is what limits one Python process: SQLite's own work (outside the GIL) is not in it.
PROFILE_PARTS = [
    ("POST /messages: auth (token lookup)", "require_user (jobchat/auth/deps.py"),
    ("POST /messages: unread_extras (badge counts for the event)", "unread_extras (jobchat/"),
    ("POST /messages: read_event (the sender's read marker)", "read_event (jobchat/"),
    ("POST /messages: commit", "Caller.write (jobchat/auth/deps.py"),
    ("POST /messages: the rest of the action (SQL, ORM)", "send_message (jobchat/messages/api"),
    ("hub: reading new events (reader thread)", "Hub._read_after (jobchat/"),
    ("hub: dispatch, frames rendered per recipient", "Hub._dispatch (jobchat/"),
    ("socket writes (websockets, permessage-deflate)", "_write (jobchat/realtime/api.py"),
    ("worker threads: waiting, handing over", "WorkerThread.run (anyio/"),
    ("HTTP: h11, Starlette, FastAPI, JSON, access log", "run_asgi (uvicorn/protocols/http"),
    ("HTTP: parsing, handing requests to the app", "H11Protocol"),
    ("event loop: the rest", "Server.run (uvicorn/server.py"),
]
OTHER_PART = "other (mostly ASGI frames whose stacks py-spy cut short)"


def profile_summary(path: Path, top: int = 20) -> dict[str, Any]:
    """Shares of PROFILE_PARTS, and the busiest frames, of a py-spy raw (collapsed) file."""
    own: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        own[stack.rsplit(";", 1)[-1]] += samples
        part = next((name for name, key in PROFILE_PARTS if key in stack), OTHER_PART)
        parts[part] += samples
    if not total:
        return {}
    return {
        "samples": total,
        "parts_percent": {
            name: round(100 * parts[name] / total, 1)
            for name in [*(n for n, _ in PROFILE_PARTS), OTHER_PART]
            if parts[name]
        },
        "top_self_percent": [
            (frame, round(100 * count / total, 1)) for frame, count in own.most_common(top)
        ],
    }


def print_summary(out: dict[str, Any]) -> None:
    r = out["results"]
    lat = next(s for s in r["steps"] if s["step"] == "latency")
    m = r["memory"]
    print(f"\n## jobchat stream benchmark: {out['label']}\n")
    print(
        f"{r['sockets']} sockets ({r['staff']} staff, {r['candidates']} candidates), fan-out "
        f"{r['fanout']} sockets per message; {out['machine']['cpus']} CPUs shared by the server"
        + (f" ({r['processes']} processes, figures summed)" if r["processes"] > 1 else "")
        + ", this load generator (the sockets) and the sender process."
    )
    print(
        f"Memory: server RSS {m['server_rss_before_mib']} MiB → {m['server_rss_idle_mib']} MiB "
        f"with the sockets idle = **{m['per_idle_socket_kib']} KiB per idle socket** "
        f"(idle, the server used {m['server_idle_cores']} cores); "
        f"{m['server_rss_after_latency_mib']} MiB after the latency run, peak "
        f"{m['server_rss_peak_mib']} MiB."
    )
    ls = lat["latency"]
    print(
        f"Latency at {lat['target_rate']:.0f} messages/s for {lat['seconds']:.0f} s "
        f"(sent {lat['send_rate']}/s): frames {lat['frames_received']} received of "
        f"{lat['frames_expected']} expected ({lat['frames_missing']} missing); send-to-receive "
        f"p50 {ls.get('p50_ms')} ms, p95 {ls.get('p95_ms')} ms, **p99 {ls.get('p99_ms')} ms**, "
        f"max {ls.get('max_ms')} ms; POST p50 {lat['post_ms']['p50']} ms, p99 "
        f"{lat['post_ms']['p99']} ms."
    )
    cpu = lat["cpu"]
    print(
        f"CPU during it, in cores (of {out['machine']['cpus']}): server {cpu['server_cores']}, "
        f"sockets {cpu['receiver_cores']}, sender {cpu['sender_cores']}, whole machine "
        f"{cpu['machine_busy_cores']} (other processes {cpu['other_processes_cores']})"
        + (
            f", PostgreSQL backends {cpu['postgres_backends_cores']}"
            if "postgres_backends_cores" in cpu
            else ""
        )
        + (f", redis-server {cpu['redis_server_cores']}" if "redis_server_cores" in cpu else "")
        + f"; server CPU {cpu['server_cpu_seconds']} s over {cpu['wall_seconds']} s "
        f"({lat['server_cpu_ms_per_message']} ms per message)."
    )
    goal = out["goal"]
    verdict = "met" if goal["met"] else "MISSED"
    if not goal["applies"]:
        verdict = (
            f"not measured here (this run: {r['sockets']} sockets, {lat['target_rate']:.0f}/s)"
        )
    print(
        f"Goal (p99 < {GOAL_P99_MS:.0f} ms at 100 messages/s with 1,000 sockets on 2 cores): "
        f"{verdict} (p99 {goal['p99_ms']} ms)."
    )
    best = out.get("best")
    if best:
        print(
            f"Ramp: highest step with p99 ≤ {RAMP_P99_MS:.0f} ms: {best['target_rate']:.0f}/s "
            f"asked, {best['send_rate']}/s sent, {best['delivered_per_second']:.0f} frames/s "
            f"delivered, p50 {best['latency']['p50_ms']} ms, p99 {best['latency']['p99_ms']} ms. "
            f"Stopped: {r['ramp_stop_reason'] or 'end of the list'}."
        )
    if r["ramp"]:
        print(
            "\n| asked/s | sent/s | frames/s | p50 ms | p99 ms | max ms | server cores "
            "| server CPU ms/message |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        for s in r["ramp"]:
            lat_s = s["latency"]
            print(
                f"| {s['target_rate']:.0f} | {s['send_rate']:.1f} "
                f"| {s['delivered_per_second']:.0f} "
                f"| {lat_s.get('p50_ms')} | {lat_s.get('p99_ms')} | {lat_s.get('max_ms')} "
                f"| {s['cpu']['server_cores']} | {s['server_cpu_ms_per_message']} |"
            )
    if r["unexpected_closes"]:
        print(f"Sockets closed by the server: {r['unexpected_closes']}")
    if r.get("server_exit_code") == -9:
        print(f"The server did not stop within 20 s of SIGTERM and was killed ({r['server_log']}).")
    if r["server_log_problems"]:
        print(
            f"Server log problems (whole log in {r['server_log']}): {r['server_log_problems'][:5]}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sockets", type=int, default=1000, help="WebSockets, one per user")
    parser.add_argument("--staff", type=int, default=10, help="staff users (in every conversation)")
    parser.add_argument("--rate", type=float, default=100, help="messages a second (latency run)")
    parser.add_argument("--seconds", type=float, default=30, help="length of the latency run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of sends before it")
    parser.add_argument("--ramp", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ramp-rates", default=DEFAULT_RAMP, help="messages a second, in order")
    parser.add_argument("--ramp-seconds", type=float, default=10)
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--redis", help="redis://… : real-time events through Redis")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="jobchat serve processes on the one database (more than one needs --redis)",
    )
    parser.add_argument("--compression", choices=["deflate", "none"], default="deflate")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--max-in-flight", type=int, default=100, help="the sender's open POSTs")
    parser.add_argument("--settle", type=float, default=10, help="idle seconds before RSS")
    parser.add_argument(
        "--notify-delay",
        type=float,
        help="the server's JOBCHAT_NOTIFY_DELAY_SECONDS (default: its own, 120 s: the email "
        "notifications of the first sends then come due during the ramp)",
    )
    parser.add_argument("--out", help="results file name (default: stream-<db>[-redis].json)")
    parser.add_argument("--py-spy", help="a py-spy binary: profile the server in the latency run")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (SQLite file, server.log)"
    )
    args = parser.parse_args(argv)

    if args.processes < 1 or (args.processes > 1 and not args.redis):
        parser.error("--processes: 1, or more with --redis (how the processes reach each other)")
    dialect = "postgresql" if args.database and args.database.startswith("postgres") else "sqlite"
    label = dialect + ("-redis" if args.redis else "")
    if args.processes > 1:
        label += f"-{args.processes}proc"
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    args.results_dir = results_dir
    args.out_stem = (args.out or f"stream-{label}.json").removesuffix(".json")
    load_before = os.getloadavg()
    code = code_version()  # read at the start: others may commit while it runs
    if args.keep:
        tmp = tempfile.mkdtemp(prefix="jobchat-stream-")
        print(f"keeping the server's directory (database, server.log): {tmp}")
        results = asyncio.run(run(args, Path(tmp)))
    else:
        with tempfile.TemporaryDirectory(prefix="jobchat-stream-") as tmp:
            results = asyncio.run(run(args, Path(tmp)))
    lat = next(s for s in results["steps"] if s["step"] == "latency")
    best = next((s for s in results["ramp"] if s["step"] == results["best_ramp_step"]), None)
    p99 = lat["latency"].get("p99_ms", math.inf)
    out: dict[str, Any] = {
        "label": label,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code,
        "args": {k: v for k, v in vars(args).items() if k != "results_dir"},
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "note": (
            "The server, this load generator (the sockets) and the sender process share the "
            "machine's CPUs; the 'cpu' of each step says how many cores each used."
        ),
        "goal": {
            "p99_ms": p99,
            "target_p99_ms": GOAL_P99_MS,
            # The goal is stated for 1,000 sockets and 100 messages a second.
            "applies": args.sockets >= 1000 and args.rate >= 100,
            "met": p99 < GOAL_P99_MS and lat["frames_missing"] == 0 and lat["kept_up"],
        },
        "best": best,
        "results": results,
    }
    print_summary(out)
    if results["profile"]:
        profile = Path(results["profile"])
        if profile.exists():
            summary = profile_summary(profile)
            out["profile"] = summary
            print(
                f"\nserver profile during the latency run ({profile}, py-spy --gil: "
                f"{summary.get('samples', 0)} samples of the thread holding the GIL):"
            )
            for name, share in summary.get("parts_percent", {}).items():
                print(f"  {share:5.1f}%  {name}")
            print("busiest frames (self %):")
            for frame, share in summary.get("top_self_percent", [])[:12]:
                print(f"  {share:5.1f}%  {frame}")
    path = results_dir / f"{args.out_stem}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
