"""Instructions per inbox and history page, and per send, counted by valgrind's callgrind: a
measure of the server's own work that does not move with the machine's noise.

Run from the project root, the pages on bench_reads.py's data set (seeded there:
``--seed-only``), the sends in a new database of their own (``--database``'s, emptied):

    .venv/bin/python bench/bench_instructions.py --database sqlite:///bench/results/reads.db
    .venv/bin/python bench/bench_instructions.py \
        --database postgresql://postgres@127.0.0.1:5432/jc_reads_bench
    .venv/bin/python bench/bench_instructions.py --sends 100
    .venv/bin/python bench/bench_instructions.py --sends 100 \
        --database postgresql://postgres@127.0.0.1:5432/jc_send

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

With ``--sends N`` the same is done for ``POST /api/v1/conversations/{id}/messages`` (the
FastSend path), in bench_send.py's world (seeded through the integration API before the count)
and with its sends' pattern, the app's lifespan running: the hub hears every commit and
dispatches its events, as in a server, but nothing runs on a timer (no jobs worker; the
stream's poll, heartbeats and presence an hour apart). Each of ``--rounds`` rounds of N sends
is one dump.

Measuring an older commit: from a worktree of it (``git worktree add /tmp/old <commit>``),
``PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/bench/bench_instructions.py ...`` with this
script copied there if the commit has none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from bench_reads import seeded, token_and_paths
from bench_send import API_KEY, NO_TIMERS, World, author_of, seed
from seeding import reset_database, sqlalchemy_url

from jobchat.app import create_app
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.serving import settle_collector

WARMUP = 20
SEND_WARMUP = 50
_SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)
# The C function the child calls each path's requests through (sys.call_tracing): callgrind
# zeroes the calling thread's counts before it and dumps (and empties) them all after it.
_MARK = "_PyEval_CallTracing"


# --- the child: requests through the app, in this process --------------------------------------


def _scope(
    method: str, path: str, token: str, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    route, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {token}".encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }


async def _exchange(app: Any, scope: dict[str, Any], body: bytes) -> int:
    """One request through the ASGI app; its status."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _get(app: Any, path: str, token: str) -> int:
    """One GET through the ASGI app; its status."""
    return await _exchange(app, _scope("GET", path, token, []), b"")


def child(database: str, paths: list[str], token: str, requests: int) -> None:
    """Each path's warm-up, then each path's ``requests`` requests inside ``sys.call_tracing``
    (a C function nothing else calls): the parent's callgrind writes its counts out as that
    returns, so each dump holds one path's requests, the threads' work included."""
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


def _send_settings(database: str) -> Settings:
    """bench_send.py's: no limit on how fast one user sends. And nothing on a timer while the
    sends are counted (valgrind stretches a second fifty times, and a timer's work would count
    as the sends'): no jobs worker, the stream's poll, heartbeats and presence an hour apart.
    The hub still hears every commit and dispatches its events, as in a server."""
    return Settings(
        database_url=database,
        api_key=API_KEY,
        send_rate_per_minute=10**9,
        _env_file=None,
        **NO_TIMERS,
    )


async def _post(app: Any, path: str, token: str, body: bytes) -> int:
    """One POST of a JSON body through the ASGI app; its status."""
    scope = _scope("POST", path, token, [(b"content-type", b"application/json")])
    return await _exchange(app, scope, body)


def send_child(database: str, world: World, sends: int, rounds: int) -> None:
    """Sends as bench_send.py makes them (conversations in turn, three in four from the staff
    in turn, the fourth from the candidate), through the app with its lifespan running (the
    hub dispatching each commit's events): a warm-up, then ``rounds`` rounds of ``sends``, each
    inside ``sys.call_tracing``."""
    settings = _send_settings(database)
    app = create_app(settings, db=Database(sqlalchemy_url(database)))
    app.state.jobchat.tokens.ttl_seconds = 3600.0
    loop = asyncio.new_event_loop()
    lifespan = contextlib.AsyncExitStack()
    loop.run_until_complete(lifespan.enter_async_context(app.router.lifespan_context(app)))
    seq = 0

    async def run(n: int) -> None:
        nonlocal seq
        for _ in range(n):
            conversation, token = author_of(seq, world)
            body = json.dumps({"body": f"jcbench seq={seq} Hello from the send benchmark."})
            status = await _post(
                app, f"/api/v1/conversations/{conversation}/messages", token, body.encode()
            )
            if status != 201:
                raise SystemExit(f"send {seq}: {status}")
            seq += 1
        # The hub dispatches a commit's events in a callback the writing thread schedules on
        # the loop: let those of the last sends run inside the count.
        for _ in range(10):
            await asyncio.sleep(0)

    loop.run_until_complete(run(SEND_WARMUP))
    settle_collector()
    sys.call_tracing(int, ())  # the first, empty dump (see child)
    for _ in range(rounds):
        sys.call_tracing(loop.run_until_complete, (run(sends),))
    loop.run_until_complete(lifespan.aclose())


