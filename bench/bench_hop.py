"""The CPU of one hop from the event loop to a thread and back: Starlette's ``run_in_threadpool``
(anyio's ``to_thread``), the loop's ``run_in_executor`` on a ``ThreadPoolExecutor`` of the same
size, and ``jobchat.request_threads``, on uvloop as ``jobchat serve`` runs, with
``--concurrency`` requests hopping at once.

    .venv/bin/python bench/bench_hop.py --hops 20000 --concurrency 8

Each way runs ``--rounds`` times, alternating; it prints the process CPU and the wall time per
hop of each round (the work on the thread does nothing, so this is the hop alone).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import uvloop
from starlette.concurrency import run_in_threadpool

from jobchat.request_threads import READ_THREADS, RequestThreads


def _nothing() -> int:
    return 1


async def _hops(
    hop: Callable[[], Awaitable[int]], hops: int, concurrency: int
) -> tuple[float, float]:
    """(CPU us, wall us) per hop."""

    async def requests(n: int) -> None:
        for _ in range(n):
            await hop()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(requests(hops // concurrency) for _ in range(concurrency)))
    done = hops // concurrency * concurrency
    return 1e6 * (time.process_time() - cpu) / done, 1e6 * (time.perf_counter() - wall) / done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hops", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    threads = RequestThreads()
    executor = ThreadPoolExecutor(READ_THREADS)
    ways: dict[str, Callable[[], Awaitable[int]]] = {
        "anyio (run_in_threadpool)": lambda: run_in_threadpool(_nothing),
        "run_in_executor": lambda: asyncio.get_running_loop().run_in_executor(executor, _nothing),
        "RequestThreads.run": lambda: threads.run(_nothing),
    }
    try:
        for n in range(1, args.rounds + 1):
            for name, hop in ways.items():
                cpu, wall = uvloop.run(_hops(hop, args.hops, args.concurrency))
                print(f"round {n}  {name:<27} CPU {cpu:6.1f} us/hop  wall {wall:6.1f} us/hop")
    finally:
        threads.close()
        executor.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
