"""Room for concurrent writers (PostgreSQL sends): a few write at once, a bounded number wait
for a slot, and the rest are refused at once, so a stalled database cannot take every thread
and pooled connection that reads need."""

from __future__ import annotations

import threading

import pytest

from jobchat.db.turn import WriteBusy, WriteSlots


def test_writers_beyond_the_slots_wait_and_get_the_next_free_one() -> None:
    slots = WriteSlots(2, timeout=10.0, max_waiting=1)
    slots.acquire()
    slots.acquire()
    got = threading.Event()

    def third() -> None:
        slots.acquire()
        got.set()

    waiter = threading.Thread(target=third)
    waiter.start()
    assert not got.wait(0.2)  # both slots taken: it waits
    slots.release()
    assert got.wait(5)  # a slot freed: it is in
    waiter.join()


def test_past_the_waiting_bound_a_writer_is_refused_at_once() -> None:
    slots = WriteSlots(1, timeout=10.0, max_waiting=1)
    slots.acquire()
    waiting = threading.Thread(target=slots.acquire)
    waiting.start()
    while not slots._waiting:  # the second writer is waiting for room
        threading.Event().wait(0.005)
    with pytest.raises(WriteBusy, match="already waiting"):
        slots.acquire()  # refused without waiting the 10 s
    slots.release()
    waiting.join(5)
    assert not waiting.is_alive()


def test_a_writer_that_finds_no_room_in_time_is_busy_and_leaves_the_line() -> None:
    slots = WriteSlots(1, timeout=0.1, max_waiting=1)
    slots.acquire()
    with pytest.raises(WriteBusy, match="no room"):
        slots.acquire()
    # It no longer counts as waiting: the next one may wait (and gets the slot once freed).
    slots.release()
    slots.acquire()
