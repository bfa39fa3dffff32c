"""The per-user send budget: a sliding window, and how long a refused caller must wait."""

from __future__ import annotations

import pytest

from jobchat.errors import RateLimited
from jobchat.ratelimit import RateLimiter
from tests.support import Ticks


def test_past_the_limit_the_wait_is_until_the_oldest_hit_leaves_the_window() -> None:
    clock = Ticks(1000.0)
    limiter = RateLimiter(limit=3, window_seconds=60.0, clock=clock)
    for step in (0.0, 10.0, 20.5):
        clock.at = 1000.0 + step
        limiter.take("ann")
    clock.at = 1030.0
    with pytest.raises(RateLimited) as refused:
        limiter.take("ann")
    assert refused.value.status == 429
    assert refused.value.retry_after == 30  # the hit at 1000 leaves at 1060
    clock.at = 1059.2
    with pytest.raises(RateLimited) as refused:
        limiter.take("ann")
    assert refused.value.retry_after == 1  # 0.8 s, rounded up: never "0"
    # A refused attempt is not counted: once the first hit leaves, one more fits.
    clock.at = 1060.0
    limiter.take("ann")
    with pytest.raises(RateLimited) as refused:
        limiter.take("ann")
    assert refused.value.retry_after == 10  # now the hit at 1010 is the oldest


def test_each_key_has_its_own_window() -> None:
    clock = Ticks(1000.0)
    limiter = RateLimiter(limit=1, window_seconds=60.0, clock=clock)
    limiter.take("ann")
    limiter.take("bob")
    with pytest.raises(RateLimited):
        limiter.take("ann")
    assert limiter.hit("bob") == pytest.approx(60.0)


def test_a_refusal_does_not_share_its_wait_with_the_next_one() -> None:
    """The error's Retry-After is the instance's, not the class's: two refusals with different
    waits say different numbers."""
    clock = Ticks(1000.0)
    limiter = RateLimiter(limit=1, window_seconds=60.0, clock=clock)
    limiter.take("ann")
    clock.at += 50
    with pytest.raises(RateLimited) as first:
        limiter.take("ann")
    clock.at += 5
    with pytest.raises(RateLimited) as second:
        limiter.take("ann")
    assert (first.value.retry_after, second.value.retry_after) == (10, 5)
    assert RateLimited.retry_after is None


def test_a_hit_taken_back_frees_its_place_and_only_its_own() -> None:
    clock = Ticks(1000.0)
    limiter = RateLimiter(limit=2, window_seconds=60.0, clock=clock)
    limiter.take("ann")
    clock.at += 10
    give_back = limiter.take("ann")
    with pytest.raises(RateLimited):
        limiter.take("ann")
    give_back()
    give_back()  # twice changes nothing more
    clock.at += 1
    limiter.take("ann")  # the place the second hit had
    with pytest.raises(RateLimited) as refused:
        limiter.take("ann")
    assert refused.value.retry_after == 49  # the first hit, at 1000, still counts


def test_a_hit_taken_back_after_it_left_the_window_changes_nothing() -> None:
    clock = Ticks(1000.0)
    limiter = RateLimiter(limit=1, window_seconds=60.0, clock=clock)
    give_back = limiter.take("ann")
    clock.at += 61
    later = limiter.take("ann")
    give_back()
    with pytest.raises(RateLimited):
        limiter.take("ann")
    later()
    limiter.take("ann")
