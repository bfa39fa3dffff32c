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
from jobchat.request_threads import RequestThreads


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
    # What the ordinary send, inbox and history pages run on (jobchat.request_threads).
    threads: RequestThreads = field(default_factory=RequestThreads)
