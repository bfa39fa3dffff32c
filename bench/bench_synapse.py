"""Side by side with Matrix Synapse 1.163.2: the same workload against Synapse and jobchat.

Run from the project root, with Synapse in a venv of its own (never the project's):

    python3 -m venv /tmp/synapse
    /tmp/synapse/bin/pip install 'matrix-synapse[postgres]==1.163.2'
    .venv/bin/python bench/bench_synapse.py --database sqlite
    .venv/bin/python bench/bench_synapse.py --database postgresql

The two servers run one after the other, never at once, each in a process of its own on
loopback; this process is the load (aiohttp, as bench_send's throughput mode). Synapse is
started from ``--synapse-python`` as ``-m synapse.app.homeserver`` with a config generated in
a temp dir (this script never imports synapse); jobchat as ``jobchat serve`` by bench_stream's
``start_server``, in the environment bench_send's throughput mode uses.

The world, the same shape on both: 10 staff users and 101 candidates; 101 conversations, each
with the 10 staff and its candidate. jobchat: seeded through the integration API by
``bench_send.seed`` (an employer, a job, an application per candidate and its application
conversation started by staff 0). Synapse: users registered through the shared-secret admin
API; per conversation a private room (``preset: private_chat``, named) created by staff 0 with
the other 10 invited, each of whom joins. Conversation k is room k.

Sends: N senders at once (``--concurrency``, default 1,8,32), each on its own keep-alive
connection, send k going to conversation k mod 101 from ``bench_send.author_of``'s author (the
staff in turn, every fourth send the conversation's candidate), the body
``jcbench seq=<k> Hello from the send benchmark.`` on both. jobchat: POST
/api/v1/conversations/{id}/messages {"body": …} (201). Synapse: PUT
/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn} {"msgtype": "m.text", "body": …}
(200). Per concurrency: ``--warmup`` sends, then ``--rounds`` rounds of ``--sends``; per round
messages/s, the server process's CPU per message (/proc: the process and any children), on
PostgreSQL plus the CPU of the database's backends (bench_send.backend_cpu), and latency
p50/p99. Reported: the median of the rounds, each figure on its own.

Reads, by staff 0 (a member of all 101 conversations), ``--requests`` sequential requests on
one keep-alive connection after 20 unmeasured, with latency p50/p99 and server (+ backends) CPU
per request. Before them every conversation is given at least ``--history-fill`` messages
(unmeasured sends at c=8, if the send rounds did not already), so a history page is 50
messages on both. These are EQUIVALENTS, NOT IDENTICAL WORK:

- inbox: jobchat GET /api/v1/conversations (the first page: 50 conversations, newest first,
  with last message and unread counts). Synapse: GET /_matrix/client/v3/sync with no ``since``
  (each request an initial sync) and a filter limiting each room's timeline to 1 event, members
  lazy-loaded, no presence, account data or ephemeral events: the room list with last message
  and unread counts, as Element asks for it, but of all 101 rooms (/sync does not page), so
  about twice jobchat's page. Synapse's sync response cache is turned off
  (``sync_response_cache_duration: 0``), or every repeated request would be answered from it.
  Also measured, on Synapse only: the sliding-sync inbox (MSC4186, enabled by default in
  1.163), one list of rooms 0..49 with a timeline of 1 event, no ``pos``: closer to jobchat's
  page of 50 (its ratio is printed too).
- history: jobchat GET /api/v1/conversations/{id}/messages (newest page, 50 messages).
  Synapse: GET /_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50. Conversations in turn.

Synapse's config: server_name localhost, one plain HTTP listener on a free loopback port with
the client resource only (no federation listener, federation allowed with no one),
registration off but a shared secret, presence off, every rate limit far out of the way,
bcrypt rounds 4 (seeding only), no stats reporting, metrics off, logging to a file at WARNING.
SQLite: a file in the temp dir. PostgreSQL: a fresh database ``jc_synapse`` (dropped first;
UTF8, C collation, template0, as Synapse requires) at postgres@127.0.0.1:5432; jobchat uses
``jc_vs_synapse`` there. Other databases are never touched.

The client runs on the same 2-core machine as the server (and, on PostgreSQL, the database),
the same for both; the CPU the rest of the machine used meanwhile (busy time from /proc/stat
less the server's, the backends' and this process's) is reported per stretch ("others'
cores"), so a run disturbed by another process shows it. The table gives, per database and
concurrency, both sides' figures and the ratio jobchat/Synapse of messages/s and of messages
per CPU-second (server, + backends on PostgreSQL); for reads, latency and CPU per request and
their ratios. JSON goes to ``bench/results/synapse-<dialect>.json``; ``--only
synapse|jobchat`` measures one side and replaces just its part of that file (the table then
compares runs made at different times).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from bench_send import (
    Request,
    World,
    _percentile,
    author_of,
    backend_cpu,
    backend_delta,
    load_requests,
    message_request,
    seed,
    serve_env,
)
from bench_stream import (
    Server,
    code_version,
    cpu_seconds,
    free_port,
    machine_ticks,
    start_server,
)
from seeding import reset_database, sqlalchemy_url
from sqlalchemy import create_engine, text

SYNAPSE_VERSION = "1.163.2"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
SYNAPSE_PG_DATABASE = "jc_synapse"
JOBCHAT_PG_DATABASE = "jc_vs_synapse"
# Other people's databases on this server: this script must never drop or empty them.
PROTECTED_DATABASES = frozenset({"test", "test_mine", "jc_send", "postgres", "template0"})
N_STAFF = 10
N_CONVERSATIONS = 101
READ_WARMUP = 20
HISTORY_LIMIT = 50
INBOX_PAGE = 50
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Far out of the way: no request of the benchmark may meet a rate limit.
UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}


# --- CPU of a server process -------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return raw[raw.rindex(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    """Live child processes of ``pid`` (scanning /proc: /proc/<pid>/task/*/children needs a
    kernel option)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of a server: the process (all threads), its children that were waited for,
    and its live children. Neither server forks in this setup; counted anyway, in case."""
    fields = _stat_fields(pid)
    waited = (int(fields[13]) + int(fields[14])) / CLK_TCK if fields else 0.0
    return cpu_seconds(pid) + waited + sum(cpu_seconds(child) for child in children_of(pid))


# --- the servers under test --------------------------------------------------------------------


@dataclass
class Target:
    """A server under test, as the load sees it: requests are built per sequence number."""

    name: str
    base: str
    pid: int
    pg_database: str | None  # whose backends' CPU counts, on PostgreSQL
    ok_status: int  # of a send
    send: Callable[[int], Request]
    reads: dict[str, Callable[[int], Request]]
    stop: Callable[[], None]
    log_problems: Callable[[], list[str]]
    info: dict[str, Any] = field(default_factory=dict)

    def cpu(self) -> float:
        return tree_cpu(self.pid)


# --- Synapse -----------------------------------------------------------------------------------


def synapse_config(workdir: Path, port: int, pg_database: str | None, secret: str) -> str:
    """homeserver.yaml, written as JSON (YAML reads it), and its logging config."""
    log_config = workdir / "log.yaml"
    log_config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {
                    "plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}
                },
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "formatter": "plain",
                        "filename": str(workdir / "homeserver.log"),
                    }
                },
                "root": {"level": "WARNING", "handlers": ["file"]},
                "disable_existing_loggers": False,
            }
        )
    )
    if pg_database:
        database: dict[str, Any] = {
            "name": "psycopg2",
            "args": {
                "user": "postgres",
                "host": "127.0.0.1",
                "port": 5432,
                "database": pg_database,
                "cp_min": 5,
                "cp_max": 10,
            },
        }
    else:
        database = {"name": "sqlite3", "args": {"database": str(workdir / "homeserver.db")}}
    config: dict[str, Any] = {
        "server_name": "localhost",
        "pid_file": str(workdir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": database,
        "log_config": str(log_config),
        "media_store_path": str(workdir / "media"),
        "signing_key_path": str(workdir / "localhost.signing.key"),
        "registration_shared_secret": secret,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "enable_registration": False,
        "report_stats": False,
        "enable_metrics": False,
        "presence": {"enabled": False},
        "federation_domain_whitelist": [],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        # Registration hashes a password per user: cheap rounds keep seeding short (no
        # measured request hashes a password).
        "bcrypt_rounds": 4,
        # Else an initial /sync repeated with nothing new is answered from a response cache.
        "caches": {"sync_response_cache_duration": 0},
        **_rate_limits(),
    }
    path = workdir / "homeserver.yaml"
    path.write_text(json.dumps(config, indent=2))
    return str(path)


def _rate_limits() -> dict[str, Any]:
    flat = (
        "rc_message",
        "rc_registration",
        "rc_registration_token_validity",
        "rc_joins_per_room",
        "rc_3pid_validation",
        "rc_admin_redaction",
        "rc_third_party_invite",
        "rc_media_create",
        "rc_delayed_event_mgmt",
        "rc_room_creation",
        "rc_reports",
        "rc_user_directory",
        "rc_key_requests",
        "rc_profile",
    )
    nested = {
        "rc_login": ("address", "account", "failed_attempts"),
        "rc_joins": ("local", "remote"),
        "rc_invites": ("per_room", "per_user", "per_issuer"),
        "rc_presence": ("per_user",),
    }
    limits: dict[str, Any] = dict.fromkeys(flat, UNLIMITED)
    limits |= {name: dict.fromkeys(parts, UNLIMITED) for name, parts in nested.items()}
    return limits


@dataclass
class SynapseProcess:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def log_problems(self) -> list[str]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if " ERROR " in line or "Traceback" in line]


def prepare_synapse_postgres(name: str) -> None:
    """A fresh database as Synapse requires it (UTF8, C collation, from template0)."""
    if name in PROTECTED_DATABASES:
        raise SystemExit(f"refusing to drop database {name!r}")
    admin = create_engine(sqlalchemy_url(f"{PG_SERVER}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(
            text(
                f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' LC_COLLATE 'C' "
                "LC_CTYPE 'C' TEMPLATE template0"
            )
        )
    admin.dispose()


def start_synapse(
    python: str, workdir: Path, pg_database: str | None, secret: str
) -> SynapseProcess:
    port = free_port()
    config = synapse_config(workdir, port, pg_database, secret)
    command = [python, "-m", "synapse.app.homeserver", "-c", config]
    subprocess.run([*command, "--generate-keys"], cwd=workdir, check=True, capture_output=True)
    out = workdir / "homeserver.stdout"
    with out.open("wb") as sink:
        process = subprocess.Popen(command, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT)
    synapse = SynapseProcess(process, f"http://127.0.0.1:{port}", workdir / "homeserver.log")
    deadline = time.monotonic() + 300  # a fresh PostgreSQL schema takes a while
    while True:
        if process.poll() is not None:
            tail = out.read_text(errors="replace")[-3000:]
            raise SystemExit(f"Synapse exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{synapse.base}/_matrix/client/versions", timeout=2).status_code == 200:
                return synapse
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            synapse.stop()
            raise SystemExit("Synapse did not answer in time")
        time.sleep(0.5)


async def _matrix(
    client: httpx.AsyncClient, method: str, path: str, body: Any = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.request(method, path, json=body, headers=headers)
    if response.status_code != 200:
        raise SystemExit(f"Synapse {method} {path}: {response.status_code} {response.text}")
    data: dict[str, Any] = response.json()
    return data


async def register(client: httpx.AsyncClient, secret: str, username: str) -> tuple[str, str]:
    """(user id, access token) of a new user, through the shared-secret registration API: the
    HMAC-SHA1 of nonce, user name, password and admin flag, NUL-separated, keyed by the
    secret."""
    path = "/_synapse/admin/v1/register"
    nonce = (await _matrix(client, "GET", path))["nonce"]
    password = secrets.token_hex(8)
    message = b"\x00".join(x.encode() for x in (nonce, username, password, "notadmin"))
    mac = hmac.new(secret.encode(), message, hashlib.sha1).hexdigest()
    body = {"nonce": nonce, "username": username, "password": password, "admin": False, "mac": mac}
    answer = await _matrix(client, "POST", path, body)
    return answer["user_id"], answer["access_token"]


@dataclass
class MatrixWorld:
    """bench_send's World with room indexes for conversations (so that author_of serves both),
    and the rooms and users behind them."""

    world: World
    rooms: list[str]
    staff_ids: list[str]
    candidate_ids: list[str]


async def seed_synapse(base: str, secret: str) -> MatrixWorld:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        staff = [await register(client, secret, f"staff{i}") for i in range(N_STAFF)]
        candidates = [
            await register(client, secret, f"candidate{i}") for i in range(N_CONVERSATIONS)
        ]
        world = World(
            [t for _, t in staff], [t for _, t in candidates], list(range(N_CONVERSATIONS))
        )
        slots = asyncio.Semaphore(8)

        async def one_room(i: int) -> str:
            async with slots:
                return await _make_room(client, i, staff, candidates[i])

        rooms = list(await asyncio.gather(*(one_room(i) for i in range(N_CONVERSATIONS))))
        members = await _matrix(
            client,
            "GET",
            f"/_matrix/client/v3/rooms/{quote(rooms[0])}/joined_members",
            None,
            world.staff_tokens[0],
        )
        if len(members["joined"]) != N_STAFF + 1:
            raise SystemExit(f"expected {N_STAFF + 1} members, got {sorted(members['joined'])}")
    return MatrixWorld(world, rooms, [u for u, _ in staff], [u for u, _ in candidates])


async def _make_room(
    client: httpx.AsyncClient, i: int, staff: list[tuple[str, str]], candidate: tuple[str, str]
) -> str:
    """A private room created by staff 0, the other staff and the candidate invited and
    joined."""
    invitees = [*staff[1:], candidate]
    body = {
        "preset": "private_chat",
        "name": f"Application {i}",
        "invite": [user for user, _ in invitees],
    }
    room: str = (await _matrix(client, "POST", "/_matrix/client/v3/createRoom", body, staff[0][1]))[
        "room_id"
    ]
    for _, token in invitees:
        await _matrix(client, "POST", f"/_matrix/client/v3/rooms/{quote(room)}/join", {}, token)
    return room


def synapse_requests(
    mw: MatrixWorld, filter_id: str
) -> tuple[Callable[[int], Request], dict[str, Callable[[int], Request]]]:
    """The send and the reads of the workload, in Matrix."""

    def send(seq: int) -> Request:
        room, token = author_of(seq, mw.world)
        path = f"/_matrix/client/v3/rooms/{quote(mw.rooms[room])}/send/m.room.message/jc{seq}"
        body = {"msgtype": "m.text", "body": f"jcbench seq={seq} Hello from the send benchmark."}
        return Request("PUT", path, body, token)

    reader = mw.world.staff_tokens[0]
    sliding = {
        "lists": {
            "inbox": {
                "ranges": [[0, INBOX_PAGE - 1]],
                "timeline_limit": 1,
                "required_state": [["m.room.name", ""]],
            }
        }
    }
    reads = {
        "inbox": lambda _i: Request(
            "GET", f"/_matrix/client/v3/sync?filter={filter_id}&timeout=0", None, reader
        ),
        "history": lambda i: Request(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(mw.rooms[i % len(mw.rooms)])}/messages"
            f"?dir=b&limit={HISTORY_LIMIT}",
            None,
            reader,
        ),
        "inbox_sliding_sync": lambda _i: Request(
            "POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", sliding, reader
        ),
    }
    return send, reads


INBOX_FILTER = {
    "room": {
        "timeline": {"limit": 1},
        "state": {"lazy_load_members": True},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
}


async def synapse_target(python: str, workdir: Path, pg_database: str | None) -> Target:
    secret = secrets.token_hex(16)
    if pg_database:
        prepare_synapse_postgres(pg_database)
    synapse = start_synapse(python, workdir, pg_database, secret)
    try:
        mw = await seed_synapse(synapse.base, secret)
        async with httpx.AsyncClient(base_url=synapse.base, timeout=60) as client:
            path = f"/_matrix/client/v3/user/{quote(mw.staff_ids[0])}/filter"
            filter_id = (
                await _matrix(client, "POST", path, INBOX_FILTER, mw.world.staff_tokens[0])
            )["filter_id"]
    except BaseException:
        synapse.stop()
        raise
    send, reads = synapse_requests(mw, filter_id)
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('matrix-synapse'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return Target(
        name="synapse",
        base=synapse.base,
        pid=synapse.process.pid,
        pg_database=pg_database,
        ok_status=200,
        send=send,
        reads=reads,
        stop=synapse.stop,
        log_problems=synapse.log_problems,
        info={"version": version, "python": python},
    )


# --- jobchat -----------------------------------------------------------------------------------


async def jobchat_target(workdir: Path, database_url: str, pg_database: str | None) -> Target:
    reset_database(sqlalchemy_url(database_url))
    server = start_server(workdir, serve_env(database_url), nofile=4096, name="jobchat-server")
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
            world = await seed(client, N_STAFF, N_CONVERSATIONS)
    except BaseException:
        server.stop()
        raise
    reader = world.staff_tokens[0]
    conversations = world.conversations
    reads = {
        "inbox": lambda _i: Request(
            "GET", f"/api/v1/conversations?limit={INBOX_PAGE}", None, reader
        ),
        "history": lambda i: Request(
            "GET",
            f"/api/v1/conversations/{conversations[i % len(conversations)]}/messages"
            f"?limit={HISTORY_LIMIT}",
            None,
            reader,
        ),
    }
    return Target(
        name="jobchat",
        base=server.base,
        pid=server.pid,
        pg_database=pg_database,
        ok_status=201,
        send=lambda seq: message_request(seq, world),
        reads=reads,
        stop=lambda: _stop(server),
        log_problems=server.log_problems,
        info={"database_url": database_url},
    )


def _stop(server: Server) -> None:
    server.stop()


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Meter:
    """CPU of the server and of its PostgreSQL backends between two moments; and the CPU
    nobody of the benchmark used (the machine's busy time less the server's, the backends'
    and this process's): another process at work, which makes that stretch's figures suspect
    (the machine is shared and has 2 cores)."""

    target: Target
    cpu0: float = 0.0
    backends0: dict[int, float] = field(default_factory=dict)
    mine0: float = 0.0
    busy0: int = 0
    wall0: float = 0.0
    other_cores: float = 0.0

    def start(self) -> None:
        self.cpu0, self.backends0 = self.target.cpu(), backend_cpu(self.target.pg_database)
        self.mine0, self.busy0 = time.process_time(), machine_ticks()[0]
        self.wall0 = time.perf_counter()

    def read(self) -> tuple[float, float]:
        server = self.target.cpu() - self.cpu0
        backends = backend_delta(self.backends0, backend_cpu(self.target.pg_database))
        busy = (machine_ticks()[0] - self.busy0) / CLK_TCK
        mine = time.process_time() - self.mine0
        wall = max(time.perf_counter() - self.wall0, 1e-9)
        self.other_cores = round(max(0.0, busy - server - backends - mine) / wall, 2)
        return server, backends


async def send_round(target: Target, first: int, n: int, concurrency: int) -> dict[str, Any]:
    meter = Meter(target)
    meter.start()
    wall, latencies, statuses = await load_requests(target.base, target.send, first, n, concurrency)
    server, backends = meter.read()
    ok = statuses.get(target.ok_status, 0)
    per = 1000 / max(ok, 1)
    return {
        "sends": n,
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "messages_per_second": round(ok / wall, 1),
        "server_cpu_ms_per_message": round(server * per, 3),
        "db_backend_cpu_ms_per_message": round(backends * per, 3),
        "total_cpu_ms_per_message": round((server + backends) * per, 3),
        "server_cpu_cores": round(server / wall, 2),
        "other_processes_cpu_cores": meter.other_cores,
        "latency_ms_p50": round(_percentile(latencies, 0.5), 2),
        "latency_ms_p99": round(_percentile(latencies, 0.99), 2),
    }


SEND_KEYS = (
    "messages_per_second",
    "server_cpu_ms_per_message",
    "db_backend_cpu_ms_per_message",
    "total_cpu_ms_per_message",
    "latency_ms_p50",
    "latency_ms_p99",
    "other_processes_cpu_cores",
)
# Above this, another process used a noticeable share of the 2 cores during a stretch.
BUSY_CORES = 0.15


async def measure_sends(
    target: Target, concurrency: int, first: int, args: argparse.Namespace
) -> tuple[dict[str, Any], int]:
    """Warm-up, then the rounds at one concurrency: (results, the next sequence number)."""
    await asyncio.sleep(1.0)  # whatever the last step left running settles
    seq = first
    warm = await send_round(target, seq, args.warmup, concurrency)
    seq += args.warmup
    rounds = []
    for r in range(args.rounds):
        result = await send_round(target, seq, args.sends, concurrency)
        seq += args.sends
        rounds.append(result)
        print(
            f"  {target.name} c={concurrency} round {r + 1}/{args.rounds}: "
            f"{result['messages_per_second']} msg/s, CPU {result['server_cpu_ms_per_message']:.2f}"
            f" + backends {result['db_backend_cpu_ms_per_message']:.2f} ms/msg "
            f"({result['server_cpu_cores']} cores; others "
            f"{result['other_processes_cpu_cores']}), p50 {result['latency_ms_p50']} ms, "
            f"p99 {result['latency_ms_p99']} ms, answers {result['statuses']}",
            flush=True,
        )
    median = {key: round(statistics.median(r[key] for r in rounds), 3) for key in SEND_KEYS}
    failed = sum(r["sends"] - r["ok"] for r in [warm, *rounds])
    others = max(r["other_processes_cpu_cores"] for r in rounds)
    return {
        "warmup": warm,
        "rounds": rounds,
        "median": median,
        "failed": failed,
        "other_processes_cpu_cores_max": others,
    }, seq


async def fill_history(target: Target, first: int, per_conversation: int) -> int:
    """Unmeasured sends until every conversation has ``per_conversation`` messages of the
    benchmark (sequence numbers go round the conversations): the next sequence number."""
    wanted = per_conversation * N_CONVERSATIONS
    if first < wanted:
        _, _, statuses = await load_requests(target.base, target.send, first, wanted - first, 8)
        if statuses.get(target.ok_status, 0) != wanted - first:
            print(f"  {target.name}: history fill answers {dict(statuses)}", flush=True)
        return wanted
    return first


async def measure_read(
    target: Target, request_of: Callable[[int], Request], n: int
) -> dict[str, Any]:
    """``n`` sequential requests on one connection, after READ_WARMUP unmeasured."""
    await load_requests(target.base, request_of, 0, READ_WARMUP, 1)
    meter = Meter(target)
    meter.start()
    wall, latencies, statuses = await load_requests(target.base, request_of, 0, n, 1)
    server, backends = meter.read()
    return {
        "requests": n,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "requests_per_second": round(n / wall, 1),
        "latency_ms_p50": round(_percentile(latencies, 0.5), 2),
        "latency_ms_p99": round(_percentile(latencies, 0.99), 2),
        "server_cpu_ms_per_request": round(1000 * server / n, 3),
        "db_backend_cpu_ms_per_request": round(1000 * backends / n, 3),
        "total_cpu_ms_per_request": round(1000 * (server + backends) / n, 3),
        "other_processes_cpu_cores": meter.other_cores,
        "answer": await describe_answer(target, request_of(0)),
    }


async def describe_answer(target: Target, request: Request) -> dict[str, Any]:
    """What one answer holds (bytes, rooms or conversations, events or messages): the
    reads are equivalents, not identical work, and this shows how far apart."""
    async with httpx.AsyncClient(base_url=target.base, timeout=60) as client:
        response = await client.request(
            request.method,
            request.path,
            json=request.body,
            headers={"Authorization": f"Bearer {request.token}"},
        )
    data: Any = response.json() if response.status_code == 200 else {}
    counts: dict[str, Any] = {"status": response.status_code, "bytes": len(response.content)}
    if isinstance(data, list):
        counts["items"] = len(data)
    elif isinstance(data, dict):
        for key in ("items", "conversations", "messages", "chunk", "state"):
            if isinstance(data.get(key), list):
                counts[key] = len(data[key])
        joined = data.get("rooms", {}).get("join")
        if isinstance(joined, dict):
            counts["rooms"] = len(joined)
            counts["timeline_events"] = sum(len(r["timeline"]["events"]) for r in joined.values())
            counts["state_events"] = sum(len(r["state"]["events"]) for r in joined.values())
        elif isinstance(data.get("rooms"), dict):
            counts["rooms"] = len(data["rooms"])
    return counts


async def idle_cpu(target: Target, seconds: float = 3.0) -> dict[str, float]:
    """Server (+ backends) CPU while nothing is asked of it: background work."""
    meter = Meter(target)
    meter.start()
    await asyncio.sleep(seconds)
    server, backends = meter.read()
    return {
        "server_cpu_ms_per_second": round(1000 * server / seconds, 2),
        "db_backend_cpu_ms_per_second": round(1000 * backends / seconds, 2),
        "other_processes_cpu_cores": meter.other_cores,
    }


async def measure(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"info": target.info, "idle": await idle_cpu(target), "sends": {}}
    seq = 0
    for concurrency in args.concurrency:
        out["sends"][str(concurrency)], seq = await measure_sends(target, concurrency, seq, args)
    seq = await fill_history(target, seq, args.history_fill)
    out["messages_sent"] = seq
    await asyncio.sleep(2.0)
    out["reads"] = {}
    for name, request_of in target.reads.items():
        result = await measure_read(target, request_of, args.requests)
        out["reads"][name] = result
        print(
            f"  {target.name} {name}: p50 {result['latency_ms_p50']} ms, "
            f"p99 {result['latency_ms_p99']} ms, CPU {result['server_cpu_ms_per_request']:.2f}"
            f" + backends {result['db_backend_cpu_ms_per_request']:.2f} ms/request "
            f"(others {result['other_processes_cpu_cores']} cores), "
            f"answers {result['statuses']}, one answer {result['answer']}",
            flush=True,
        )
    out["children_at_end"] = children_of(target.pid)
    return out


async def run_side(side: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start one server, seed it, measure it, stop it; with the load average around it."""
    postgres = args.database == "postgresql"
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    print(f"\n# {side} on {args.database} (load average {load_before[0]:.2f})", flush=True)
    if side == "synapse":
        target = await synapse_target(
            args.synapse_python, workdir, SYNAPSE_PG_DATABASE if postgres else None
        )
    else:
        url = (
            f"{PG_SERVER}/{JOBCHAT_PG_DATABASE}" if postgres else f"sqlite:///{workdir}/jobchat.db"
        )
        target = await jobchat_target(workdir, url, JOBCHAT_PG_DATABASE if postgres else None)
    # Synapse logs an ERROR when two rooms created in the same millisecond hash to the same
    # room ID (room version 12), then retries: seeding's, kept apart from the measurement's.
    seeding_problems = target.log_problems()
    try:
        print(f"  seeded {N_CONVERSATIONS} conversations at {target.base}", flush=True)
        results = await measure(target, args)
    finally:
        problems = target.log_problems()[len(seeding_problems) :]
        target.stop()
    load_after = os.getloadavg()
    print(f"  load average {load_before[0]:.2f} -> {load_after[0]:.2f}", flush=True)
    return {
        "started": started,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "log_problems_seeding": seeding_problems[:20],
        "log_problem_count_seeding": len(seeding_problems),
        "log_problems": problems[:20],
        "log_problem_count": len(problems),
        **results,
    }


# --- the comparison ----------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def compare(sides: dict[str, Any]) -> dict[str, Any]:
    """jobchat/Synapse: throughput, messages per CPU-second (server + backends), and for reads
    requests per CPU-second and latency (Synapse's over jobchat's: above 1, jobchat is
    faster)."""
    jc, sy = sides.get("jobchat"), sides.get("synapse")
    if not jc or not sy:
        return {}
    sends = {}
    for c, mine in jc["sends"].items():
        theirs = sy["sends"].get(c)
        if not theirs:
            continue
        a, b = mine["median"], theirs["median"]
        sends[c] = {
            "messages_per_second": _ratio(a["messages_per_second"], b["messages_per_second"]),
            "messages_per_cpu_second": _ratio(
                b["total_cpu_ms_per_message"], a["total_cpu_ms_per_message"]
            ),
            "latency_p50_synapse_over_jobchat": _ratio(b["latency_ms_p50"], a["latency_ms_p50"]),
        }
    reads = {}
    pairs = {"inbox": "inbox", "history": "history", "inbox_sliding_sync": "inbox"}
    for theirs_name, mine_name in pairs.items():
        a, b = jc["reads"].get(mine_name), sy["reads"].get(theirs_name)
        if not a or not b:
            continue
        reads[theirs_name] = {
            "requests_per_cpu_second": _ratio(
                b["total_cpu_ms_per_request"], a["total_cpu_ms_per_request"]
            ),
            "latency_p50_synapse_over_jobchat": _ratio(b["latency_ms_p50"], a["latency_ms_p50"]),
            "latency_p99_synapse_over_jobchat": _ratio(b["latency_ms_p99"], a["latency_ms_p99"]),
        }
    return {"sends": sends, "reads": reads}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def send_table(dialect: str, sides: dict[str, Any], comparison: dict[str, Any]) -> list[str]:
    lines = [
        f"Sends on {dialect} (median of rounds; CPU in ms per message; x = jobchat/Synapse)",
        "",
        "| c | side | msg/s | server CPU | backends CPU | total CPU | p50 ms | p99 ms | failed "
        "| others' cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in sorted({int(c) for s in sides.values() for c in s["sends"]}):
        for name in ("synapse", "jobchat"):
            entry = sides.get(name, {}).get("sends", {}).get(str(c))
            if entry:
                m = entry["median"]
                lines.append(
                    f"| {c} | {name} | {_fmt(m['messages_per_second'])} | "
                    f"{_fmt(m['server_cpu_ms_per_message'])} | "
                    f"{_fmt(m['db_backend_cpu_ms_per_message'])} | "
                    f"{_fmt(m['total_cpu_ms_per_message'])} | {_fmt(m['latency_ms_p50'])} | "
                    f"{_fmt(m['latency_ms_p99'])} | {entry['failed']} | "
                    f"{_fmt(entry.get('other_processes_cpu_cores_max'))} |"
                )
        ratio = comparison.get("sends", {}).get(str(c))
        if ratio:
            lines.append(
                f"| {c} | **x** | **{_fmt(ratio['messages_per_second'])}** | | | "
                f"**{_fmt(ratio['messages_per_cpu_second'])}** (msg per CPU-s) | "
                f"{_fmt(ratio['latency_p50_synapse_over_jobchat'])} (Synapse/jobchat) | | | |"
            )
    return lines


def read_table(dialect: str, sides: dict[str, Any], comparison: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"Reads on {dialect} (sequential, staff 0; CPU in ms per request; equivalents, not "
        "identical work)",
        "",
        "| read | side | p50 ms | p99 ms | server CPU | backends CPU | total CPU | others' cores "
        "| answer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = (
        ("inbox", "synapse", "inbox", "/sync, no since, timeline 1, all rooms"),
        ("inbox", "jobchat", "inbox", "GET /conversations, first page"),
        ("inbox", "synapse", "inbox_sliding_sync", "sliding sync, rooms 0..49, timeline 1"),
        ("history", "synapse", "history", "/messages dir=b limit=50"),
        ("history", "jobchat", "history", "GET …/messages, newest 50"),
    )
    for read, name, key, label in rows:
        r = sides.get(name, {}).get("reads", {}).get(key)
        if not r:
            continue
        answer = ", ".join(f"{k} {v}" for k, v in r["answer"].items() if k != "status")
        lines.append(
            f"| {read} | {name}: {label} | {_fmt(r['latency_ms_p50'])} | "
            f"{_fmt(r['latency_ms_p99'])} | {_fmt(r['server_cpu_ms_per_request'])} | "
            f"{_fmt(r['db_backend_cpu_ms_per_request'])} | {_fmt(r['total_cpu_ms_per_request'])}"
            f" | {_fmt(r.get('other_processes_cpu_cores'))} | {answer} |"
        )
    for key, ratio in comparison.get("reads", {}).items():
        lines.append(
            f"| {key} | **x** (jobchat vs Synapse) | "
            f"{_fmt(ratio['latency_p50_synapse_over_jobchat'])} | "
            f"{_fmt(ratio['latency_p99_synapse_over_jobchat'])} | | | "
            f"**{_fmt(ratio['requests_per_cpu_second'])}** (req per CPU-s) | | |"
        )
    return lines


def context_lines(sides: dict[str, Any]) -> list[str]:
    lines = [""]
    for name, side in sides.items():
        before, after = side["loadavg_before"][0], side["loadavg_after"][0]
        lines.append(
            f"{name}: started {side['started']}, load average {before:.2f} -> {after:.2f}, "
            f"idle CPU {side['idle']['server_cpu_ms_per_second']} ms/s "
            f"(+ backends {side['idle']['db_backend_cpu_ms_per_second']}), "
            f"{side['messages_sent']} messages sent, "
            f"error lines in its log: {side['log_problem_count_seeding']} while seeding, "
            f"{side['log_problem_count']} while measuring"
        )
        lines.extend(f"  log: {problem[:300]}" for problem in side["log_problems"][:5])
        busy = _busy_stretches(side)
        if busy:
            lines.append(
                f"  WARNING: other processes used over {BUSY_CORES} cores during "
                + ", ".join(busy)
                + ": those figures are suspect"
            )
    return lines


def _busy_stretches(side: dict[str, Any]) -> list[str]:
    busy = [
        f"sends c={c}"
        for c, entry in side["sends"].items()
        if entry.get("other_processes_cpu_cores_max", 0) > BUSY_CORES
    ]
    busy += [
        name
        for name, read in side["reads"].items()
        if read.get("other_processes_cpu_cores", 0) > BUSY_CORES
    ]
    return busy


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 8, 32],
        help="senders at once, comma-separated (default 1,8,32)",
    )
    parser.add_argument("--sends", type=int, default=500, help="sends per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=100, help="sends before the rounds, per c")
    parser.add_argument("--requests", type=int, default=300, help="requests per read measured")
    parser.add_argument(
        "--history-fill",
        type=int,
        default=HISTORY_LIMIT,
        help="messages every conversation has before the reads",
    )
    parser.add_argument("--synapse-python", default="/tmp/synapse/bin/python")
    parser.add_argument("--only", choices=("synapse", "jobchat"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"synapse-{args.database}.json"
    # --only replaces one side of an earlier run's file, keeping the other.
    sides: dict[str, Any] = {}
    if args.only and path.exists():
        sides = json.loads(path.read_text()).get("sides", {})
    for side in (args.only,) if args.only else ("synapse", "jobchat"):
        with tempfile.TemporaryDirectory(prefix=f"jobchat-vs-{side}-") as tmp:
            sides[side] = asyncio.run(run_side(side, args, Path(tmp)))
            sides[side]["args"] = dict(vars(args))
            sides[side]["code"] = code_version()
    comparison = compare(sides)
    report = [
        *send_table(args.database, sides, comparison),
        *read_table(args.database, sides, comparison),
        *context_lines(sides),
    ]
    print("\n" + "\n".join(report))
    out = {
        "database": args.database,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "synapse_version_wanted": SYNAPSE_VERSION,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "sides": sides,
        "comparison": comparison,
        "report": report,
    }
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
