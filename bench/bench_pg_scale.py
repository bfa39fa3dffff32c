"""Do sends scale with concurrency? msg/s, latency and CPU per message at c=1, 8 and 32.

Run from the project root:

    .venv/bin/python bench/bench_pg_scale.py
    .venv/bin/python bench/bench_pg_scale.py --processes 2
    .venv/bin/python bench/bench_pg_scale.py --database sqlite

It starts real ``jobchat serve`` processes (``--processes``, default 1, on different ports and
one database) on PostgreSQL (``--database``, default the database ``jc_pgscale_bench``, whose
public schema is dropped and recreated first, as bench_send does) or on SQLite (``sqlite``: a
file in a temporary directory), seeds through the integration API the world bench_stream seeds
(``--staff`` staff in every conversation, one candidate in each of ``--conversations``
application conversations; or, with ``--teams N``, N jobs each with a team of ``--staff`` of its
own and the conversations spread over them, so that sends into different teams' conversations
share no user's unread totals), then, for each concurrency in ``--levels`` (default 1,8,32), runs a
load generator in a separate process: that many clients (aiohttp), each POSTing messages one
after another for ``--seconds`` (after ``--warmup`` seconds not counted), spread over the
conversations in turn and over the server processes in turn, three in four from staff and one
in four from the conversation's candidate, each with an idempotency key. Per level it reports
messages a second, p50/p99 latency, the server processes' CPU per message and PostgreSQL's
backends' CPU per message (from /proc, all backends of the database: the servers' and the
sequencer's), the statuses other than 201 (or 200), the machine's load average, and what the
database's active backends were doing (sampled from pg_stat_activity every 20 ms: running, or
waiting for the write lock, a row, a commit's flush…). The runs are printed and written to
``bench/results/pg-scale-<db>[-pN].json``.

The machine is shared: throughput is wall-clock and noisy, so run it several times and compare
medians; CPU per message is the steadier signal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_stream import (
    Servers,
    pct,
    prepare_postgres,
    processes_matching,
    seed,
    start_server,
)
from seeding import sqlalchemy_url

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/jc_pgscale_bench"


# --- the load generator (a process of its own) ---------------------------------------------------


def run_load(plan: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_load(plan))


async def _load(plan: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    clients: int = plan["clients"]
    bases: list[str] = plan["bases"]
    staff: list[str] = plan["staff_tokens"]
    candidates: list[str] = plan["candidate_tokens"]
    conversations: list[int] = plan["conversations"]
    warmup_until = time.monotonic() + plan["warmup"]
    stop_at = warmup_until + plan["seconds"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    run_id = uuid.uuid4().hex[:8]
    counted = 0
    cpu0 = os.times()

    async def client(k: int, session: aiohttp.ClientSession) -> None:
        nonlocal counted
        seq = k
        while True:
            started = time.monotonic()
            if started >= stop_at:
                return
            index = seq % len(conversations)
            if seq % 4 == 3:
                token = candidates[index]
            elif plan["teams"]:
                token = staff[index]  # a member of that conversation's own team
            else:
                token = staff[seq % len(staff)]
            base = bases[seq % len(bases)]
            body = {"body": f"pgscale {run_id} {seq}", "idempotency_key": f"{run_id}-{seq}"}
            async with session.post(
                f"{base}/api/v1/conversations/{conversations[index]}/messages",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                await response.read()
                status = response.status
            done = time.monotonic()
            if started >= warmup_until and done <= stop_at:
                counted += 1
                latencies.append((done - started) * 1000)
                if status not in (200, 201):
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
            seq += clients

    connector = aiohttp.TCPConnector(limit=clients * 2)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(k, session) for k in range(clients)))
    cpu1 = os.times()
    latencies.sort()
    return {
        "sends": counted,
        "msg_per_s": counted / plan["seconds"],
        "p50_ms": round(pct(latencies, 50), 2) if latencies else None,
        "p99_ms": round(pct(latencies, 99), 2) if latencies else None,
        "statuses": statuses,
        "load_generator_cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 3),
    }


# --- the driver ----------------------------------------------------------------------------------


def backends(database: str | None) -> dict[int, float]:
    if database is None:
        return {}
    return processes_matching(lambda cmd: cmd.startswith("postgres: ") and f" {database} " in cmd)


class WaitSampler(threading.Thread):
    """What the database's active backends are doing, sampled every 20 ms: running, or waiting
    and for what (``Lock:advisory`` is the write lock, ``Lock:transactionid`` a row another
    transaction holds, ``IO:WALSync`` a commit's flush…). Where the sends queue, whatever the
    machine's load; CPU-bound runs on a shared machine hide it in msg/s."""

    def __init__(self, url: str, database: str) -> None:
        super().__init__(daemon=True)
        from sqlalchemy import create_engine

        self.engine = create_engine(sqlalchemy_url(url))
        self.database = database
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') FROM "
            "pg_stat_activity WHERE datname = :db AND state = 'active' AND pid <> pg_backend_pid()"
        )
        with self.engine.connect() as conn:
            while not self.done.wait(0.02):
                self.counts.update(conn.scalars(query, {"db": self.database}))
                self.samples += 1
                conn.rollback()
        self.engine.dispose()

    def summary(self) -> dict[str, float]:
        """Backends in each state, on average over the samples."""
        return {
            state: round(n / max(1, self.samples), 2) for state, n in self.counts.most_common(8)
        }


