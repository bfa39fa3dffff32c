"""The ladder job: for one new message, who of its conversation is told, how and when.

Per member other than the author (and only while the message is unread by them):

- push: push notifications on, a subscription, no socket open on the app (they would see it
  there), and not in quiet hours -> one push job per subscription. In quiet hours the push is
  held: the member remembers the newest held message, the person when their window ends
  (jobchat.notifications.release sends it then).
- text (candidates who chose it and can be texted): the member's text clock starts, at the
  message's time plus JOBCHAT_NOTIFY_SMS_DELAY_SECONDS (jobchat.notifications.texts).
- email: unchanged; its clock was started by the send itself (jobchat.notifications.email).

Everything is written in the job's settle transaction, with the job marked done: a re-run of a
job that did not finish queues nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from jobchat.config import Settings
from jobchat.conversations.models import Member
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import JobKind, Settle
from jobchat.messages.channels import sms_refusal
from jobchat.messages.models import Delivery, HiddenMessage, Message
from jobchat.notifications.queue import NOTIFY_JOB
from jobchat.push.queries import subscribed_before, subscription_ids_by_user
from jobchat.push.queue import enqueue_push
from jobchat.quiet_hours import quiet_hours_of
from jobchat.realtime.presence import Presence

log = logging.getLogger("jobchat.notifications")

# How long the ladder waits for the presence store before it takes everyone to be away.
PRESENCE_WAIT_SECONDS = 2.0


def quiet_until(user: User, now: datetime) -> datetime | None:
    """When the quiet hours ``now`` falls in end for ``user``; None outside them."""
    window = quiet_hours_of(user.quiet_start, user.quiet_end)
    return window.until(now, user.timezone) if window is not None else None


def hold(session: Session, user: User, until: datetime) -> None:
    """Remember that something waits for the end of the person's quiet hours. A statement, not
    an assignment: had the release sweep cleared the time since this job read the row, the
    assignment would look unchanged and send nothing, and the held push would be stranded.
    The earlier end wins (like _hold_push)."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            notify_held_until=case(
                (
                    or_(User.notify_held_until.is_(None), User.notify_held_until > until),
                    until,
                ),
                else_=User.notify_held_until,
            )
        )
        .execution_options(synchronize_session=False)
    )


def text_due_by(session: Session, member: Member, at: datetime) -> None:
    """Start (or bring forward) the member's text clock. In one statement, not read and then
    written: ladder jobs of two messages run at once, and the earlier time must win."""
    session.execute(
        update(Member)
        .where(Member.conversation_id == member.conversation_id, Member.user_id == member.user_id)
        .values(
            sms_due_at=case(
                (or_(Member.sms_due_at.is_(None), Member.sms_due_at > at), at),
                else_=Member.sms_due_at,
            )
        )
        .execution_options(synchronize_session=False)
    )


def _hold_push(session: Session, member: Member, message_id: int) -> None:
    """Remember the newest held message (one statement, for the same reason as above)."""
    session.execute(
        update(Member)
        .where(Member.conversation_id == member.conversation_id, Member.user_id == member.user_id)
        .values(
            push_held_id=case(
                (
                    or_(Member.push_held_id.is_(None), Member.push_held_id < message_id),
                    message_id,
                ),
                else_=Member.push_held_id,
            )
        )
        .execution_options(synchronize_session=False)
    )


# The members a push could go to: not the author, push on, a device subscribed before the message.
_PUSHABLE = (
    select(Member.user_id)
    .join(User, User.id == Member.user_id)
    .where(
        Member.conversation_id == bindparam("conversation_id"),
        Member.user_id != bindparam("author_id"),
        User.deactivated_at.is_(None),
        User.push_notifications.is_(True),
        subscribed_before(User.id, bindparam("before")),
    )
)

