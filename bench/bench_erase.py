"""What an erasure and a retention run cost: one candidate's erasure with N messages, and the
batches of a retention run over M old messages, with B other messages in the search index.

Run from the project root:

    .venv/bin/python bench/bench_erase.py
    .venv/bin/python bench/bench_erase.py --database postgresql://postgres@127.0.0.1:5432/jc_erase

The people and conversations are made through the integration API; the messages (with their
``message.created`` events, search entries and, for one in ten, an email delivery) are inserted
in bulk, as the actions write them. Prints the timings (see bench/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.db.models import Delivery, Event, Message, User
from jobchat.privacy.retention import BATCH, do_expire_messages
from jobchat.privacy.scrub import checkpoint, forget_search_terms
from jobchat.search.index import index_many

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import API_KEY, Api  # noqa: E402

DAYS = 30


def _fresh(url: str | None) -> tuple[str, Database]:
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'erase.db'}"
    db = Database(Settings(database_url=url, _env_file=None).sqlalchemy_url)
    if not db.is_sqlite:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(db.engine)
    return url, db


def _messages(db: Database, conv: int, authors: list[int], n: int, clock: FrozenClock) -> None:
    """``n`` messages in ``conv`` in batches, as sends write them (event, index entry, and an
    email delivery for one in ten)."""
    now = clock.now()
    for start in range(0, n, 2000):
        count = min(2000, n - start)
        with db.write() as s:
            bodies = [
                f"message {n} about rhubarb{n} and the interview"
                for n in range(start, start + count)
            ]
            rows = [
                {
                    "conversation_id": conv,
                    "author_id": authors[i % len(authors)],
                    "body": bodies[i],
                    "channel": "app",
                    "created_at": now,
                }
                for i in range(count)
            ]
            ids = list(s.scalars(insert(Message).returning(Message.id), rows))
            s.execute(
                insert(Event),
                [
                    {
                        "type": "message.created",
                        "conversation_id": conv,
                        "message_id": mid,
                        "data": {"id": mid, "body": b},
                        "created_at": now,
                    }
                    for mid, b in zip(ids, bodies, strict=True)
                ],
            )
            s.execute(
                insert(Delivery),
                [
                    {
                        "message_id": mid,
                        "recipient_id": authors[0],
                        "channel": "email",
                        "address": "someone@example.org",
                        "status": "sent",
                        "attempts": 1,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for mid in ids[::10]
                ],
            )
            index_many(s.connection(), [(mid, None, b) for mid, b in zip(ids, bodies, strict=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description="erasure and retention timings")
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--messages", type=int, default=5000, help="the erased candidate's")
    parser.add_argument("--background", type=int, default=100_000, help="other messages")
    parser.add_argument("--expire", type=int, default=20_000, help="old messages to expire")
    args = parser.parse_args()
    url, db = _fresh(args.database)
    clock = FrozenClock()
    settings = Settings(database_url=url, api_key=API_KEY, run_worker=False, _env_file=None)
    out: dict[str, Any] = {}
    with TestClient(create_app(settings, db=db, clock=clock)) as client:
        api = Api(client)
        api.org("acme", "Acme Health", "employer")
        api.staff("emp", "Tess Team", "acme", role="admin")
        api.job("job1", "Registered Nurse", "acme", team=["emp"])
        for ext in ("victim", "other", "old"):
            api.candidate(ext, f"{ext.title()} Person")
            api.application(f"app-{ext}", "job1", ext, "interview")
        emp = api.as_staff("emp")
        convs = {
            ext: emp.start("application", application=f"app-{ext}").json()["id"]
            for ext in ("victim", "other", "old")
        }
        with db.read() as s:
            ids = {u.ext_id: u.id for u in s.scalars(select(User))}
        old_at = clock.now()
        _messages(db, convs["old"], [ids["emp"], ids["old"]], args.expire, clock)
        clock.advance(days=DAYS + 1)
        _messages(db, convs["other"], [ids["emp"], ids["other"]], args.background, clock)
        _messages(db, convs["victim"], [ids["emp"], ids["victim"]], args.messages, clock)

        # As autovacuum would have by then: the planner knows the tables' sizes.
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
        t0 = time.perf_counter()
        r = api.integration.post("/api/v1/candidates/victim/erase")
        out["erase_ms"] = round((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
        print(f"erasing a candidate with {args.messages} messages: {out['erase_ms']} ms")
        print(f"  counts: {r.json()['erased']}")

        # Retention: the batches one run makes, each its own transaction.
        before = old_at + timedelta(seconds=1)
        times: list[float] = []
        while True:
            t0 = time.perf_counter()
            with db.work() as s:
                counts = do_expire_messages(s, before=before, now=clock.now(), batch=BATCH)
            if not counts["messages"]:
                break
            times.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with db.work() as s:
            forget_search_terms(s)
        checkpoint(db)
        tail = (time.perf_counter() - t0) * 1000
        print(
            f"retention: {args.expire} messages in {len(times)} batches of {BATCH}: "
            f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms a batch; "
            f"then the index merge and checkpoint {tail:.0f} ms "
            f"({args.background + args.expire} messages indexed before)"
        )
    db.dispose()


if __name__ == "__main__":
    main()
