"""The signed VAPID headers kept per push service: one signature serves every push to a service
for half its lifetime, but the audiences come from endpoints users choose, so what is kept is
bounded, and expired signatures are dropped."""

from __future__ import annotations

import pytest

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.push import sender
from jobchat.push.keys import vapid_key
from jobchat.push.sender import JWT_LIFETIME_SECONDS, Pusher


def test_the_signed_headers_kept_are_bounded_and_expired_ones_dropped(
    db: Database, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender, "SIGNED_CACHE_SIZE", 20)
    pusher = Pusher(db, settings, clock)
    vapid = vapid_key(db, settings, clock.now())
    now = [1_800_000_000.0]
    monkeypatch.setattr("jobchat.push.sender.time.time", lambda: now[0])

    first = pusher._vapid_headers(vapid, "https://push0.example")
    assert pusher._vapid_headers(vapid, "https://push0.example") is first  # reused, not re-signed
    for n in range(1, 50):
        pusher._vapid_headers(vapid, f"https://push{n}.example")
        # The one in use stays: least recently used goes first.
        assert pusher._vapid_headers(vapid, "https://push0.example") is first
    assert len(pusher._signed) == 20
    audiences = {audience for _, audience in pusher._signed}
    assert "https://push0.example" in audiences and "https://push1.example" not in audiences

    now[0] += JWT_LIFETIME_SECONDS + 1  # every one kept has expired
    fresh = pusher._vapid_headers(vapid, "https://fresh.example")
    assert [audience for _, audience in pusher._signed] == ["https://fresh.example"]
    assert pusher._vapid_headers(vapid, "https://fresh.example") is fresh