# Who of a message's conversation may be told of it (not its author, nobody deactivated),
# with the message's time and whether they hid it; nothing once it is deleted for everyone.
_CONCERNED = (
    select(
        Member,
        User,
        Message.created_at,
        HiddenMessage.user_id.label("hidden"),
    )
    .join(User, User.id == Member.user_id)
    .join(Message, Message.conversation_id == Member.conversation_id)
    .outerjoin(
        HiddenMessage,
        (HiddenMessage.message_id == Message.id) & (HiddenMessage.user_id == Member.user_id),
    )
    .where(
        Message.id == bindparam("message_id"),
        Message.deleted_at.is_(None),
        Member.user_id != func.coalesce(Message.author_id, 0),
        User.deactivated_at.is_(None),
    )
    .order_by(Member.user_id)
)


@dataclass
class Ladder:
    db: Database
    settings: Settings
    presence: Presence

    def job_kinds(self) -> dict[str, JobKind]:
        return {NOTIFY_JOB: JobKind(run=self.run)}

    async def run(self, job: Claimed) -> Settle | None:
        message_id = int(job.payload["message_id"])
        pushable = await in_thread(self._pushable, message_id)
        if pushable is None:
            return None  # gone, or deleted for everyone before anyone was told
        online = await self._online(pushable)

        def settle(session: Session, now: datetime) -> None:
            self.decide(session, message_id, online=online, now=now)

        return settle

    def _pushable(self, message_id: int) -> list[int] | None:
        """The members a push could go to (so only they are looked up in presence)."""
        with self.db.read() as session:
            message = session.get(Message, message_id)
            if message is None or message.is_deleted:
                return None
            params = {
                "conversation_id": message.conversation_id,
                "author_id": message.author_id or 0,
                "before": message.created_at,
            }
            return list(session.scalars(_PUSHABLE, params))

    async def _online(self, user_ids: list[int]) -> set[int]:
        if not user_ids:
            return set()
        try:
            return await asyncio.wait_for(self.presence.online(user_ids), PRESENCE_WAIT_SECONDS)
        except Exception as exc:
            # Better a push to someone who has the app open than none to someone who has not.
            log.warning("presence unavailable (%s): pushing as if nobody had the app open", exc)
            return set()

    def decide(self, session: Session, message_id: int, *, online: set[int], now: datetime) -> None:
        # The message (unless deleted for everyone meanwhile) with whom it may concern and
        # whether they hid it, in one statement: this runs in the write turn for every message.
        rows = session.execute(_CONCERNED, {"message_id": message_id}).all()
        if not rows:
            return
        created_at: datetime = rows[0].created_at

        # An email or text of the message itself reached them already: no text about it.
        # Loaded only for someone who takes texts (few do, and every message comes here).
        def delivered() -> set[int]:
            return set(
                session.scalars(
                    select(Delivery.recipient_id).where(Delivery.message_id == message_id)
                )
            )

        subscriptions = subscription_ids_by_user(
            session,
            [u.id for _, u, _, _ in rows if u.push_notifications and u.id not in online],
            before=created_at,
            now=now,
        )
        sms_delay = timedelta(seconds=self.settings.notify_sms_delay_seconds)
        for member, user, _, hidden in rows:
            if member.last_read_message_id >= message_id or hidden is not None:
                continue  # read (or hidden) already: nothing to tell
            devices = subscriptions.get(user.id, [])
            if devices and user.push_notifications and user.id not in online:
                until = quiet_until(user, now)
                if until is None:
                    for subscription_id in devices:
                        enqueue_push(
                            session,
                            user_id=user.id,
                            subscription_id=subscription_id,
                            message_id=message_id,
                            now=now,
                        )
                else:
                    _hold_push(session, member, message_id)
                    hold(session, user, until)
            if (
                user.is_candidate
                and user.sms_notifications
                and user.id not in delivered()
                and self._textable(session, user)
            ):
                text_due_by(session, member, created_at + sms_delay)

    def _textable(self, session: Session, user: User) -> bool:
        return (
            sms_refusal(
                session,
                user,
                sms_enabled=bool(self.settings.sms_provider),
                default_region=self.settings.default_phone_region,
            )
            is None
        )
