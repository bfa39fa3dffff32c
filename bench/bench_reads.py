"""Inbox and history pages THROUGH HTTP on 1,000,000 messages: a real `jobchat serve`, c=1.

Run from the project root:

    .venv/bin/python bench/bench_reads.py --database sqlite:///bench/results/reads.db
    .venv/bin/python bench/bench_reads.py --database \
        postgresql://postgres@127.0.0.1:5432/jc_reads_bench
    # later runs on the same data (seeding takes minutes):
    .venv/bin/python bench/bench_reads.py --database sqlite:///bench/results/reads.db --reuse

The data set is bench_inbox.py's (its ``seed``: 1M messages in 10,000 conversations, the
benchmark user ``bench_admin`` in 2,000 of them). With ``--reuse`` an already seeded database is
kept (it is seeded when it has no ``bench_admin``). A user token for ``bench_admin`` is written
directly, then ``jobchat serve`` starts as a subprocess (as bench_stream/bench_email start it: a
temporary working directory, no ``JOBCHAT_*`` of the caller's) on that database.

This process is the client: one keep-alive HTTP/1.1 connection (``http.client``, lighter than
httpx so that less of the measured time is the client's), requests one after another (c=1),
each endpoint in its own block: ``--warmup`` requests not counted, then ``--requests`` timed.
Endpoints: the inbox first page (``GET /api/v1/conversations?limit=50``), its unread filter, its
11th page (a cursor), the history's newest page of a 150-400 message application conversation
(``GET /api/v1/conversations/{id}/messages?limit=50``) and a page back (``before=``).

Per endpoint it reports the client-side latency p50/p99/max (connection reused, so request to
last byte of the response), and the server's CPU per request: the server process's user+system
time from /proc over the timed block divided by the requests, plus on PostgreSQL the CPU of the
database's backends. The statements each request sends are counted in process (the app behind
Starlette's TestClient on the same database, an SQL event listener), one request per endpoint.

``--py-spy DIR`` also records a py-spy profile of the server (``--idle --gil`` off: all
samples) during each endpoint's timed block, as speedscope JSON in DIR, and prints the top
own-time functions. Results go to ``bench/results/reads-<dialect>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench_inbox import (
    BENCH_EXT_ID,
    INVARIANTS,
    PAGE,
    Targets,
    check_invariants,
    find_targets,
    seed,
)
from bench_stream import cpu_seconds, processes_matching, start_server
from seeding import sqlalchemy_url
from sqlalchemy import Engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from jobchat.auth.actions import do_create_credential
from jobchat.auth.models import CredentialKind
from jobchat.db.engine import Database
from jobchat.directory.models import User, UserKind

GOAL_P99_MS = 5.0


# --- the data --------------------------------------------------------------------------------


def seeded(url: str) -> bool:
    """Whether the database already holds bench_inbox's data set."""
    db = Database(url)
    try:
        with db.read() as session:
            found = session.scalar(
                select(User.id).where(User.kind == UserKind.staff, User.ext_id == BENCH_EXT_ID)
            )
            return found is not None
    except (OperationalError, ProgrammingError):
        return False
    finally:
        db.dispose()


def user_token(db: Database, user_id: int) -> str:
    with db.write() as session:
        return do_create_credential(
            session,
            user=session.get_one(User, user_id),
            kind=CredentialKind.token,
            now=datetime.now(UTC),
        )


def endpoints(t: Targets, history_before: int) -> dict[str, str]:
    conv = f"/api/v1/conversations/{t.history_conv}/messages"
    return {
        "inbox (all)": f"/api/v1/conversations?limit={PAGE}",
        "inbox (unread)": f"/api/v1/conversations?limit={PAGE}&filter=unread",
        "inbox (page 11)": f"/api/v1/conversations?limit={PAGE}&cursor={t.deep_cursor}",
        "history (newest)": f"{conv}?limit={PAGE}",
        "history (before=)": f"{conv}?limit={PAGE}&before={history_before}",
    }


def token_and_paths(url: str, only: str) -> tuple[str, dict[str, str]]:
    """A new token of the benchmark user, and the endpoints' paths (those whose names start
    with one of ``only``'s comma-separated prefixes, or all)."""
    db = Database(url)
    targets = find_targets(db)
    with db.read() as session:
        from jobchat.messages.queries import history

        user = session.get_one(User, targets.user_id)
        _, before = history(session, user, targets.history_conv, before=None, limit=PAGE)
    assert before is not None
    token = user_token(db, targets.user_id)
    db.dispose()
    paths = endpoints(targets, before)
    if only:
        wanted = tuple(p.strip() for p in only.split(","))
        paths = {k: v for k, v in paths.items() if k.startswith(wanted)}
    return token, paths


