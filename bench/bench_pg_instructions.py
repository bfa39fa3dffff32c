"""Instructions PostgreSQL's backends execute for a send, counted by valgrind's callgrind: the
database's side of bench_instructions.py, which counts only jobchat's process.

Run from the project root, as root or as the user PostgreSQL runs as (Debian's ``postgres``):

    .venv/bin/python bench/bench_pg_instructions.py
    PYTHONPATH=/tmp/old .venv/bin/python bench/bench_pg_instructions.py

(the second counts an older commit's code, from a worktree of it: ``git worktree add /tmp/old
<commit>``; this checkout's bench_send.py drives it).

It starts a PostgreSQL server of its own (Debian's binaries, a new cluster in ``--dir``, port
``--port``, autovacuum off, no checkpoint but at start) under valgrind's callgrind with
``--trace-children=yes``: every backend the server forks is counted, and writes its counts to a
file of its own when its connection ends. Then it runs ``bench_send.py --no-timers`` against
that server twice, with ``--sends`` small and large (each run seeds its world afresh, sends,
and closes its connections; nothing runs on a clock, so that the sends' slowness under valgrind
adds no polls or token lookups, and no jobs worker: the ladder job each send queues is not
run), and sums the counts of the backends each run started. The difference between the two
runs, divided by the difference in sends, is what one send costs the backends: seeding and
start-up cancel out (a first run of 10 sends, not counted, leaves a world for the next to drop,
as each run drops the one before). The server is stopped at the end (``--keep`` leaves it
running for the next run; a server already listening on the port is used as it is).

Like callgrind's counts of our own process, these do not move with the machine's load; unlike
timed CPU, they see only what runs in user space: not the kernel's work for the backends'
system calls (reading and extending files, the relation sizes the planner asks for, the WAL's
writes and flushes), nor what an instruction costs (cache misses). Everything runs some fifty
times slower: a run of 10, 100 and 300 sends takes about eight minutes.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parent.parent


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as Debian's postgres user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _ready(port: int) -> bool:
    ready = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], check=False)
    return ready.returncode == 0


def start_server(directory: Path, port: int) -> subprocess.Popen[bytes]:
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "counts").mkdir(parents=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (directory, directory / "counts"):
            os.chown(path, user.pw_uid, user.pw_gid)
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "postgres"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    log = (directory / "server.log").open("wb")
    server = subprocess.Popen(
        _as_postgres(
            [
                "valgrind",
                "--tool=callgrind",
                "--trace-children=yes",
                f"--callgrind-out-file={directory / 'counts'}/backend.%p",
                str(PG_BIN / "postgres"),
                "-D",
                str(directory / "data"),
                "-p",
                str(port),
                "-k",
                str(directory),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "autovacuum=off",
                # No checkpoint during a run: the full-page images the next writes would log
                # after one add instructions to whichever run it fell in.
                "-c",
                "checkpoint_timeout=1d",
                "-c",
                "max_wal_size=20GB",
            ]
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        if _ready(port):
            return server
        time.sleep(1)
    server.terminate()
    raise SystemExit(f"the server under callgrind did not come up: see {directory}/server.log")


def _totals(paths: list[Path]) -> int:
    """The summed instruction counts of these backends, once each has written its file out."""
    total = 0
    for path in paths:
        for _ in range(300):
            lines = [line for line in path.read_text().splitlines() if line.startswith("totals:")]
            if lines:
                total += int(lines[0].split()[1])
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"{path} has no totals: a backend still running?")
    return total


def count_run(counts: Path, port: int, sends: int) -> int:
    """Backend instructions of one bench_send.py run of ``sends`` sends, seeding included."""
    before = set(counts.iterdir())
    database = f"postgresql://postgres@127.0.0.1:{port}/jc_pg_instructions"
    # Its output is not shown: under valgrind every write takes long enough to be logged.
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_send.py"),
            "--database",
            database,
            "--sends",
            str(sends),
            "--rounds",
            "1",
            "--warmup",
            "20",
            "--reads",
            "1",
            "--no-timers",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise SystemExit(f"bench_send.py failed:\n{run.stdout}\n{run.stderr}")
    time.sleep(2)  # the backends of the run's last connections write their counts as they end
    # The postmaster's own file, and those of its background processes, are not the run's.
    started = sorted(set(counts.iterdir()) - before)
    return _totals(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/jobchat-pg-callgrind"))
    parser.add_argument("--port", type=int, default=5499)
    parser.add_argument("--sends", type=int, nargs=2, default=(100, 300), metavar=("FEW", "MORE"))
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    args = parser.parse_args(argv)

    server = None if _ready(args.port) else start_server(args.dir, args.port)
    try:
        few, more = args.sends
        # Uncounted: each run drops the world the run before left, and the first has none to
        # drop (0.8 M instructions a send too many, divided out over the difference).
        count_run(args.dir / "counts", args.port, 10)
        counted = {n: count_run(args.dir / "counts", args.port, n) for n in (few, more)}
    finally:
        if server is not None and not args.keep:
            server.terminate()
            server.wait(timeout=120)
    per_send = (counted[more] - counted[few]) / (more - few)
    print(
        f"PostgreSQL backends: {counted[few] / 1e6:,.1f} M instructions for {few} sends "
        f"(seeding included), {counted[more] / 1e6:,.1f} M for {more}: "
        f"{per_send / 1e6:.3f} M a send"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
