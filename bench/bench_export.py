"""A candidate's export with many messages: the memory it takes and how long it runs.

Run from the project root:

    .venv/bin/python bench/bench_export.py
    .venv/bin/python bench/bench_export.py --messages 1000 10000 50000

For each size, a fresh SQLite file in a temporary directory is migrated, a candidate with one
application conversation is set up through the integration API, and that many messages (a
third of them by email, with a delivery each) are added with bulk Core inserts. Then the
export the route streams (``jobchat.privacy.export.export_document``) is run to the end with
its pieces thrown away, as a client reading the response would, under ``tracemalloc``: the
peak of memory allocated while it runs, the size of the document and the time. A peak that
stays the same while the messages grow tenfold is what streaming a batch at a time buys.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.directory.models import User
from jobchat.messages.models import Channel, Delivery, DeliveryStatus, Message
from jobchat.privacy.export import export_document

KEY = "bench-key"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def seed(client: TestClient, db: Database, messages: int) -> int:
    """The candidate's id, after their conversation has ``messages`` messages."""
    key = {"Authorization": f"Bearer {KEY}"}

    def put(path: str, body: Mapping[str, object]) -> None:
        answer = client.put(f"/api/v1/{path}", json=body, headers=key)
        assert answer.status_code in (200, 201), answer.text

    put("organizations/acme", {"name": "Acme", "kind": "employer"})
    staff = {"name": "Tess Team", "email": "tess@example.com", "organization": "acme"}
    put("users/tess", staff | {"role": "member"})
    put("candidates/carla", {"name": "Carla Candidate", "email": "carla@example.org"})
    put("jobs/nurse", {"title": "Nurse", "employer": "acme", "team": ["tess"]})
    put("applications/a1", {"job": "nurse", "candidate": "carla", "stage": "interview"})
    token = client.post("/api/v1/users/tess/tokens", headers=key).json()["token"]
    started = client.post(
        "/api/v1/conversations",
        json={"kind": "application", "application": "a1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert started.status_code in (200, 201), started.text
    conversation = started.json()["id"]
    with db.write() as session:
        tess = session.scalars(select(User.id).where(User.ext_id == "tess")).one()
        carla = session.scalars(select(User.id).where(User.ext_id == "carla")).one()
        for first in range(0, messages, 1000):
            rows = [
                {
                    "conversation_id": conversation,
                    "author_id": carla if n % 2 else tess,
                    "body": f"Message {n}: " + "words of a reply about the interview " * 4,
                    "subject": "Interview" if n % 3 == 0 else None,
                    "channel": Channel.email if n % 3 == 0 else Channel.app,
                    "created_at": START + timedelta(seconds=n),
                }
                for n in range(first, min(first + 1000, messages))
            ]
            made = session.scalars(insert(Message).returning(Message.id), rows).all()
            deliveries = [
                {
                    "message_id": message_id,
                    "recipient_id": carla,
                    "channel": Channel.email,
                    "address": "carla@example.org",
                    "status": DeliveryStatus.sent,
                    "attempts": 1,
                    "next_attempt_at": START,
                    "created_at": START,
                    "updated_at": START,
                }
                for message_id, row in zip(made, rows, strict=True)
                if row["channel"] == Channel.email
            ]
            session.execute(insert(Delivery), deliveries)
    return carla


def measure(messages: int) -> tuple[float, int, float]:
    """(peak MiB allocated during the export, document bytes, seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'export.db'}"
        settings = Settings(
            database_url=url,
            api_key=KEY,
            run_worker=False,
            storage_url=f"file://{folder}/files",
            _env_file=None,
        )
        db = Database(settings.sqlalchemy_url)
        upgrade(db.engine)
        try:
            with TestClient(create_app(settings, db=db, clock=FrozenClock(START))) as client:
                candidate = seed(client, db, messages)
            size = 0
            tracemalloc.start()
            began = time.perf_counter()
            for piece in export_document(db, candidate, START):
                size += len(piece.encode())
            seconds = time.perf_counter() - began
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            db.dispose()
    return peak / 2**20, size, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()
    print("| messages | document | peak memory (tracemalloc) | time |")
    print("|---:|---:|---:|---:|")
    for messages in args.messages:
        peak, size, seconds = measure(messages)
        print(f"| {messages:,} | {size / 2**20:.1f} MiB | {peak:.1f} MiB | {seconds:.2f} s |")


if __name__ == "__main__":
    main()
