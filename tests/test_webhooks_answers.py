"""How a webhook's endpoint's answers steer its deliveries, as the Standard Webhooks
specification asks (every request still verified by the ``standardwebhooks`` package): a
``410 Gone`` disables the webhook at once; a ``Retry-After`` on a failed answer is waited out
when it asks for longer than the backoff (up to the longest backoff); and an endpoint that answers
again after being down gets the events other conversations hold in backoff at once, in order,
each once, instead of at the end of waits that may have grown to hours."""

from __future__ import annotations

import pytest

from jobchat.clock import FrozenClock
from jobchat.jobqueue.worker import Worker
from jobchat.webhooks.sender import retry_after_seconds
from tests.mail_support import drain
from tests.support import World, body, start
from tests.test_webhooks_delivery import HOOKS, bodies, hook, listed, log, settings, worker
from tests.webhook_receiver import Receiver, receiver

# The delivery tests' fixtures: insecure URLs allowed, a 0.3 s timeout, backoff from a minute
# up to four hours; their worker.
__all__ = ["receiver", "settings", "worker"]


def test_410_gone_disables_the_webhook_at_once(
    world: World, receiver: Receiver, worker: Worker, clock: FrozenClock
) -> None:
    made = hook(world, receiver, "ats")
    conv = start(world["emp_team"], "application", application="app1")
    receiver.answer("ats", [410])
    body(world["cand"].send(conv, "one"), 201)
    body(world["cand"].send(conv, "two"), 201)
    drain(worker)
    shown = listed(world, made["id"])
    assert shown["enabled"] is False
    assert shown["disabled_reason"] and "410" in shown["disabled_reason"]
    [attempt] = log(world, made["id"])
    assert attempt["status_code"] == 410
    assert attempt["delivery_status"] == "cancelled"
    # Neither what waited behind it nor anything later is sent, however long one waits.
    body(world["cand"].send(conv, "three"), 201)
    for _ in range(3):
        clock.advance(hours=5)
        drain(worker)
    assert [r.status for r in receiver.to("ats")] == [410]
    assert not receiver.rejected


def test_a_longer_retry_after_is_waited_out_up_to_the_longest_backoff(
    world: World, receiver: Receiver, worker: Worker, clock: FrozenClock
) -> None:
    hook(world, receiver, "ats")
    conv = start(world["emp_team"], "application", application="app1")
    receiver.answer(
        "ats",
        [
            (503, {"Retry-After": "7200"}),  # two hours: longer than the backoff, waited out
            (503, {"Retry-After": "9" * 40}),  # for ever: waited the longest backoff (four)
            (429, {"retry-after": "5"}),  # shorter than the backoff (four minutes): backoff
        ],
    )
    body(world["cand"].send(conv, "hello"), 201)

    def tried_after(**wait: float) -> int:
        clock.advance(**wait)
        drain(worker)
        return len(receiver.to("ats"))

    drain(worker)
    assert len(receiver.to("ats")) == 1
    assert tried_after(hours=1, minutes=59) == 1  # the backoff alone: after a minute
    assert tried_after(minutes=1, seconds=1) == 2
    assert tried_after(hours=3, minutes=59) == 2
    assert tried_after(minutes=1, seconds=1) == 3
    assert tried_after(seconds=30) == 3
    assert tried_after(minutes=4) == 4
    assert [r.status for r in receiver.to("ats")] == [503, 503, 429, 200]
    assert len({r.msg_id for r in receiver.to("ats")}) == 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),
        ("Wed, 31 Dec 2025 00:00:00 GMT", 0.0),  # in the past: no wait
        ("-5", None),
        ("1.5", None),
        ("\u00b2", None),  # a digit to str.isdigit, not to the HTTP grammar
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(value: str | None, seconds: float | None) -> None:
    now = 1767225600.0  # 2026-01-01T00:00:00Z
    assert retry_after_seconds(value, now) == seconds


def test_back_after_being_down_the_waiting_conversations_go_at_once_in_order(
    world: World, receiver: Receiver, worker: Worker, clock: FrozenClock
) -> None:
    made = hook(world, receiver, "ats")
    a = start(world["emp_team"], "application", application="app1")
    b = start(world["emp_team"], "case", application="app2")
    c = start(world["emp_team"], "application", application="app2")
    receiver.stop()
    for i in range(3):
        body(world["emp_team"].send(a, f"a{i}"), 201)
        body(world["emp_team"].send(b, f"b{i}"), 201)
    drain(worker)
    # Down for a few hours: the heads' waits have grown past an hour.
    for _ in range(8):
        clock.advance(minutes=30)
        drain(worker)
    assert receiver.to("ats") == []
    tries = len(log(world, made["id"]))
    receiver.start()
    # Something new happens in a third conversation: it goes at once, and answered, the
    # others' events follow without waiting out their backoff.
    body(world["emp_team"].send(c, "c0"), 201)
    drain(worker)
    drain(worker)
    got = receiver.delivered("ats")
    assert len(got) == 7 and len(receiver.to("ats")) == 7
    assert len({g.msg_id for g in got}) == 7
    assert bodies(got)[0] == "c0"
    assert [x for x in bodies(got) if x.startswith("a")] == ["a0", "a1", "a2"]
    assert [x for x in bodies(got) if x.startswith("b")] == ["b0", "b1", "b2"]
    assert not receiver.rejected
    assert listed(world, made["id"])["failing_since"] is None
    assert len(log(world, made["id"])) == tries + 7
    # Nothing more, however long one waits.
    clock.advance(days=2)
    drain(worker)
    assert len(receiver.to("ats")) == 7


def test_an_endpoint_still_failing_is_not_hurried(
    world: World, receiver: Receiver, worker: Worker, clock: FrozenClock
) -> None:
    """Only a 2xx after failures brings the others forward: new events of other conversations
    that fail too leave the waiting ones to their backoff."""
    made = hook(world, receiver, "ats")
    a = start(world["emp_team"], "application", application="app1")
    c = start(world["emp_team"], "application", application="app2")
    receiver.answer("ats", [500] * 3)
    body(world["emp_team"].send(a, "a0"), 201)
    drain(worker)
    clock.advance(seconds=61)
    drain(worker)  # a0's second attempt fails: the next waits about two minutes
    body(world["emp_team"].send(c, "c0"), 201)
    drain(worker)  # c0 fails too
    assert [r.status for r in receiver.to("ats")] == [500, 500, 500]
    clock.advance(seconds=20)
    drain(worker)
    assert len(receiver.to("ats")) == 3
    assert listed(world, made["id"])["failing_since"] is not None
    clock.advance(minutes=3)
    drain(worker)
    assert sorted(bodies(receiver.delivered("ats"))) == ["a0", "c0"]


def test_re_enabled_after_a_410_it_takes_new_events(
    world: World, receiver: Receiver, worker: Worker
) -> None:
    made = hook(world, receiver, "ats")
    conv = start(world["emp_team"], "application", application="app1")
    receiver.answer("ats", [410])
    body(world["cand"].send(conv, "gone"), 201)
    drain(worker)
    assert listed(world, made["id"])["enabled"] is False
    body(world.api.integration.post(f"{HOOKS}/{made['id']}/enable"), 200)
    body(world["cand"].send(conv, "back"), 201)
    drain(worker)
    assert bodies(receiver.delivered("ats")) == ["back"]
