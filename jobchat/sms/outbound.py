"""The SMS job: an SMS-channel message handed to the provider, its delivery record kept up to
date. Retried by the worker when the provider answers 5xx or not at all; a 4xx answer ends it
failed with the provider's error code.

A text held for the candidate's night (status ``held``, see jobchat.sms.quiet) has its job run
at the hold's end. The job looks at the window again then: still night for them (their zone or
the setting changed meanwhile) and it is held on, with a new job at the new end; otherwise the
delivery becomes ``queued`` (committed before the text goes, so that a crash after it is an
ordinary queued text, sent once by the next attempt) and goes out as any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from jobchat.auth.links import (
    attachment_link,
    conversation_link,
    do_record_sign_in_link,
    new_sign_in_secret,
)
from jobchat.clock import Clock, SystemClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import Claimed, enqueue
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import JobKind, PermanentFailure, Settle
from jobchat.messages.actions import SMS_DELIVERY_JOB
from jobchat.messages.deliveries import record_delivery_failure, record_delivery_sent
from jobchat.messages.models import Delivery, DeliveryStatus, Message
from jobchat.sms.files import files_line, with_files
from jobchat.sms.identity import SenderSettings, intro_line, sender_of
from jobchat.sms.inbound import apply_sms_status_reports
from jobchat.sms.intro import IntroClaims, Wait, do_record_intro_sent, with_intro
from jobchat.sms.provider import SmsProvider, SmsRejected, SmsSettings, provider_for
from jobchat.sms.queries import number_opt_out
from jobchat.sms.quiet import sms_hold

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
    # The secret of the sign-in link to the message's files, recorded once the text went.
    link_secret: str | None = None
    user_id: int = 0
    # The intro line this text starts with if it is the first since an opt-in (jobchat.sms.intro)
    intro: str | None = None
    # The claim on the intro, when it carries it.
    intro_claim: str | None = None


@dataclass(frozen=True)
class _Held:
    until: datetime


@dataclass
class Texter:
    db: Database
    settings: Settings
    provider: SmsProvider
    # What "now" is when a held text's hold is looked at again (the worker's, in tests).
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def create(cls, db: Database, settings: Settings, clock: Clock | None = None) -> Texter | None:
        provider = provider_for(sms_settings(settings))
        if provider is None:
            return None
        return cls(db, settings, provider, clock if clock is not None else SystemClock())

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
        text = await in_thread(self._prepare, delivery_id)
        if text is None:
            return None
        if isinstance(text, _Held):
            return _hold_on(delivery_id, text.until)
        if isinstance(text, Wait):
            return _again(delivery_id, text.until)
        try:
            sent = await self.provider.send(
                to=text.to, body=text.body, status_callback=self.status_callback
            )
        except SmsRejected as exc:
            await in_thread(self._release_intro, text)
            raise PermanentFailure(
                f"{self.provider.name} refused it: {exc.message}", code=exc.code
            ) from exc
        except Exception:
            await in_thread(self._release_intro, text)
            raise

        def settle(session: Session, now: datetime) -> None:
            delivery = record_delivery_sent(session, delivery_id, job, sent.provider_id, now)
            if delivery is not None:
                # Twilio may have called back about it already, before this was recorded.
                apply_sms_status_reports(session, delivery, now)
            if text.intro_claim is not None:
                do_record_intro_sent(session, text.user_id, text.intro_claim, now=now)
            if text.link_secret is not None:
                do_record_sign_in_link(
                    session,
                    user_id=text.user_id,
                    secret=text.link_secret,
                    now=now,
                    hours=self.settings.notify_link_hours,
                )

        return settle

    def _release_intro(self, text: _Text) -> None:
        """An attempt that carried the intro failed: the next text to go carries it."""
        if text.intro_claim is not None:
            IntroClaims.of(self.db, self.clock, self.settings).release(
                text.user_id, text.intro_claim
            )

    def _prepare(self, delivery_id: int) -> _Text | _Held | Wait | None:
        with self.db.read() as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.status not in Delivery.UNSENT:
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
            text = self._text(delivery, message)
            held = delivery.status == DeliveryStatus.held
            if held:
                until = sms_hold(
                    recipient,
                    self.clock.now(),
                    self.settings.sms_quiet_window,
                    default_region=self.settings.default_phone_region,
                )
                if until is not None:
                    return _Held(until)
        if held and not self._release(delivery_id):
            return None
        return self._introduced(delivery_id, text)

    def _text(self, delivery: Delivery, message: Message) -> _Text:
        """What the text says: the message, and for its files a line with a sign-in link
        (made here, recorded when the text went: a failed attempt leaves no credential)."""
        files = [a for a in message.attachments if a.removed_at is None]
        sender = sender_of(message.author, SenderSettings.of(self.settings))
        intro = intro_line(sender)
        if not files:
            return _Text(
                to=delivery.address,
                body=message.body,
                user_id=delivery.recipient_id,
                intro=intro,
            )
        secret = new_sign_in_secret()
        public_url = self.settings.public_url
        link = (
            attachment_link(public_url, secret, files[0].id)
            if len(files) == 1
            else conversation_link(public_url, secret, message.conversation_id)
        )
        author = message.author.name if message.author is not None else "jobchat"
        line = files_line(sender=author, filenames=[a.filename for a in files], link=link)
        return _Text(
            to=delivery.address,
            body=with_files(message.body, line),
            link_secret=secret,
            user_id=delivery.recipient_id,
            intro=intro,
        )

    def _introduced(self, delivery_id: int, text: _Text) -> _Text | Wait:
        """The text, with the intro first if it is the first to go since the opt-in; or a wait
        for the text that is."""
        if text.intro is None or with_intro(text.body, text.intro) is None:
            return text
        claimant = f"delivery:{delivery_id}"
        claimed = IntroClaims.of(self.db, self.clock, self.settings).claim(text.user_id, claimant)
        if isinstance(claimed, Wait):
            return claimed
        if not claimed:
            return text
        body = with_intro(text.body, text.intro)
        assert body is not None
        return replace(text, body=body, intro_claim=claimant)

    def _release(self, delivery_id: int) -> bool:
        """Held → queued, where it is still held (not cancelled meanwhile)."""
        with self.db.work() as session:
            released = session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.held)
                .returning(Delivery.id)
                .values(status=DeliveryStatus.queued, held_until=None, updated_at=self.clock.now())
                .execution_options(synchronize_session=False)
            )
            return released.first() is not None


def _again(delivery_id: int, at: datetime) -> Settle:
    """Not before the text that carries the intro: this job ends, and one at ``at`` takes its
    place (the delivery stays queued)."""

    def settle(session: Session, now: datetime) -> None:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.status not in Delivery.UNSENT:
            return  # cancelled meanwhile
        enqueue(session, SMS_DELIVERY_JOB, {"delivery_id": delivery_id}, now=now, run_at=at)

    return settle


def _hold_on(delivery_id: int, until: datetime) -> Settle:
    """Still night for the candidate: this job ends, and one at the new end takes its place, in
    the transaction that records it (so there is always exactly one)."""

    def settle(session: Session, now: datetime) -> None:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.held:
            return  # cancelled meanwhile
        delivery.held_until = until
        delivery.next_attempt_at = until
        delivery.updated_at = now
        enqueue(session, SMS_DELIVERY_JOB, {"delivery_id": delivery_id}, now=now, run_at=until)

    return settle
