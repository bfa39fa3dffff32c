"""Sends while notifications go out: does a worker sending 1,000+ notification emails a minute
delay the messages people send?

Run from the project root:

    .venv/bin/python bench/bench_notify_sends.py
    .venv/bin/python bench/bench_notify_sends.py --database \
        postgresql://postgres@127.0.0.1:5432/jc_reads_mail

Like bench_email.py (whose pieces it uses): a real ``jobchat serve`` (a fresh SQLite file in a
temporary directory, or the PostgreSQL database given, its ``public`` schema dropped) with its
jobs worker off and JOBCHAT_NOTIFY_DELAY_SECONDS at 0, outgoing mail to a counting aiosmtpd
server in its own process, and N candidates (``--candidates``, default 500) seeded through the
integration API, each with an application and its conversation with the staff member.

Then the staff member POSTs app messages at a steady rate (``--rate``, default 20 a second, open
loop: each POST leaves on schedule whatever the earlier ones are doing), message *n* into
conversation *n* mod N, each one making its candidate's notification due at once:

(a) ``--seconds`` (default 30) with no worker running: the send latency without the
    notification load (the notifications pile up, unsent);
(b) the same with a ``jobchat worker`` process running (as deployed beside the server), which
    first works off (a)'s backlog and then keeps up with the new ones: at 20 sends a second that
    is up to 1,200 notifications a minute.

``--in-server``: the worker runs inside ``jobchat serve`` instead (JOBCHAT_RUN_WORKER=true), so
its write transactions queue with the sends on the server's own write turn rather than in
SQLite's busy handler; only step (b) is run then (there is no server without its worker).

For each step: the POST latency (client side, to the 201) p50/p99/max, the notifications the
SMTP server received during the step per minute, and the CPU of the server, the worker and (on
PostgreSQL) the database's backends. Results go to ``bench/results/notify-sends-<dialect>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bench_email import (
    EMAIL_FROM,
    REPLY_DOMAIN,
    Sink,
    World,
    backend_cpu,
    backend_delta,
    cpu_seconds,
    jobchat,
    latency,
    over_http,
    seed,
    start_server,
)
from seeding import reset_database, sqlalchemy_url
from sqlalchemy.engine import make_url


async def send_steadily(
    base: str, world: World, rate: float, seconds: float, first: int
) -> tuple[list[float], Counter[str]]:
    """POST ``rate`` app messages a second for ``seconds`` (open loop); the latencies in ms of
    those answered 201, and the answers (or errors) of those that were not."""
    latencies: list[float] = []
    failed: Counter[str] = Counter()
    n = int(rate * seconds)
    headers = {"Authorization": f"Bearer {world.staff_token}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base, timeout=60, trust_env=False, limits=limits
    ) as client:

        async def one(seq: int) -> None:
            conv = world.conversations[seq % len(world.conversations)]
            body = {"body": f"Message {seq}: could you confirm Tuesday at 10:00?"}
            t0 = time.perf_counter()
            try:
                response = await client.post(
                    f"/api/v1/conversations/{conv}/messages", json=body, headers=headers
                )
            except httpx.HTTPError as exc:
                failed[type(exc).__name__] += 1
                return
            if response.status_code == 201:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                failed[str(response.status_code)] += 1

        start = time.perf_counter()
        tasks = []
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(first + i)))
        await asyncio.gather(*tasks)
    return latencies, failed


def step(
    label: str,
    server_pid: int,
    worker_pid: int | None,
    sink: Sink,
    database: str | None,
    base: str,
    world: World,
    args: argparse.Namespace,
    first: int,
) -> dict[str, Any]:
    count0, t0 = sink.count, time.perf_counter()
    server0 = cpu_seconds(server_pid)
    worker0 = cpu_seconds(worker_pid) if worker_pid else 0.0
    db0 = backend_cpu(database)
    latencies, failed = asyncio.run(send_steadily(base, world, args.rate, args.seconds, first))
    wall = time.perf_counter() - t0
    sent = sink.count - count0
    out: dict[str, Any] = {
        "step": label,
        "sends": len(latencies),
        "sends_failed": dict(failed),
        "send_latency": latency(latencies),
        "wall_s": round(wall, 2),
        "notifications_received": sent,
        "notifications_per_minute": round(60 * sent / wall),
        "server_cpu_cores": round((cpu_seconds(server_pid) - server0) / wall, 3),
    }
    if worker_pid:
        out["worker_cpu_cores"] = round((cpu_seconds(worker_pid) - worker0) / wall, 3)
        if sent:
            out["worker_cpu_ms_per_notification"] = round(
                1000 * (cpu_seconds(worker_pid) - worker0) / sent, 2
            )
    if database:
        out["db_backends_cpu_cores"] = round(backend_delta(db0, database) / wall, 3)
    s = out["send_latency"]
    print(
        f"  {label:<22} sends {len(latencies)} (failed: {dict(failed)})  POST p50 {s['p50_ms']:.1f}"
        f"  p99 {s['p99_ms']:.1f}  max {s['max_ms']:.1f} ms  | notifications "
        f"{out['notifications_per_minute']}/min  server {out['server_cpu_cores']} cores"
        + (f"  worker {out['worker_cpu_cores']} cores" if worker_pid else ""),
        flush=True,
    )
    return out


def _drained(sink: Sink) -> dict[str, Any]:
    """Whether the worker kept up: how long the notifications still due take once the sends
    stop (until a second passes with none)."""
    t0 = time.perf_counter()
    settled = sink.count
    while time.perf_counter() - t0 < 60:
        time.sleep(1)
        if sink.count == settled:
            break
        settled = sink.count
    return {
        "drained_after_s": round(time.perf_counter() - t0, 1),
        "notifications_total": sink.count,
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = sqlalchemy_url(args.database)
    reset_database(url)
    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() == "postgresql" else None
    sink = Sink.start()
    api_key = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")} | {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": args.database,
        "JOBCHAT_API_KEY": api_key,
        "JOBCHAT_SEND_RATE_PER_MINUTE": "1000000",
        "JOBCHAT_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "JOBCHAT_EMAIL_FROM": EMAIL_FROM,
        "JOBCHAT_REPLY_DOMAIN": REPLY_DOMAIN,
        "JOBCHAT_NOTIFY_DELAY_SECONDS": "0",
        "JOBCHAT_RUN_WORKER": "true" if args.in_server else "false",
        "JOBCHAT_WORKER_CONCURRENCY": str(args.concurrency),
        "JOBCHAT_WORKER_POLL_SECONDS": "0.2",
    }
    server = start_server(workdir, env)
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    worker: subprocess.Popen[bytes] | None = None
    try:
        world, requests = asyncio.run(over_http(server.base, api_key, seed, args.candidates))
        print(f"seeded {len(world.conversations)} conversations ({requests} requests)", flush=True)
        n = int(args.rate * args.seconds)
        if args.in_server:
            out["with_worker"] = step(
                "worker in the server",
                server.process.pid,
                None,
                sink,
                database,
                server.base,
                world,
                args,
                0,
            )
            return out | _drained(sink)
        out["without_worker"] = step(
            "no worker", server.process.pid, None, sink, database, server.base, world, args, 0
        )
        env["JOBCHAT_PUBLIC_URL"] = server.base
        log = workdir / "worker.log"
        with log.open("wb") as handle:
            worker = subprocess.Popen(
                jobchat("worker"), env=env, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while " started" not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.01)
        out["with_worker"] = step(
            "jobchat worker running",
            server.process.pid,
            worker.pid,
            sink,
            database,
            server.base,
            world,
            args,
            n,
        )
        out |= _drained(sink)
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        server.stop()
        sink.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="sends a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="of each step")
    parser.add_argument("--concurrency", type=int, default=8, help="the worker's concurrency")
    parser.add_argument("--in-server", action="store_true", help="the worker inside serve")
    args = parser.parse_args(argv)
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jobchat-notify-sends-") as tmp:
        if args.database is None:
            args.database = f"sqlite:///{tmp}/notify.db"
        dialect = make_url(sqlalchemy_url(args.database)).get_backend_name()
        print(f"jobchat sends-under-notifications benchmark on {dialect}", flush=True)
        results = run(args, Path(tmp))
    out = {
        "database": dialect,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        **results,
    }
    suffix = "-in-server" if args.in_server else ""
    path = results_dir / f"notify-sends-{dialect}{suffix}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"written: {path}  (load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
