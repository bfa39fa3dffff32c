"""The threads the fast paths run requests on (jobchat.request_threads): results and errors come
back, the pool is bounded, and a cancelled request never leaves its work half done."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from fastapi.testclient import TestClient

from jobchat.request_threads import READ_THREADS, RequestThreads


def test_work_runs_on_a_thread_of_the_pool_and_answers() -> None:
    threads = RequestThreads(2)

    async def main() -> tuple[str, str]:
        return await threads.run(lambda: threading.current_thread().name), "loop"

    try:
        name, _ = asyncio.run(main())
    finally:
        threads.close()
    assert name.startswith("jobchat-request")
    assert name != threading.current_thread().name


def test_the_work_s_exception_is_raised_to_the_request() -> None:
    threads = RequestThreads(1)

    def fail() -> None:
        raise LookupError("no such conversation")

    try:
        with pytest.raises(LookupError, match="no such conversation"):
            asyncio.run(threads.run(fail))
    finally:
        threads.close()


def test_no_more_than_size_run_at_once() -> None:
    threads = RequestThreads(2)
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(5)
        with lock:
            running -= 1

    async def main() -> None:
        tasks = [asyncio.ensure_future(threads.run(work)) for _ in range(5)]
        await asyncio.sleep(0.2)
        assert running == 2  # the other three wait for a thread
        release.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    finally:
        threads.close()
    assert most == 2


def test_a_request_cancelled_mid_work_waits_for_the_work_to_end() -> None:
    threads = RequestThreads(1)
    started = threading.Event()
    done: list[str] = []

    def work() -> None:
        started.set()
        threading.Event().wait(0.3)
        done.append("written")

    async def main() -> list[str]:
        task = asyncio.ensure_future(threads.run(work))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()  # a second cancellation does not cut the wait short either
        with pytest.raises(asyncio.CancelledError):
            await task
        return list(done)

    try:
        seen_when_cancelled = asyncio.run(main())
    finally:
        threads.close()
    assert seen_when_cancelled == ["written"]


def test_work_not_begun_when_its_request_is_cancelled_never_runs() -> None:
    threads = RequestThreads(1)
    release = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        busy = asyncio.ensure_future(threads.run(lambda: release.wait(5)))
        queued = asyncio.ensure_future(threads.run(lambda: ran.append("ran")))
        await asyncio.sleep(0.1)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        await busy

    try:
        asyncio.run(main())
    finally:
        threads.close()
    assert ran == []


def test_closed_threads_start_again_on_next_use_at_their_new_size() -> None:
    threads = RequestThreads(1)
    try:
        assert asyncio.run(threads.run(lambda: 1)) == 1
        threads.close()
        threads.resize(3)
        names = asyncio.run(_names_at_once(threads, 3))
    finally:
        threads.close()
    assert len(set(names)) == 3


async def _names_at_once(threads: RequestThreads, n: int) -> list[str]:
    barrier = threading.Barrier(n, timeout=5)

    def work() -> str:
        barrier.wait()  # only met if n threads run at once
        return threading.current_thread().name

    return list(await asyncio.gather(*(threads.run(work) for _ in range(n))))


def test_a_started_app_gives_the_pool_a_thread_for_each_writer_that_may_hold_one(
    client: TestClient,
) -> None:
    state = client.app.state.jobchat  # type: ignore[attr-defined]
    turn, slots = state.db.write_turn, state.db.write_slots
    writers = turn.max_waiting + 1 + slots.slots + slots.max_waiting
    assert writers > 0
    assert state.threads.size == READ_THREADS + writers


_SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="none")


def test_the_work_runs_in_the_request_s_context() -> None:
    """What the request set (its id, its client's address) is what its work reads, as with
    anyio's to_thread; and what the work sets stays with it."""
    threads = RequestThreads(1)

    async def request(name: str) -> tuple[str, str]:
        _SEEN.set(name)

        def work() -> str:
            seen = _SEEN.get()
            _SEEN.set("changed by the work")
            return seen

        return await threads.run(work), _SEEN.get()

    async def main() -> list[tuple[str, str]]:
        return list(await asyncio.gather(request("first"), request("second")))

    try:
        answers = asyncio.run(main())
    finally:
        threads.close()
    assert answers == [("first", "first"), ("second", "second")]


def test_a_thread_free_again_takes_the_next_work_instead_of_a_new_one() -> None:
    threads = RequestThreads(8)

    async def one_after_another() -> set[str]:
        return {await threads.run(lambda: threading.current_thread().name) for _ in range(20)}

    try:
        names = asyncio.run(one_after_another())
    finally:
        threads.close()
    assert len(names) == 1


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt()])
def test_an_exception_beyond_exception_reaches_the_request_too(raised: BaseException) -> None:
    threads = RequestThreads(1)

    def fail() -> None:
        raise raised

    async def main() -> BaseException | None:
        try:
            await threads.run(fail)
        except BaseException as exc:  # what the request would see
            return exc
        return None

    try:
        seen = asyncio.run(main())
        again = asyncio.run(threads.run(lambda: "the thread serves on"))
    finally:
        threads.close()
    assert seen is raised
    assert again == "the thread serves on"


def test_stop_iteration_from_the_work_reaches_the_request_as_a_runtime_error() -> None:
    # An asyncio future cannot carry StopIteration (a coroutine would turn it into this too).
    threads = RequestThreads(1)

    def fail() -> None:
        raise StopIteration("done")

    try:
        with pytest.raises(RuntimeError) as raised:
            asyncio.run(threads.run(fail))
    finally:
        threads.close()
    assert isinstance(raised.value.args[0], StopIteration)


def test_work_whose_loop_closed_meanwhile_still_ends_and_the_thread_serves_on() -> None:
    threads = RequestThreads(1)
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def work() -> None:
        started.set()
        release.wait(5)
        finished.set()

    async def leave_it_running() -> None:
        task = asyncio.ensure_future(threads.run(work))
        # Left pending on purpose (its loop closes under it): not a leak to warn of.
        task._log_destroy_pending = False  # type: ignore[attr-defined]
        await asyncio.to_thread(started.wait, 5)

    try:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(leave_it_running())
        loop.close()  # the request's loop is gone before its work ends
        release.set()
        assert finished.wait(5)
        assert asyncio.run(threads.run(lambda: 2)) == 2
    finally:
        threads.close()


def test_close_waits_for_the_work_queued_before_it() -> None:
    threads = RequestThreads(1)
    release = threading.Event()
    done: list[int] = []

    def first() -> None:
        release.wait(5)
        done.append(1)

    async def queue_three() -> None:
        queued = [
            asyncio.ensure_future(threads.run(work))
            for work in (first, lambda: done.append(2), lambda: done.append(3))
        ]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*queued)

    def close_once_released() -> None:
        release.wait(5)
        threads.close()

    closer = threading.Thread(target=close_once_released)
    closer.start()
    try:
        asyncio.run(queue_three())
    finally:
        closer.join(5)
        threads.close()
    assert done == [1, 2, 3]


def test_a_thread_that_cannot_start_fails_the_request_and_leaves_no_work_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads = RequestThreads(2)
    ran: list[str] = []

    def refuse(_thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    try:
        with monkeypatch.context() as patched:
            patched.setattr(threading.Thread, "start", refuse)
            with pytest.raises(RuntimeError, match="can't start new thread"):
                asyncio.run(threads.run(lambda: ran.append("first")))
        # Threads start again, and only the work asked for now runs.
        asyncio.run(threads.run(lambda: ran.append("second")))
    finally:
        threads.close()
    assert ran == ["second"]