def level(
    args: argparse.Namespace,
    servers: Servers,
    world: Any,
    clients: int,
    pg_database: str | None,
    workdir: Path,
) -> dict[str, Any]:
    plan = {
        "clients": clients,
        "bases": servers.bases,
        "staff_tokens": world.staff_tokens,
        "candidate_tokens": world.candidate_tokens,
        "conversations": world.conversations,
        "warmup": args.warmup,
        "seconds": args.seconds,
        "teams": args.teams,
    }
    plan_file = workdir / f"plan-{clients}.json"
    plan_file.write_text(json.dumps(plan))
    load = subprocess.Popen(
        [sys.executable, __file__, "--load-plan", str(plan_file)],
        stdout=subprocess.PIPE,
    )
    # CPU is read over the measured window only (not the warmup).
    time.sleep(args.warmup)
    sampler = None
    if pg_database is not None:
        sampler = WaitSampler(args.database, pg_database)
        sampler.start()
    server0, pg0, at0 = servers.cpu(), backends(pg_database), time.monotonic()
    time.sleep(args.seconds)
    server1, pg1, at1 = servers.cpu(), backends(pg_database), time.monotonic()
    if sampler is not None:
        sampler.done.set()
        sampler.join()
    out, _ = load.communicate(timeout=args.seconds + 120)
    result: dict[str, Any] = json.loads(out)
    sends = max(1, result["sends"])
    pg_cpu = sum(cpu - pg0.get(pid, 0.0) for pid, cpu in pg1.items())
    result |= {
        "clients": clients,
        "server_cpu_ms_per_msg": round((server1 - server0) * 1000 / sends, 3),
        "pg_cpu_ms_per_msg": round(pg_cpu * 1000 / sends, 3) if pg_database else None,
        "window_s": round(at1 - at0, 2),
        # The sampler's own backend is left out of the CPU above only approximately (it is one
        # of the database's backends): a cheap query every 20 ms.
        "pg_backends": sampler.summary() if sampler is not None else None,
        "loadavg": list(os.getloadavg()),
    }
    return result


@dataclass
class TeamsWorld:
    staff_tokens: list[str]  # one per conversation, in order: a staff member in it
    candidate_tokens: list[str]
    conversations: list[int]


