"""What one running app holds: settings, the database, the clock and the send limiter."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobchat.clock import Clock, SystemClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.ratelimit import RateLimiter


@dataclass
class AppState:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    send_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(120, 60.0))
