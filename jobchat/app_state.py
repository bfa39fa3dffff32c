"""What one running app holds: settings, the database, the clock, the send limiter and the
recently seen tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobchat.auth.cache import TokenCache
from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.files.storage import Storage
from jobchat.ratelimit import RateLimiter


@dataclass(frozen=True)
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    send_limiter: RateLimiter
    # Where attachments are kept (JOBCHAT_STORAGE_URL).
    storage: Storage
    # Who recently presented which user token (a few seconds at most; see jobchat.auth.cache).
    tokens: TokenCache = field(default_factory=TokenCache)
