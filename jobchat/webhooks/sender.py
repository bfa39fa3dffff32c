"""The delivery job: one attempt to POST one event to one webhook, signed, through the egress
guard, its outcome settled with the job (jobchat.webhooks.outcomes).

The payload holds the delivery's msg_id only (a random id); the body is read from the
delivery row when the job runs. A 2xx is recorded in the transaction that marks the job done,
which the worker keeps retrying while the database is away: an event is sent again only if the
worker dies between the receiver's answer and that commit (receivers drop the repeat by its
webhook-id).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

import aiohttp
from sqlalchemy.orm import Session

from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.egress import Egress, EgressRefused
from jobchat.jobqueue.actions import Claimed, RetryPolicy
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import JobKind, Settle
from jobchat.webhooks import signing
from jobchat.webhooks.actions import DELIVER_JOB
from jobchat.webhooks.models import DeliveryState, Webhook
from jobchat.webhooks.outcomes import Attempt, cancel, record_attempt
from jobchat.webhooks.queries import delivery_by_msg_id

log = logging.getLogger("jobchat.webhooks")

# What we read of the receiver's answer: only its status matters.
MAX_ANSWER_BYTES = 4096
# The share of the worker's slots that webhook attempts may take at once.
WORKER_SHARE = 0.5
# What the delivery log says of an attempt that got no answer.
ADDRESS_NOT_ALLOWED = "address not allowed"
CONNECTION_FAILED = "connection failed"
TIMED_OUT = "timed out"


@dataclass(frozen=True)
class Prepared:
    delivery_id: int
    url: str
    msg_id: str
    body: bytes
    secrets: tuple[str, ...]
    # The webhook was disabled since the job was queued: the delivery is cancelled instead.
    disabled: bool = False


@dataclass
class WebhookSender:
    db: Database
    settings: Settings
    clock: Clock
    egress: Egress = field(init=False)
    policy: RetryPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.egress = Egress(
            allow_insecure=self.settings.webhooks_allow_insecure,
            timeout_seconds=self.settings.webhooks_timeout_seconds,
            max_body=MAX_ANSWER_BYTES,
            user_agent="jobchat-webhooks",
        )
        self.policy = RetryPolicy.of(self.settings)

    def job_kinds(self) -> dict[str, JobKind]:
        # Half the worker's slots at most: an endpoint that hangs until the timeout must not
        # hold up email, SMS and push.
        return {
            DELIVER_JOB: JobKind(run=self.deliver, close=self.egress.close, max_share=WORKER_SHARE)
        }

    async def deliver(self, job: Claimed) -> Settle | None:
        prepared = await in_thread(self._prepare, str(job.payload["msg_id"]), job.id)
        if prepared is None:
            return None
        delivery_id = prepared.delivery_id
        if prepared.disabled:

            def cancelled(session: Session, now: datetime) -> None:
                cancel(session, delivery_id, job.id)

            return cancelled
        attempt = await self._post(prepared, delivery_id, job.id)

        def settle(session: Session, now: datetime) -> None:
            record_attempt(session, attempt, now=now, policy=self.policy)

        return settle

    def _prepare(self, msg_id: str, job_id: int) -> Prepared | None:
        with self.db.read() as session:
            delivery = delivery_by_msg_id(session, msg_id)
            if (
                delivery is None
                or delivery.status != DeliveryState.pending
                or delivery.job_id != job_id  # an older job of it, or one queued twice
            ):
                return None
            webhook = session.get_one(Webhook, delivery.webhook_id)
            if webhook.disabled_at is not None:
                return Prepared(delivery.id, "", "", b"", (), disabled=True)
            now = self.clock.now()
            secrets = [webhook.secret]
            if webhook.previous_secret and webhook.previous_until and now < webhook.previous_until:
                secrets.append(webhook.previous_secret)
            body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":"))
            return Prepared(
                delivery.id, webhook.url, delivery.msg_id, body.encode(), tuple(secrets)
            )

    async def _post(self, prepared: Prepared, delivery_id: int, job_id: int) -> Attempt:
        # Real time, not the injected clock: receivers check it against their own.
        timestamp = int(time.time())
        headers = signing.headers(prepared.secrets, prepared.msg_id, timestamp, prepared.body)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        # The log (shown to the integration) says only which of a few things went wrong: what
        # the resolver answered, an internal address, or refused versus TLS failure would make
        # it a scanner of names and ports. The details go to our own log.
        detail: str | None = None
        retry_after: float | None = None
        try:
            answer = await self.egress.post(prepared.url, data=prepared.body, headers=headers)
            status = answer.status
            if not 200 <= status < 300:
                error = f"the endpoint answered {status}"
                asked = next(
                    (v for k, v in answer.headers.items() if k.lower() == "retry-after"), None
                )
                retry_after = retry_after_seconds(asked, time.time())
        except EgressRefused as exc:
            error, detail = ADDRESS_NOT_ALLOWED, str(exc)
        except TimeoutError:
            error = TIMED_OUT
            detail = f"no answer within {self.egress.timeout_seconds:g} s"
        except aiohttp.ClientError as exc:
            error, detail = CONNECTION_FAILED, f"{type(exc).__name__}: {exc}"
        duration_ms = int((time.monotonic() - started) * 1000)
        if error is not None:
            log.info("webhook delivery %s failed: %s", delivery_id, detail or error)
        return Attempt(delivery_id, job_id, status, error, duration_ms, retry_after)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """The wait a ``Retry-After`` header asks for (delay-seconds or an HTTP date), in seconds;
    None when there is none or it cannot be read (then only our backoff counts)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
