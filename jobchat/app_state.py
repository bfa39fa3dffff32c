"""What one running app holds: settings, the database, the clock and the send limiter."""

from __future__ import annotations

from dataclasses import dataclass

from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.ratelimit import RateLimiter


@dataclass(frozen=True)
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    send_limiter: RateLimiter