# --- statements per request (in process) -----------------------------------------------------


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:90])

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def statements_per_request(url: str, token: str, paths: dict[str, str]) -> dict[str, Any]:
    """Each endpoint once through the app in process (after one warm-up request each, so the
    token is known and the caches are warm), counting the SQL statements it sends."""
    from jobchat.app import create_app
    from jobchat.config import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    settings = Settings(database_url=url, _env_file=None)
    db = Database(sqlalchemy_url(url))
    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, db=db)) as client:
        for name, path in paths.items():
            assert client.get(path, headers=headers).status_code == 200
            with counting(db.engine) as seen:
                response = client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            out[name] = {"statements": len(seen), "sql": seen}
    db.dispose()
    return out


# --- the client ------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Block:
    name: str
    path: str
    latency_ms: list[float]
    server_cpu_s: float
    postgres_cpu_s: float
    response_bytes: int
    items: int

    def summary(self) -> dict[str, Any]:
        n = len(self.latency_ms)
        return {
            "name": self.name,
            "path": self.path,
            "n": n,
            "p50_ms": round(pct(self.latency_ms, 50), 3),
            "p99_ms": round(pct(self.latency_ms, 99), 3),
            "max_ms": round(max(self.latency_ms), 3),
            "mean_ms": round(sum(self.latency_ms) / n, 3),
            "server_cpu_ms_per_request": round(self.server_cpu_s * 1000 / n, 3),
            "postgres_cpu_ms_per_request": round(self.postgres_cpu_s * 1000 / n, 3),
            "response_bytes": self.response_bytes,
            "items": self.items,
        }


class Client:
    """One keep-alive connection; ``get`` returns (status, body, seconds to the last byte)."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def get(self, path: str) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


def postgres_cpu(database: str | None) -> dict[int, float]:
    if database is None:
        return {}
    name = f" {database} "
    return processes_matching(lambda c: c.startswith("postgres: ") and name in c)


def run_block(
    client: Client,
    server_pid: int,
    name: str,
    path: str,
    requests: int,
    warmup: int,
    pg_database: str | None,
    profile_dir: Path | None,
) -> Block:
    for _ in range(warmup):
        status, body, _ = client.get(path)
        assert status == 200, body[:500]
    items = len(json.loads(body)["items"])
    spy = None
    if profile_dir is not None:
        out = profile_dir / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}.json"
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                *("record", "--pid", str(server_pid), "--rate", "500", "--nonblocking"),
                *("--format", "speedscope", "--output", str(out)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    latencies: list[float] = []
    pg0 = postgres_cpu(pg_database)
    cpu0 = cpu_seconds(server_pid)
    for _ in range(requests):
        status, body, seconds = client.get(path)
        if status != 200:
            raise SystemExit(f"{path}: {status} {body[:500]!r}")
        latencies.append(seconds * 1000)
    cpu1 = cpu_seconds(server_pid)
    pg1 = postgres_cpu(pg_database)
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        spy.wait(timeout=60)
    pg = sum(cpu - pg0.get(pid, 0.0) for pid, cpu in pg1.items())
    block = Block(name, path, latencies, cpu1 - cpu0, pg, len(body), items)
    s = block.summary()
    print(
        f"  {name:<20} n {s['n']:5d}  p50 {s['p50_ms']:6.2f}  p99 {s['p99_ms']:6.2f}"
        f"  max {s['max_ms']:7.2f} ms  | server CPU {s['server_cpu_ms_per_request']:.2f}"
        f" + PG {s['postgres_cpu_ms_per_request']:.2f} ms/request  ({items} items,"
        f" {len(body)} bytes)",
        flush=True,
    )
    return block


def profile_top(path: Path, top: int = 25) -> list[tuple[str, float]]:
    """Own-time share of the busiest functions in a py-spy speedscope file (the server's
    threads together, idle samples left out by py-spy)."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    own: Counter[str] = Counter()
    total = 0.0
    for prof in data["profiles"]:
        for sample, weight in zip(prof["samples"], prof["weights"], strict=True):
            if not sample:
                continue
            f = frames[sample[-1]]
            own[f"{f['name']} ({Path(f.get('file', '?')).name}:{f.get('line', 0)})"] += weight
            total += weight
    return [(name, round(100 * w / total, 1)) for name, w in own.most_common(top)] if total else []


