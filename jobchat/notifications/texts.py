"""The text rung: one text per conversation to a candidate who chose them, for what they have
not read JOBCHAT_NOTIFY_SMS_DELAY_SECONDS after it arrived.

A periodic sweep turns members' due text clocks (``members.sms_due_at``, started by the ladder)
into jobs. The job looks again at what is true when it runs: something still unread and not yet
announced, consent and a textable number, no text for this conversation within the delay
(else the clock moves to when one may go), not their quiet hours (else it is held for their end),
and not the night where their phone is (JOBCHAT_SMS_QUIET_HOURS, decided by jobchat.sms.quiet as
for every text: else the clock moves to its end).
Then it sends one text through the SMS provider, retried on a 5xx, and records when it went.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, selectinload

from jobchat.auth.links import conversation_link, do_record_sign_in_link, new_sign_in_secret
from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.conversations.models import Member
from jobchat.db.engine import Database
from jobchat.directory.phones import normalise_phone
from jobchat.jobqueue.actions import Claimed, enqueue
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import JobKind, PermanentFailure, Settle
from jobchat.messages.channels import sms_refusal
from jobchat.messages.models import Delivery, HiddenMessage, Message
from jobchat.notifications.ladder import hold, quiet_until, text_due_by
from jobchat.sms.identity import SenderSettings, intro_line, sender_of
from jobchat.sms.intro import IntroClaims, Wait, do_record_intro_sent
from jobchat.sms.notice import notice_text, send_notice
from jobchat.sms.provider import SmsProvider
from jobchat.sms.quiet import sms_hold

TEXT_JOB = "notify.text"


# --- the sweep -----------------------------------------------------------------------------------


def any_text_due(session: Session, now: datetime) -> bool:
    found = session.scalar(select(Member.user_id).where(Member.sms_due_at <= now).limit(1))
    return found is not None


def do_queue_due_texts(session: Session, *, now: datetime) -> int:
    """One text job per member whose text clock ran out. The clock is cleared in the statement
    that reads it, so two workers sweeping at once cannot both queue it."""
    due = session.execute(
        update(Member)
        .where(Member.sms_due_at <= now)
        .values(sms_due_at=None)
        .returning(Member.conversation_id, Member.user_id)
        .execution_options(synchronize_session=False)
    ).all()
    for conversation_id, user_id in sorted(due):
        enqueue(
            session, TEXT_JOB, {"conversation_id": conversation_id, "user_id": user_id}, now=now
        )
    return len(due)


# --- the job -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Later:
    """Not now: the clock moves to ``at``; ``held`` when it waits for quiet hours to end."""

    at: datetime
    held: bool = False


@dataclass(frozen=True)
class _Notice:
    to: str
    sender: str
    job: str | None
    intro: str  # its first line, if it is the first text since the opt-in


@dataclass
class Texts:
    db: Database
    settings: Settings
    clock: Clock
    provider: SmsProvider | None

    @property
    def delay(self) -> timedelta:
        return timedelta(seconds=self.settings.notify_sms_delay_seconds)

    def job_kinds(self) -> dict[str, JobKind]:
        return {TEXT_JOB: JobKind(run=self.send)}

    async def send(self, job: Claimed) -> Settle | None:
        conv_id, user_id = int(job.payload["conversation_id"]), int(job.payload["user_id"])
        if self.provider is None:
            raise PermanentFailure("SMS is not set up on this server (JOBCHAT_SMS_PROVIDER)")
        decision = await in_thread(self._decide, conv_id, user_id)
        if decision is None:
            return None
        if isinstance(decision, _Later):
            later = decision

            def postpone(session: Session, now: datetime) -> None:
                member = session.get(Member, (conv_id, user_id))
                if member is None:
                    return
                text_due_by(session, member, later.at)
                if later.held:
                    hold(session, member.user, later.at)

            return postpone
        # The link's credential is recorded with the text's outcome: an attempt that fails
        # (and is retried) leaves none behind, so each text job makes one.
        secret = new_sign_in_secret()
        link = conversation_link(self.settings.public_url, secret, conv_id)
        # The job's retries are the same claimant: the intro is claimed again, not lost.
        claimant = f"job:{job.id}"
        intros = IntroClaims.of(self.db, self.clock, self.settings)
        introduced = await in_thread(intros.claim, user_id, claimant)
        if isinstance(introduced, Wait):
            # Not before the text that says who we are (jobchat.sms.intro).
            at = introduced.until

            def wait(session: Session, now: datetime) -> None:
                member = session.get(Member, (conv_id, user_id))
                if member is not None:
                    text_due_by(session, member, at)

            return wait
        intro = decision.intro if introduced else None
        body = notice_text(sender=decision.sender, job=decision.job, link=link, intro=intro)
        try:
            await send_notice(self.provider, to=decision.to, body=body)
        except Exception:
            if introduced:
                await in_thread(intros.release, user_id, claimant)
            raise

        def settle(session: Session, now: datetime) -> None:
            if introduced:
                do_record_intro_sent(session, user_id, claimant, now=now)
            do_record_sign_in_link(
                session,
                user_id=user_id,
                secret=secret,
                now=now,
                hours=self.settings.notify_link_hours,
            )
            member = session.get(Member, (conv_id, user_id))
            if member is not None:
                member.sms_notified_at = now

        return settle

    def _decide(self, conv_id: int, user_id: int) -> _Later | _Notice | None:
        now = self.clock.now()
        with self.db.read() as session:
            member = session.get(Member, (conv_id, user_id))
            if member is None:
                return None  # they left the conversation
            user = member.user
            if not (user.is_active and user.is_candidate and user.sms_notifications):
                return None
            region = self.settings.default_phone_region
            if sms_refusal(session, user, sms_enabled=True, default_region=region) is not None:
                return None  # no consent (or a STOP), or no number to text
            news = _unannounced(session, member)
            if not news:
                return None  # read in time, deleted, or announced by an earlier text
            # A message must have stayed unread for the delay (a release may run this early).
            if news[0].created_at + self.delay > now:
                return _Later(news[0].created_at + self.delay)
            if member.sms_notified_at is not None and member.sms_notified_at + self.delay > now:
                return _Later(member.sms_notified_at + self.delay)
            until = quiet_until(user, now)
            if until is not None:
                return _Later(until, held=True)
            night = sms_hold(user, now, self.settings.sms_quiet_window, default_region=region)
            if night is not None:
                return _Later(night)
            phone = normalise_phone(user.phone or "", region)
            assert phone is not None  # sms_refusal checked it
            newest = news[-1]
            sender = newest.author.name if newest.author is not None else "jobchat"
            conv = member.conversation
            intro = intro_line(sender_of(newest.author, SenderSettings.of(self.settings)))
            return _Notice(phone, sender, conv.job.title if conv.job is not None else None, intro)


def _unannounced(session: Session, member: Member) -> list[Message]:
    """What this member has not read and no text has announced yet, oldest first: not their
    own, not deleted or hidden, not one that reached them as an email or text itself."""
    user_id = member.user_id
    conditions = [
        Message.conversation_id == member.conversation_id,
        Message.id > member.last_read_message_id,
        Message.deleted_at.is_(None),
        (Message.author_id.is_(None)) | (Message.author_id != user_id),
        ~exists().where(HiddenMessage.message_id == Message.id, HiddenMessage.user_id == user_id),
        ~exists().where(Delivery.message_id == Message.id, Delivery.recipient_id == user_id),
    ]
    if member.sms_notified_at is not None:
        conditions.append(Message.created_at > member.sms_notified_at)
    return list(
        session.scalars(
            select(Message)
            .where(*conditions)
            .options(selectinload(Message.author))
            .order_by(Message.id)
        )
    )
