"""The write turn's two lines take turns: the jobs worker's bookkeeping goes ahead of requests,
but writers looping in its line cannot keep a request from its turn until it times out."""

from __future__ import annotations

import threading
import time

import pytest

from jobchat.db.engine import Database
from jobchat.db.turn import WriteBusy, ahead_of_requests


def test_a_request_gets_its_turn_while_ahead_writers_loop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.write_turn, "timeout", 1.0)
    stop = threading.Event()
    rounds = [0, 0]

    def loop(n: int) -> None:
        while not stop.is_set():
            with ahead_of_requests(), db.write():
                rounds[n] += 1
                time.sleep(0.002)  # long enough that the other ahead writer is waiting

    writers = [threading.Thread(target=loop, args=(n,)) for n in range(2)]
    for writer in writers:
        writer.start()
    try:
        deadline = time.monotonic() + 5
        while min(rounds) < 5:  # both are looping, handing the turn to each other
            assert time.monotonic() < deadline, "the ahead writers never got going"
            time.sleep(0.001)
        waits = []
        for _ in range(3):
            started = time.monotonic()
            try:
                with db.write():
                    pass
            except WriteBusy:
                pytest.fail("a request waited out its timeout behind looping ahead writers")
            waits.append(time.monotonic() - started)
    finally:
        stop.set()
        for writer in writers:
            writer.join(10)
    # At most one ahead writer's transaction before each request, not the whole timeout.
    assert max(waits) < 0.5, waits
