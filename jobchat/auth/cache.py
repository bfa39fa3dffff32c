"""A short-lived, in-process memory of the user tokens presented to this process.

Every request carries its bearer token, and looking it up cost a read transaction of its own
(two statements) on every call. A token's owner never changes, and a token's expiry is checked
on every use against the request's clock, exactly as the database lookup does.

Tokens are revoked (``DELETE /api/v1/tokens/{id}``) and people deactivated, though, and that
must hold at once on every process: the revoking process sends the news over the bus before it
answers, and each process's hub calls ``forget_user`` on receipt; the ``access.revoked`` event
the revocation stored reaches every hub too (at the latest at its next poll of the event table),
in case the bus lost the message. Only a token row changed in the database by hand, behind the
API's back, is still accepted for at most ``ttl_seconds`` (5 s). Keyed by the token's SHA-256
digest, like the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from jobchat.auth.actions import digest

TTL_SECONDS = 5.0


class TokenCache:
    def __init__(
        self,
        ttl_seconds: float = TTL_SECONDS,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # digest -> (user id, the token's expiry, when it was looked up)
        self._entries: dict[str, tuple[int, datetime | None, float]] = {}
        # Bumped by every forget_user: a lookup that read the database before a revocation
        # committed must not put the revoked token back (see generation and remember).
        self._generation = 0

    def user_id(self, secret: str, now: datetime) -> int | None:
        """The owner of a token looked up in the last ``ttl_seconds`` and not expired at ``now``;
        None means: look it up."""
        key = digest(secret)
        entry = self._entries.get(key)
        if entry is None:
            return None
        user_id, expires_at, seen_at = entry
        if self._monotonic() - seen_at > self.ttl_seconds or (
            expires_at is not None and expires_at <= now
        ):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return user_id

    @property
    def generation(self) -> int:
        """Read it before looking a token up in the database, and hand it to ``remember``."""
        return self._generation

    def remember(
        self, secret: str, user_id: int, expires_at: datetime | None, *, generation: int
    ) -> None:
        """A token just found valid in the database, by a lookup that started at
        ``generation``. If a revocation was heard since, the lookup may have read the token
        before it was revoked: it is not remembered (the next request looks it up again)."""
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self.max_entries:
                # The oldest go first (dicts keep insertion order).
                for key in list(self._entries)[: self.max_entries // 10 or 1]:
                    del self._entries[key]
            key = digest(secret)
            self._entries.pop(key, None)
            self._entries[key] = (user_id, expires_at, self._monotonic())

    def forget_user(self, user_id: int) -> None:
        """Drop every remembered token of this user (one of theirs was revoked, or they were
        deactivated): their next request is looked up in the database. Rare, so a scan."""
        with self._lock:
            self._generation += 1
            for key in [k for k, entry in self._entries.items() if entry[0] == user_id]:
                del self._entries[key]