# --- the parent: one run under callgrind, a dump per path --------------------------------------


def _callgrind(child_args: list[str], dumps: int) -> list[int]:
    """Run this script's child under callgrind with the marks; the instructions of each of its
    ``dumps`` marked calls (after the first, empty one)."""
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
                *child_args,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if ran.returncode != 0:
            raise SystemExit(f"callgrind run failed ({ran.returncode}):\n{ran.stderr[-2000:]}")
        counts = []
        for n in range(2, dumps + 2):  # the first dump is the empty one
            found = _SUMMARY.search(Path(f"{out_file}.{n}").read_text())
            assert found is not None, f"no summary in dump {n}"
            counts.append(int(found[1]))
        return counts


def instructions(database: str, paths: list[str], token: str, requests: int) -> list[float]:
    """Instructions per request of each path, counted by callgrind."""
    child_args = ["--database", database, "--child", json.dumps(paths), "--token", token]
    counts = _callgrind([*child_args, "--requests", str(requests)], len(paths))
    return [count / requests for count in counts]


def send_instructions(database: str, world: World, sends: int, rounds: int) -> list[float]:
    """Instructions per send of each of ``rounds`` rounds of ``sends``, counted by callgrind."""
    child_args = ["--database", database, "--send-child", json.dumps(asdict(world))]
    counts = _callgrind([*child_args, "--sends", str(sends), "--rounds", str(rounds)], rounds)
    return [count / sends for count in counts]


def _seed_sends(url: str, staff: int, conversations: int) -> World:
    """A new database (``url``'s, emptied) with bench_send.py's world in it."""
    reset_database(url)
    db = Database(url)
    try:
        upgrade(db.engine)
        app = create_app(_send_settings(url), db=db)

        async def seeded() -> World:
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
            ):
                return await seed(client, staff, conversations)

        return asyncio.run(seeded())
    finally:
        db.dispose()


def _main_sends(args: argparse.Namespace) -> int:
    database = args.database or "sqlite:///bench/results/send-instructions.db"
    url = sqlalchemy_url(database)
    world = _seed_sends(url, args.staff, args.conversations)
    print(
        f"instructions per send (callgrind, {args.rounds} rounds of {args.sends} after "
        f"{SEND_WARMUP}, {args.staff + 1} members a conversation, in process)"
    )
    counts = send_instructions(database, world, args.sends, args.rounds)
    for n, count in enumerate(counts, 1):
        print(f"  round {n:<14} {count / 1e6:7.3f} M")
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    (results_dir / f"instructions-send-{dialect}.json").write_text(
        json.dumps({"per_round": counts, "sends": args.sends}, indent=2)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database",
        default=None,
        help="default: bench_reads.py's SQLite file; with --sends a new SQLite file",
    )
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--only", default="", help="comma-separated endpoint names' prefixes")
    parser.add_argument(
        "--sends",
        type=int,
        default=0,
        help="count sends instead, N a round, in a new database (--database's, emptied)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --sends")
    parser.add_argument("--staff", type=int, default=10, help="with --sends: as bench_send.py")
    parser.add_argument("--conversations", type=int, default=101, help="with --sends")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--send-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--token", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.send_child is not None:
        send_child(args.database, World(**json.loads(args.send_child)), args.sends, args.rounds)
        return 0
    if args.child is not None:
        child(args.database, json.loads(args.child), args.token, args.requests)
        return 0
    if args.sends:
        return _main_sends(args)

    database = args.database or "sqlite:///bench/results/reads.db"
    url = sqlalchemy_url(database)
    if not seeded(url):
        raise SystemExit("not seeded: run bench/bench_reads.py --database ... --seed-only first")
    token, paths = token_and_paths(url, args.only)

    print(f"instructions per request (callgrind, {args.requests} requests each, in process)")
    counts = instructions(database, list(paths.values()), token, args.requests)
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
