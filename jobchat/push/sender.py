"""The push job: one message to one browser subscription, encrypted (RFC 8291, aes128gcm) and
signed (VAPID, RFC 8292), POSTed to its push service (RFC 8030) through the egress guard.

Prepared in a read (jobchat.push.payload decides whether there is still something to say),
sent, and settled in the transaction that marks the job done: a push service that answers 404
or 410 no longer knows the subscription, so it is deleted there. 429, 5xx and unreachable
services are retried by the worker (after Retry-After, when given); any other answer fails
the job for good. One job per message and subscription, so a retry re-sends only that one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from py_vapid import Vapid02
from pywebpush import WebPusher
from sqlalchemy.orm import Session

from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.egress import Egress, EgressRefused
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import Failure, JobKind, PermanentFailure, RetryAfter, Settle
from jobchat.push.actions import do_forget_subscription
from jobchat.push.keys import vapid_key, vapid_subject
from jobchat.push.payload import Push, prepare_push
from jobchat.push.queue import PUSH_JOB
from jobchat.vapid_key import parse_private_key

log = logging.getLogger("jobchat.push")

# RFC 8292 allows at most 24 hours; a little less leaves room for clocks that disagree.
JWT_LIFETIME_SECONDS = 12 * 3600
# How many audiences' signed headers are kept at most.
SIGNED_CACHE_SIZE = 1000
# A Retry-After longer than this is taken as this: the push is stale by then anyway.
MAX_RETRY_AFTER_SECONDS = 6 * 3600
GONE = (404, 410)


_DEFAULT_PORTS = {"https": 443, "http": 80}


def origin(url: str) -> str:
    """The VAPID audience, the endpoint's origin as RFC 6454 serialises it: the scheme and the
    host in lower case, and the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


REFUSED = "refused"


def forget_refused(session: Session, job: Claimed, failure: Failure, now: datetime) -> None:
    """An endpoint whose host resolves to no public address will never take a push: drop the
    subscription rather than fail a job for each message to come (the browser subscribes
    again, if it is real, the next time the app opens)."""
    if failure.final and failure.code == REFUSED:
        do_forget_subscription(session, int(job.payload["subscription_id"]))


@dataclass
class Pusher:
    db: Database
    settings: Settings
    clock: Clock
    egress: Egress = field(init=False)
    # The key never changes while the process runs: read (or made) once.
    _vapid: Vapid02 | None = field(init=False, default=None)
    # The signed VAPID header per audience (push service origin) and when it expires: one
    # signature serves every push to that service for half its lifetime, instead of one each.
    # Bounded (least recently used goes first, expired ones on sight): the audiences come from
    # the endpoints users subscribe with, and anyone may send any number of them.
    _signed: OrderedDict[tuple[Vapid02, str], tuple[int, dict[str, str]]] = field(
        init=False, default_factory=OrderedDict
    )

    def __post_init__(self) -> None:
        if self.settings.vapid_private_key:
            # A key that does not parse stops the worker at start, not at its first push.
            self._vapid = parse_private_key(self.settings.vapid_private_key)
        self.egress = Egress(
            allow_insecure=self.settings.push_allow_insecure,
            timeout_seconds=self.settings.push_timeout_seconds,
        )

    def job_kinds(self) -> dict[str, JobKind]:
        return {
            PUSH_JOB: JobKind(run=self.send, on_failure=forget_refused, close=self.egress.close)
        }

    async def send(self, job: Claimed) -> Settle | None:
        subscription_id = int(job.payload["subscription_id"])
        message_id = int(job.payload["message_id"])
        user_id = int(job.payload["user_id"])
        push = await in_thread(self._prepare, user_id, subscription_id, message_id)
        if push is None:
            return None
        if self._vapid is None:
            self._vapid = await in_thread(vapid_key, self.db, self.settings, self.clock.now())
        try:
            data, headers = self.encode(push, self._vapid)
        except Exception as exc:
            # The same inputs would fail the same way on every retry (a key or an audience
            # py_vapid does not take).
            raise PermanentFailure(f"cannot encode the push: {exc}", code="encode") from exc
        try:
            answer = await self.egress.post(push.endpoint, data=data, headers=headers)
        except EgressRefused as exc:
            raise PermanentFailure(f"push endpoint refused: {exc}", code=REFUSED) from exc
        status = answer.status
        if 200 <= status < 300:
            return None
        if status in GONE:
            log.info("push subscription %s is gone (%s): deleting it", subscription_id, status)

            def forget(session: Session, now: datetime) -> None:
                do_forget_subscription(session, subscription_id)

            return forget
        if status == 429 or status >= 500:
            wait = retry_after_seconds(answer.headers.get("Retry-After"), self.clock.now())
            raise RetryAfter(f"push service answered {status}", seconds=wait)
        detail = answer.body[:200].decode("utf-8", "replace")
        log.error("push service refused push %s for good: %s %s", job.id, status, detail)
        raise PermanentFailure(f"push service answered {status}: {detail}", code=str(status))

    def _prepare(self, user_id: int, subscription_id: int, message_id: int) -> Push | None:
        with self.db.read() as session:
            return prepare_push(session, user_id, subscription_id, message_id, self.clock.now())

    def encode(self, push: Push, vapid: Vapid02) -> tuple[bytes, dict[str, str]]:
        """The encrypted body and the headers of one push."""
        subscription = {
            "endpoint": push.endpoint,
            "keys": {"p256dh": push.p256dh, "auth": push.auth},
        }
        body: bytes = WebPusher(subscription).encode(push.data(), "aes128gcm")["body"]
        headers = {
            **self._vapid_headers(vapid, origin(push.endpoint)),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.settings.push_ttl_seconds),
            "Urgency": push.urgency,
            "Topic": push.topic,
        }
        return body, headers

    def _vapid_headers(self, vapid: Vapid02, audience: str) -> dict[str, str]:
        # Real time, not the injected clock: the push service checks it against its own.
        now = int(time.time())
        key = (vapid, audience)
        cached = self._signed.get(key)
        if cached is not None and cached[0] - now > JWT_LIFETIME_SECONDS // 2:
            self._signed.move_to_end(key)
            return cached[1]
        expires = now + JWT_LIFETIME_SECONDS
        claims = {"aud": audience, "exp": expires, "sub": vapid_subject(self.settings)}
        headers: dict[str, str] = vapid.sign(claims)
        self._signed[key] = (expires, headers)
        self._signed.move_to_end(key)
        self._forget_signed(now)
        return headers

    def _forget_signed(self, now: int) -> None:
        # Only after a new signature (rare, and dearer than this scan of at most the bound).
        for stale in [k for k, (expires, _) in self._signed.items() if expires <= now]:
            del self._signed[stale]
        while len(self._signed) > SIGNED_CACHE_SIZE:
            self._signed.popitem(last=False)