def table(blocks: list[Block], statements: dict[str, Any]) -> str:
    lines = [
        "| endpoint | n | p50 ms | p99 ms | max ms | server CPU ms/req | PG CPU ms/req "
        "| statements |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in blocks:
        s = b.summary()
        lines.append(
            f"| {b.name} | {s['n']} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['max_ms']:.2f}"
            f" | {s['server_cpu_ms_per_request']:.2f} | {s['postgres_cpu_ms_per_request']:.2f}"
            f" | {statements.get(b.name, {}).get('statements', '?')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", default="sqlite:///bench/results/reads.db")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument("--only", default="", help="comma-separated endpoint names' prefixes")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR")
    parser.add_argument("--seed-only", action="store_true", help="seed (unless --reuse), stop")
    args = parser.parse_args(argv)

    url = sqlalchemy_url(args.database)
    dialect = make_url(url).get_backend_name()
    pg_database = make_url(url).database if dialect == "postgresql" else None
    if dialect == "sqlite":
        # The server runs in a temporary directory: give it an absolute path.
        sqlite_file = Path(str(make_url(url).database)).resolve()
        args.database = f"sqlite:///{sqlite_file}"
        url = sqlalchemy_url(args.database)
    print(f"jobchat reads benchmark (HTTP) on {dialect} ({make_url(url).render_as_string()})")
    seed_report = None
    if not (args.reuse and seeded(url)):
        print("seeding…", flush=True)
        seed_report = seed(url, args.seed)
        db = Database(url)
        check_invariants(db)
        print(f"  seeded in {seed_report.seconds:.1f} s; {len(INVARIANTS)} invariants hold")
        db.dispose()
    if args.seed_only:
        return 0
    token, paths = token_and_paths(url, args.only)

    print("statements per request (in process)…", flush=True)
    statements = statements_per_request(args.database, token, paths)
    for name, s in statements.items():
        print(f"  {name:<20} {s['statements']} statements")

    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jc-reads-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
        env |= {
            "JOBCHAT_DATABASE_URL": args.database,
            "JOBCHAT_API_KEY": secrets.token_urlsafe(24),
        }
        server = start_server(Path(tmp), env, 4096)
        print(f"server pid {server.pid} at {server.base}", flush=True)
        client = Client(server.base, token)
        blocks: list[Block] = []
        load_before = os.getloadavg()
        try:
            for name, path in paths.items():
                blocks.append(
                    run_block(
                        client,
                        server.pid,
                        name,
                        path,
                        args.requests,
                        args.warmup,
                        pg_database,
                        args.py_spy,
                    )
                )
        finally:
            load_after = os.getloadavg()
            client.close()
            server.stop()
            problems = server.log_problems()
        if problems:
            print("server log problems:\n" + "\n".join(problems[:20]))

    profiles: dict[str, list[tuple[str, float]]] = {}
    if args.py_spy is not None:
        for b in blocks:
            f = args.py_spy / f"{b.name.replace(' ', '_').replace('(', '').replace(')', '')}.json"
            if f.exists():
                profiles[b.name] = profile_top(f)
                print(f"\nprofile of {b.name} (own time, % of samples):")
                for fn, share in profiles[b.name][:15]:
                    print(f"  {share:5.1f}%  {fn}")

    md = table(blocks, statements)
    print(f"\n## {dialect} (through HTTP, c=1)\n\n{md}")
    goal = {
        name: round(b.summary()["p99_ms"], 2) < GOAL_P99_MS
        for name, b in ((b.name, b) for b in blocks)
    }
    print(f"\nGoal p99 < {GOAL_P99_MS} ms: {goal}")
    print(f"Load average (1 min): {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    out = {
        "database": dialect,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "seeded_seconds": seed_report.seconds if seed_report else None,
        "results": [b.summary() for b in blocks],
        "statements": statements,
        "goal_p99_ms": GOAL_P99_MS,
        "goal_met": goal,
        "profiles": profiles,
        "table_markdown": md,
    }
    written = results_dir / f"reads-{dialect}.json"
    written.write_text(json.dumps(out, indent=2))
    print(f"written: {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