async def seed_teams(base: str, api_key: str, teams: int, staff: int, conversations: int) -> Any:
    """``teams`` jobs, each with a hiring team of its own (``staff`` members, no admin), and the
    conversations spread over the jobs in turn: sends into different teams' conversations
    share no user rows (no unread totals in common), unlike the default world."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def call(method: str, path: str, body: Any, token: str = api_key) -> Any:
            r = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            if r.status_code not in (200, 201):
                raise SystemExit(f"{method} {path}: {r.status_code} {r.text}")
            return r.json()

        await call("PUT", "/api/v1/organizations/bench-employer", {"name": "B", "kind": "employer"})
        team_tokens: list[list[str]] = []
        for t in range(teams):
            names = [f"bench-staff-{t}-{i}" for i in range(staff)]
            for ext in names:
                user = {"name": ext, "email": f"{ext}@bench.example"}
                user |= {"organization": "bench-employer", "role": "member"}
                await call("PUT", f"/api/v1/users/{ext}", user)
            job = {"title": f"Team {t}", "employer": "bench-employer", "team": names}
            await call("PUT", f"/api/v1/jobs/bench-job-{t}", job)
            team_tokens.append(
                [(await call("POST", f"/api/v1/users/{e}/tokens", None))["token"] for e in names]
            )
        world = TeamsWorld([], [], [])
        for i in range(conversations):
            t = i % teams
            ext = f"bench-candidate-{i}"
            await call(
                "PUT", f"/api/v1/candidates/{ext}", {"name": ext, "email": f"{ext}@b.example"}
            )
            app = {"job": f"bench-job-{t}", "candidate": ext, "stage": "interview"}
            await call("PUT", f"/api/v1/applications/bench-app-{i}", app)
            world.candidate_tokens.append(
                (await call("POST", f"/api/v1/candidates/{ext}/tokens", None))["token"]
            )
            start = {"kind": "application", "application": f"bench-app-{i}"}
            conv = await call("POST", "/api/v1/conversations", start, team_tokens[t][0])
            world.conversations.append(int(conv["id"]))
            world.staff_tokens.append(team_tokens[t][(i // teams) % staff])
        return world


async def _seed(servers: Servers, api_key: str, args: argparse.Namespace) -> Any:
    if args.teams:
        return await seed_teams(servers.base, api_key, args.teams, args.staff, args.conversations)
    return await seed(servers.base, api_key, args.staff, args.conversations)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    api_key = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    sqlite = args.database == "sqlite"
    database = f"sqlite:///{workdir / 'scale.db'}" if sqlite else args.database
    env |= {
        "JOBCHAT_DATABASE_URL": database,
        "JOBCHAT_API_KEY": api_key,
        # A few staff send thousands a minute: the per-user limit would answer 429.
        "JOBCHAT_SEND_RATE_PER_MINUTE": str(10**9),
    }
    pg_database = None if sqlite else prepare_postgres(database)
    if args.redis:
        env |= {"JOBCHAT_REDIS_URL": args.redis, "JOBCHAT_REDIS_PREFIX": f"jcscale-{uuid.uuid4()}"}
    servers = Servers([])
    try:
        for i in range(args.processes):
            servers.members.append(start_server(workdir, env, 4096, f"server-{i + 1}"))
        world = asyncio.run(_seed(servers, api_key, args))
        levels = []
        for clients in [int(c) for c in args.levels.split(",")]:
            result = level(args, servers, world, clients, pg_database, workdir)
            print(json.dumps(result), flush=True)
            levels.append(result)
        problems = [
            line
            for server in servers.members
            for line in server.log.read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]
    finally:
        for server in servers.members:
            server.stop()
    return {
        "database": "sqlite" if sqlite else "postgresql",
        "processes": args.processes,
        "staff": args.staff,
        "conversations": args.conversations,
        "teams": args.teams,
        "seconds": args.seconds,
        "levels": levels,
        "server_log_problems": problems[:20],
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="postgresql://… or sqlite")
    parser.add_argument("--processes", type=int, default=1, help="server processes")
    parser.add_argument("--levels", default="1,8,32", help="concurrent clients, in turn")
    parser.add_argument("--seconds", type=float, default=15, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first")
    parser.add_argument("--staff", type=int, default=10, help="staff users in every conversation")
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument(
        "--teams",
        type=int,
        default=0,
        help="N jobs with a team of --staff each, conversations spread over them (no shared "
        "staff); default 0: --staff staff in every conversation",
    )
    parser.add_argument("--redis", help="redis://… : the processes wake each other through it")
    parser.add_argument("--out", help="results file (default: bench/results/pg-scale-….json)")
    parser.add_argument("--load-plan", help=argparse.SUPPRESS)  # the load generator's own run
    args = parser.parse_args(argv)
    if args.load_plan:
        print(json.dumps(run_load(json.loads(Path(args.load_plan).read_text()))))
        return 0
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="jc-pgscale-") as tmp:
        results = run(args, Path(tmp))
    results["loadavg_after"] = list(os.getloadavg())
    name = "sqlite" if results["database"] == "sqlite" else "pg"
    suffix = f"-p{args.processes}" if args.processes > 1 else ""
    out = Path(args.out or f"bench/results/pg-scale-{name}{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(
        "\n| c | msg/s | p50 ms | p99 ms | server CPU ms/msg | PG CPU ms/msg | other statuses "
        "| load |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results["levels"]:
        print(
            f"| {r['clients']} | {r['msg_per_s']:.0f} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['server_cpu_ms_per_msg']} | {r['pg_cpu_ms_per_msg']} | {r['statuses'] or '-'} | "
            f"{r['loadavg'][0]:.1f} |"
        )
    for r in results["levels"]:
        print(f"c={r['clients']}: active backends {r['pg_backends']}")
    if results["server_log_problems"]:
        print("server log problems:", *results["server_log_problems"], sep="\n  ")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
