"""Instructions per inbox and history page, counted by valgrind's callgrind: a measure of the
server's own work that does not move with the machine's noise.

Run from the project root, on bench_reads.py's data set (seeded there: ``--seed-only``):

    .venv/bin/python bench/bench_instructions.py --database sqlite:///bench/results/reads.db
    .venv/bin/python bench/bench_instructions.py \
        --database postgresql://postgres@127.0.0.1:5432/jc_reads_bench

On a shared machine one change worth a few percent of a page drowns in the noise of wall and CPU
times (bench_reads.py's SQLite inbox p50 moved by two thirds between two runs of the same code
on the thirteenth stop's machine). Callgrind counts the instructions the process executes
instead: the same count, within 0.7%, run after run, whatever else the machine does. What it
does not see: PostgreSQL's work (in its backends), and what an instruction costs (cache misses,
system calls' time); it is a measure for before and after, not for the goals, which
bench_reads.py times.

Each endpoint of bench_reads.py (the inbox's first page, its unread filter, its 11th page, a
history's newest page and one back) is requested through the app in one process run under
callgrind: GET requests handed straight to the ASGI app (``create_app``: every middleware,
FastReads, the route, the JSON) on asyncio's own loop (the server runs uvloop), with no HTTP
server in front and without the lifespan's background tasks (the worker, the stream's poll),
which would add instructions of their own. The token cache keeps the benchmark's token for an
hour, so that every request takes the same path (valgrind runs the process some fifty times
slower, and the cache's five seconds would lapse). After every endpoint's warm-up, each
endpoint's ``--requests`` requests run inside ``sys.call_tracing``, after which callgrind
writes its counts out and empties them (``--dump-after``; ``--zero-before`` empties the calling
thread's before it): each dump but a first, empty one is one endpoint's requests, the event
loop's and the thread pool's instructions together.

Measuring an older commit: from a worktree of it (``git worktree add /tmp/old <commit>``),
``PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/bench/bench_instructions.py ...`` with this
script copied there if the commit has none.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_reads import seeded, token_and_paths
from seeding import sqlalchemy_url

from jobchat.db.engine import Database

WARMUP = 20
_SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)
# The C function the child calls each path's requests through (sys.call_tracing): callgrind
# zeroes the calling thread's counts before it and dumps (and empties) them all after it.
_MARK = "_PyEval_CallTracing"


# --- the child: requests through the app, in this process --------------------------------------


async def _get(app: Any, path: str, token: str) -> int:
    """One GET through the ASGI app; its status."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def child(database: str, paths: list[str], token: str, requests: int) -> None:
    """Each path's warm-up, then each path's ``requests`` requests inside ``sys.call_tracing``
    (a C function nothing else calls): the parent's callgrind writes its counts out as that
    returns, so each dump holds one path's requests, the threads' work included."""
    from jobchat.app import create_app
    from jobchat.config import Settings

    settings = Settings(database_url=database, _env_file=None)
    app = create_app(settings, db=Database(sqlalchemy_url(database)))
    app.state.jobchat.tokens.ttl_seconds = 3600.0

    async def run(path: str, n: int) -> None:
        for _ in range(n):
            status = await _get(app, path, token)
            if status != 200:
                raise SystemExit(f"{path}: {status}")

    loop = asyncio.new_event_loop()
    for path in paths:
        loop.run_until_complete(run(path, WARMUP))
    # As `jobchat serve` does before serving: the import's objects are never collected again
    # (a full collection of them fell into the first endpoint's count).
    gc.collect()
    gc.freeze()
    # A first dump with nothing in it: callgrind zeroes only the calling thread's counts before
    # the mark, and a dump empties them all, so without it the thread pool's warm-up fell into
    # the first endpoint's count.
    sys.call_tracing(int, ())
    for path in paths:
        sys.call_tracing(loop.run_until_complete, (run(path, requests),))


# --- the parent: one run under callgrind, a dump per path --------------------------------------


def instructions(database: str, paths: list[str], token: str, requests: int) -> list[float]:
    """Instructions per request of each path, counted by callgrind."""
    with tempfile.TemporaryDirectory(prefix="jc-callgrind-") as tmp:
        out_file = Path(tmp) / "callgrind.out"
        ran = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out_file}",
                f"--zero-before={_MARK}",
                f"--dump-after={_MARK}",
                sys.executable,
                __file__,
                "--database",
                database,
                "--child",
                json.dumps(paths),
                "--token",
                token,
                "--requests",
                str(requests),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if ran.returncode != 0:
            raise SystemExit(f"callgrind run failed ({ran.returncode}):\n{ran.stderr[-2000:]}")
        counts = []
        for n in range(2, len(paths) + 2):  # the first dump is the empty one
            found = _SUMMARY.search(Path(f"{out_file}.{n}").read_text())
            assert found is not None, f"no summary in dump {n}"
            counts.append(int(found[1]) / requests)
        return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", default="sqlite:///bench/results/reads.db")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--only", default="", help="comma-separated endpoint names' prefixes")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--token", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.database, json.loads(args.child), args.token, args.requests)
        return 0

    url = sqlalchemy_url(args.database)
    if not seeded(url):
        raise SystemExit("not seeded: run bench/bench_reads.py --database ... --seed-only first")
    token, paths = token_and_paths(url, args.only)

    print(f"instructions per request (callgrind, {args.requests} requests each, in process)")
    counts = instructions(args.database, list(paths.values()), token, args.requests)
    results = dict(zip(paths, counts, strict=True))
    for name, count in results.items():
        print(f"  {name:<20} {count / 1e6:7.3f} M")
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    (results_dir / f"instructions-{dialect}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
