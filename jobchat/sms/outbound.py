"""The SMS job: an SMS-channel message handed to the provider, its delivery record kept up to
date. Retried by the worker when the provider answers 5xx or not at all; a 4xx answer ends it
failed with the provider's error code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.worker import JobKind, PermanentFailure, Settle
from jobchat.messages.actions import SMS_DELIVERY_JOB
from jobchat.messages.deliveries import record_delivery_failure, record_delivery_sent
from jobchat.messages.models import Delivery, DeliveryStatus, Message
from jobchat.sms.inbound import apply_sms_status_reports
from jobchat.sms.provider import SmsProvider, SmsRejected, SmsSettings, provider_for
from jobchat.sms.queries import number_opt_out

STATUS_CALLBACK_PATH = "/api/v1/inbound/sms/twilio/status"


def sms_settings(settings: Settings) -> SmsSettings:
    return SmsSettings(
        provider=settings.sms_provider,
        twilio_account_sid=settings.twilio_account_sid,
        twilio_auth_token=settings.twilio_auth_token,
        twilio_from_number=settings.twilio_from_number,
        twilio_messaging_service_sid=settings.twilio_messaging_service_sid,
        twilio_api_url=settings.twilio_api_url,
        timeout=settings.sms_timeout_seconds,
    )


@dataclass(frozen=True)
class _Text:
    to: str
    body: str


@dataclass
class Texter:
    db: Database
    settings: Settings
    provider: SmsProvider

    @classmethod
    def create(cls, db: Database, settings: Settings) -> Texter | None:
        provider = provider_for(sms_settings(settings))
        return cls(db, settings, provider) if provider is not None else None

    def job_kinds(self) -> dict[str, JobKind]:
        return {
            SMS_DELIVERY_JOB: JobKind(run=self.send_delivery, on_failure=record_delivery_failure)
        }

    @property
    def status_callback(self) -> str | None:
        if self.provider.name != "twilio":
            return None
        return self.settings.public_url.rstrip("/") + STATUS_CALLBACK_PATH

    async def send_delivery(self, job: Claimed) -> Settle | None:
        delivery_id = int(job.payload["delivery_id"])
        text = await asyncio.to_thread(self._prepare, delivery_id)
        if text is None:
            return None
        try:
            sent = await self.provider.send(
                to=text.to, body=text.body, status_callback=self.status_callback
            )
        except SmsRejected as exc:
            raise PermanentFailure(
                f"{self.provider.name} refused it: {exc.message}", code=exc.code
            ) from exc

        def settle(session: Session, now: datetime) -> None:
            delivery = record_delivery_sent(session, delivery_id, job, sent.provider_id, now)
            if delivery is not None:
                # Twilio may have called back about it already, before this was recorded.
                apply_sms_status_reports(session, delivery, now)

        return settle

    def _prepare(self, delivery_id: int) -> _Text | None:
        with self.db.read() as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.status != DeliveryStatus.queued:
                return None  # cancelled (deleted for everyone), or sent by an earlier attempt
            message = session.get(Message, delivery.message_id)
            if message is None or message.is_deleted:
                return None
            recipient = delivery.recipient
            if not recipient.sms_consent or any(
                number_opt_out(session, n) for n in {delivery.address, recipient.phone}
            ):
                # They (or their number) texted STOP after this was queued: it must not go.
                raise PermanentFailure("the candidate opted out of SMS before it went out")
            return _Text(to=delivery.address, body=message.body)
