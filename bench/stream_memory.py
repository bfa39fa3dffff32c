"""Where an idle event-stream socket's memory goes, in a real ``jobchat serve``.

Run from the project root (about a minute):

    .venv/bin/python bench/stream_memory.py
    .venv/bin/python bench/stream_memory.py --sockets 500 --compression none

It starts ``jobchat serve`` as bench_stream.py does (fresh SQLite file in a temporary
directory), but under a small wrapper that starts ``tracemalloc`` on a signal. It seeds the
same world through the API (``--staff`` staff, one candidate and conversation per remaining
socket), starts tracing, connects ``--sockets`` WebSockets from this process, lets them idle,
and takes a second snapshot. The difference, divided by the number of sockets, is what each
idle socket holds in the server: by the source line that allocated it, and summed by package
(zlib's state is allocated through Python's raw allocator, so it is traced too). The server's
RSS difference is printed beside it: RSS also counts the allocator's slack, which tracemalloc
does not. Also the objects the cyclic collector tracks per socket, and how long one full
collection takes before and after connecting (it stops the event loop for that long).
Results go to ``bench/results/stream-memory[-<compression>].json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from bench_stream import Receiver, raise_nofile, rss_kib, seed, start_server

# The wrapper the server runs under: the first SIGUSR1 starts tracing, the second writes a
# snapshot (after a full collection) to $STREAM_MEMORY_SNAPSHOT.
WRAPPER = """
import gc, json, os, signal, sys, time, tracemalloc
_counts = []
def _on_signal(signum, frame):
    started = time.perf_counter()
    gc.collect()  # a full collection: how long it stops the loop with these sockets open
    pause = time.perf_counter() - started
    kinds = {}
    for o in gc.get_objects():
        name = f"{getattr(type(o), '__module__', '?')}.{getattr(type(o), '__qualname__', '?')}"
        kinds[name] = kinds.get(name, 0) + 1
    _counts.append({"gc_objects": sum(kinds.values()), "full_collection_ms": pause * 1000,
                    "kinds": kinds})
    if not tracemalloc.is_tracing():
        tracemalloc.start(8)
    else:
        path = os.environ["STREAM_MEMORY_SNAPSHOT"]
        with open(path + ".json", "w") as out:
            json.dump(_counts, out)
        tracemalloc.take_snapshot().dump(path)
signal.signal(signal.SIGUSR1, _on_signal)
from jobchat.cli import main
sys.exit(main(sys.argv[1:]))
"""


def package_of(filename: str) -> str:
    """A short name for where an allocation came from: the package, or the stdlib module."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "jobchat" in parts:
        return "/".join(parts[parts.index("jobchat") : parts.index("jobchat") + 2])
    return Path(filename).stem


def summarise(snapshot_path: Path, sockets: int, top: int) -> dict[str, Any]:
    after = tracemalloc.Snapshot.load(str(snapshot_path))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    after = after.filter_traces(ignore)
    by_line = after.statistics("lineno")
    total = sum(stat.size for stat in by_line)
    packages: Counter[str] = Counter()
    for stat in by_line:
        packages[package_of(stat.traceback[0].filename)] += stat.size
    # The innermost frame of our own code or uvicorn's for each allocation, for context.
    lines = [
        {
            "bytes_per_socket": round(stat.size / sockets),
            "blocks_per_socket": round(stat.count / sockets, 2),
            "where": f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}",
        }
        for stat in by_line[:top]
    ]
    return {
        "traced_bytes_per_socket": round(total / sockets),
        "by_package_bytes_per_socket": {
            name: round(size / sockets) for name, size in packages.most_common()
        },
        "top_lines": lines,
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    raise_nofile(args.sockets * 2 + 4096)
    snapshot_path = workdir / "after.tracemalloc"
    wrapper = workdir / "traced_serve.py"
    wrapper.write_text(WRAPPER)
    api_key = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env |= {
        "JOBCHAT_DATABASE_URL": f"sqlite:///{workdir / 'stream.db'}",
        "JOBCHAT_API_KEY": api_key,
        "STREAM_MEMORY_SNAPSHOT": str(snapshot_path),
    }
    server = start_server(
        workdir, env, args.sockets * 2 + 4096, command=[sys.executable, str(wrapper)]
    )
    receiver: Receiver | None = None
    try:
        world = await seed(server.base, api_key, args.staff, args.sockets - args.staff)
        await asyncio.sleep(2)
        os.kill(server.pid, signal.SIGUSR1)  # start tracing
        await asyncio.sleep(1)
        rss_before = rss_kib(server.pid)
        uri = server.base.replace("http://", "ws://") + "/api/v1/events"
        compression = None if args.compression == "none" else "deflate"
        receiver = Receiver([uri], world.tokens, compression)
        await receiver.open_all(100)
        if receiver.failed:
            raise SystemExit(f"{len(receiver.failed)} sockets failed: {receiver.failed[:3]}")
        await asyncio.sleep(args.settle)
        rss_idle = rss_kib(server.pid)
        os.kill(server.pid, signal.SIGUSR1)  # snapshot
        deadline = time.monotonic() + 300
        size = -1
        while time.monotonic() < deadline:  # until the snapshot is written out whole
            await asyncio.sleep(1)
            if snapshot_path.exists():
                if snapshot_path.stat().st_size == size:
                    break
                size = snapshot_path.stat().st_size
        result = summarise(snapshot_path, args.sockets, args.top)
        before, after = json.loads(Path(f"{snapshot_path}.json").read_text())
        result["gc_objects_per_socket"] = round(
            (after["gc_objects"] - before["gc_objects"]) / args.sockets, 1
        )
        kinds = {
            kind: (count - before["kinds"].get(kind, 0)) / args.sockets
            for kind, count in after["kinds"].items()
        }
        result["gc_objects_per_socket_by_type"] = {
            kind: round(n, 2) for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:25]
        }
        # Timed under tracemalloc, which slows allocation more than the collector's walk.
        result["full_collection_ms"] = {
            "before": round(before["full_collection_ms"], 1),
            "with_sockets": round(after["full_collection_ms"], 1),
        }
        result["rss_kib_per_socket"] = round((rss_idle - rss_before) / args.sockets, 1)
        return result
    finally:
        if receiver is not None:
            await receiver.close_all()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--staff", type=int, default=10)
    parser.add_argument("--compression", choices=["deflate", "none"], default="deflate")
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobchat-stream-memory-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    result = {"sockets": args.sockets, "compression": args.compression, **result}
    print(
        f"{args.sockets} idle sockets ({args.compression}): traced "
        f"{result['traced_bytes_per_socket']} B per socket, RSS {result['rss_kib_per_socket']} "
        "KiB per socket"
    )
    print(
        f"objects the collector tracks: {result['gc_objects_per_socket']} per socket; a full "
        f"collection took {result['full_collection_ms']['before']} ms before connecting, "
        f"{result['full_collection_ms']['with_sockets']} ms with the sockets (under tracemalloc)"
    )
    print(
        "  by type:",
        ", ".join(
            f"{k} {v}" for k, v in result["gc_objects_per_socket_by_type"].items() if v >= 0.5
        ),
    )
    print("by package (bytes per socket):")
    for name, size in result["by_package_bytes_per_socket"].items():
        if size >= 50:
            print(f"  {size:7d}  {name}")
    print("top lines (bytes, blocks per socket):")
    for line in result["top_lines"]:
        print(f"  {line['bytes_per_socket']:7d} {line['blocks_per_socket']:6.2f}  {line['where']}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    suffix = "" if args.compression == "deflate" else f"-{args.compression}"
    path = out / f"stream-memory{suffix}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
