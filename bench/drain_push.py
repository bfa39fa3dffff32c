"""The worker's cost per message with pushes, counted in process: statements and CPU.

The steering figure for bench_push.py's goal, steadier than its wall times on a shared machine:
N candidates (each a conversation and one push subscription at a loopback push service in a
process of its own, so that its decryption is not counted) get one message each through the
API (TestClient, in this process), then one ``Worker.drain()`` with the app's own job kinds
(the ladder, then the pushes) takes every job. Printed per round: statements per message by
kind, process CPU per message, and the drain's messages a second. Rounds alternate nothing;
compare two trees by running this file under each (PYTHONPATH).

    .venv/bin/python bench/drain_push.py --messages 300 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_push import PushServiceProcess  # noqa: E402

from jobchat.app import create_app  # noqa: E402
from jobchat.background import build_worker  # noqa: E402
from jobchat.config import Settings  # noqa: E402
from jobchat.db.engine import Database  # noqa: E402
from jobchat.db.migrate import upgrade  # noqa: E402
from jobchat.jobqueue.worker import Worker  # noqa: E402

T = TypeVar("T")

API_KEY = "drain-bench-key-0123456789"


def call(client: TestClient, method: str, path: str, body: Any = None, token: str = API_KEY) -> Any:
    response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code >= 300:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return response.json() if response.content else None


def seed(client: TestClient, subscriptions: list[dict[str, Any]]) -> tuple[str, list[int]]:
    call(client, "PUT", "/api/v1/organizations/acme", {"name": "Acme", "kind": "employer"})
    staff = {"name": "Tess Team", "email": "tess@bench.example", "organization": "acme"}
    call(client, "PUT", "/api/v1/users/tess", staff | {"role": "member"})
    call(
        client,
        "PUT",
        "/api/v1/jobs/nurse",
        {"title": "Nurse", "employer": "acme", "team": ["tess"]},
    )
    staff_token = call(client, "POST", "/api/v1/users/tess/tokens")["token"]
    conversations = []
    for i, subscription in enumerate(subscriptions):
        ext = f"cand-{i}"
        call(
            client,
            "PUT",
            f"/api/v1/candidates/{ext}",
            {"name": f"C {i}", "email": f"{ext}@b.example"},
        )
        application = {
            "job": "nurse",
            "candidate": ext,
            "stage": "interview",
            "applied_at": "2026-01-05T09:00:00Z",
        }
        call(client, "PUT", f"/api/v1/applications/app-{i}", application)
        token = call(client, "POST", f"/api/v1/candidates/{ext}/tokens")["token"]
        call(client, "POST", "/api/v1/push/subscriptions", subscription, token)
        call(client, "PATCH", "/api/v1/me", {"quiet_hours": None}, token)
        start = {"kind": "application", "application": f"app-{i}"}
        conversations.append(
            int(call(client, "POST", "/api/v1/conversations", start, staff_token)["id"])
        )
    return staff_token, conversations


def profiled(worker: Worker, path: str) -> int:
    """The drain under cProfile, which sees one thread: what the worker hands to threads is
    run inline instead (one at a time, as a single-threaded profile must)."""

    async def inline(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return func(*args, **kwargs)

    real = asyncio.to_thread
    asyncio.to_thread = inline
    try:
        with cProfile.Profile() as profile:
            ran = asyncio.run(worker.drain())
    finally:
        asyncio.to_thread = real
    profile.dump_stats(path)
    return ran


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="cProfile the last round's drain into PATH, its threads' work run inline",
    )
    args = parser.parse_args()
    service = PushServiceProcess.start(args.messages)
    results = []
    with tempfile.TemporaryDirectory(prefix="jobchat-drain-") as tmp:
        url = f"sqlite:///{tmp}/drain.db"
        db = Database(url)
        upgrade(db.engine)
        settings = Settings(
            database_url=url,
            api_key=API_KEY,
            public_url="http://testserver",
            run_worker=False,
            push_allow_insecure=True,
            send_rate_per_minute=1_000_000,
            notify_delay_seconds=86400,
            email_from="Acme <hiring@bench.example>",
            spool_dir=f"{tmp}/spool",
            _env_file=None,
        )
        statements: Counter[str] = Counter()

        @event.listens_for(db.engine, "before_cursor_execute")
        def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            statements[statement.split(None, 1)[0].upper()] += 1

        app = create_app(settings, db=db)
        with TestClient(app) as client:
            staff_token, conversations = seed(client, service.subscriptions)
            time.sleep(1.1)  # messages come after the subscriptions (the ladder compares)
            for r in range(args.rounds):
                for conv in conversations:
                    text = {"body": f"Round {r}: are you free on Tuesday at 10?"}
                    call(
                        client, "POST", f"/api/v1/conversations/{conv}/messages", text, staff_token
                    )
                worker = build_worker(app.state.mail, texter=app.state.texter, name=f"drain-{r}")
                received = service.count()
                statements.clear()
                profile = args.profile and r == args.rounds - 1
                cpu, wall = time.process_time(), time.perf_counter()
                ran = profiled(worker, args.profile) if profile else asyncio.run(worker.drain())
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                n = len(conversations)
                per = {k: round(v / n, 2) for k, v in sorted(statements.items())}
                row = {
                    "round": r + 1,
                    "jobs": ran,
                    "pushes": service.count() - received,
                    "statements_per_message": round(sum(statements.values()) / n, 2),
                    "by_kind": per,
                    "cpu_ms_per_message": round(1000 * cpu / n, 3),
                    "messages_per_second": round(n / wall, 1),
                }
                results.append(row)
                print(json.dumps(row), flush=True)
        db.dispose()
    service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
