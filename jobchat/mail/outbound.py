"""The email jobs: email-channel messages, unread-message notifications, closed notices.

Each job reads what it needs, builds the email, hands it to the transport, and only then, in
the transaction that marks the job done, records what went out (a delivery marked sent, the
Message-ID kept for threading and bounces). A job that fails is retried by the worker; every
job first checks whether its work is still to do, so a retry never sends what already went.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr

from sqlalchemy import update
from sqlalchemy.orm import Session

from jobchat.auth.links import (
    attachment_link,
    conversation_link,
    do_record_sign_in_link,
    new_sign_in_secret,
)
from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.conversations import render
from jobchat.conversations.models import Conversation, Kind, Member
from jobchat.conversations.schemas import Names
from jobchat.db.engine import Database
from jobchat.directory.models import User, UserKind
from jobchat.files.storage import Missing, Storage
from jobchat.inputs import fold_controls
from jobchat.jobqueue.actions import Claimed
from jobchat.jobqueue.threads import in_thread
from jobchat.jobqueue.worker import JobKind, Settle
from jobchat.localtime import format_date, format_datetime
from jobchat.mail import compose
from jobchat.mail.addresses import MailKeys
from jobchat.mail.attachments import (
    EmailFile,
    add_parts,
    file_lines,
    files_of,
    fit_inside,
    with_file_names,
)
from jobchat.mail.models import EmailKind, InboundEmail, SentEmail
from jobchat.mail.queries import (
    NotifyRecipient,
    applied_at,
    notify_recipient,
    thread_message_ids,
    unread_to_notify,
)
from jobchat.mail.transport import MailTransport
from jobchat.messages.actions import EMAIL_DELIVERY_JOB as DELIVERY_JOB
from jobchat.messages.deliveries import record_delivery_failure, record_delivery_sent
from jobchat.messages.models import Delivery, DeliveryStatus, Message

NOTIFICATION_JOB = "email.notification"
CLOSED_NOTICE_JOB = "email.closed_notice"
NOTIFY_MAX_LISTED = 10
SETTINGS_HINT = "To stop these emails, turn off email notifications in your settings."


@dataclass(frozen=True)
class _Prepared:
    email: EmailMessage
    address: str
    conversation_id: int
    user_id: int
    # Secrets of the sign-in links to files the email carries, recorded once it went.
    link_secrets: tuple[str, ...] = ()


@dataclass
class Mailer:
    db: Database
    clock: Clock
    settings: Settings
    keys: MailKeys
    transport: MailTransport
    storage: Storage

    @property
    def from_address(self) -> str:
        return parseaddr(self.settings.email_from)[1] or self.settings.email_from

    @property
    def from_name(self) -> str:
        return parseaddr(self.settings.email_from)[0] or "jobchat"

    def job_kinds(self) -> dict[str, JobKind]:
        return {
            DELIVERY_JOB: JobKind(run=self.send_delivery, on_failure=record_delivery_failure),
            NOTIFICATION_JOB: JobKind(run=self.send_notification),
            CLOSED_NOTICE_JOB: JobKind(run=self.send_closed_notice),
        }

    async def _send(self, prepared: _Prepared) -> None:
        # VERP: each email's own signed bounce address, so that a bounce proves which email it
        # is about (a forged one, naming our Message-ID, cannot mark a delivery failed).
        sender = self.keys.bounce_address(prepared.email["Message-ID"])
        await self.transport.send(prepared.email, sender=sender, recipients=[prepared.address])

    def _addressing(
        self, sender_name: str, conversation_id: int, *, to_id: int, to_name: str, to_address: str
    ) -> compose.Addressing:
        return compose.Addressing(
            from_name=sender_name,
            from_address=self.from_address,
            to_name=to_name,
            to_address=to_address,
            reply_to=self.keys.reply_address(conversation_id, to_id),
        )

    def _threading(
        self, session: Session, message_id: str, conv_id: int, user_id: int
    ) -> compose.Threading:
        earlier = [m for m in thread_message_ids(session, conv_id, user_id) if m != message_id]
        return compose.Threading(
            message_id=message_id,
            in_reply_to=earlier[-1] if earlier else None,
            references=tuple(earlier),
        )

    def _record(
        self,
        session: Session,
        prepared: _Prepared,
        kind: EmailKind,
        now: datetime,
        delivery_id: int | None = None,
    ) -> None:
        session.add(
            SentEmail(
                message_id_header=prepared.email["Message-ID"],
                kind=kind,
                conversation_id=prepared.conversation_id,
                user_id=prepared.user_id,
                address=prepared.address,
                delivery_id=delivery_id,
                sent_at=now,
            )
        )

    # --- an email-channel message ----------------------------------------------------------

    async def send_delivery(self, job: Claimed) -> Settle | None:
        delivery_id = int(job.payload["delivery_id"])
        prepared = await in_thread(self._prepare_delivery, delivery_id)
        if prepared is None:
            return None
        await self._send(prepared)

        def settle(session: Session, now: datetime) -> None:
            message_id = prepared.email["Message-ID"]
            if record_delivery_sent(session, delivery_id, job, message_id, now) is not None:
                self._record(session, prepared, EmailKind.message, now, delivery_id)
            # The links in the email that went: recorded with it (an attempt that failed
            # leaves no credentials behind; the next one makes its own).
            self._record_links(session, prepared, now)

        return settle

    def _record_links(self, session: Session, prepared: _Prepared, now: datetime) -> None:
        for secret in prepared.link_secrets:
            do_record_sign_in_link(
                session,
                user_id=prepared.user_id,
                secret=secret,
                now=now,
                hours=self.settings.notify_link_hours,
            )

    def _prepare_delivery(self, delivery_id: int) -> _Prepared | None:
        with self.db.read() as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.status != DeliveryStatus.queued:
                return None  # cancelled (deleted for everyone), or sent by an earlier attempt
            message = session.get(Message, delivery.message_id)
            assert message is not None
            if message.is_deleted:
                return None
            recipient = delivery.recipient
            author = message.author
            # One line each, also in the footer (names stored before control characters were
            # refused may hold a line break).
            sender = fold_controls(author.name) if author is not None else self.from_name
            org = (
                fold_controls(author.organization.name) if author and author.organization else None
            )
            message_id = self.keys.message_id("m", delivery.id)
            files = files_of(message.attachments)
            addressing = self._addressing(
                sender,
                message.conversation_id,
                to_id=recipient.id,
                to_name=recipient.name,
                to_address=recipient.email,
            )
            address, other_address = delivery.address, delivery.address != recipient.email
            recipient_id = recipient.id
            threading = self._threading(session, message_id, message.conversation_id, recipient.id)
            subject, text, date = message.subject, message.body, message.created_at
            conv_id = message.conversation_id
        # The files are read from the storage with no database transaction open.
        inside = fit_inside(files, self.settings.max_email_attachment_bytes)
        contents = self._contents(files) if inside else {}
        if inside:
            files = [f for f in files if f.storage_key in contents]  # gone meanwhile: left out
        links, secrets = (None, ()) if inside else self._file_links(files)
        email = compose.message_email(
            addressing=addressing,
            subject=subject or "A message for you",
            body=text,
            threading=threading,
            date=date,
            footer=(
                f"{sender}{f' ({org})' if org else ''} sent you this message with jobchat. "
                "Reply to this email to answer."
            ),
            files=file_lines(files, links),
            link_hours=int(self.settings.notify_link_hours),
        )
        if inside:
            add_parts(email, files, contents.__getitem__)
        if other_address:
            email.replace_header("To", fold_controls(address))
        return _Prepared(email, address, conv_id, recipient_id, secrets)

    def _contents(self, files: list[EmailFile]) -> dict[str, bytes]:
        """The files' bytes by storage key, read now (when the email is made, not at the
        send); one whose bytes are gone (removed meanwhile) is not among them."""
        contents: dict[str, bytes] = {}
        for f in files:
            try:
                contents[f.storage_key] = b"".join(self.storage.read(f.storage_key))
            except Missing:
                continue
        return contents

    def _file_links(self, files: list[EmailFile]) -> tuple[dict[int, str], tuple[str, ...]]:
        """A sign-in link to each file, by attachment id, and their secrets (recorded in
        ``settle``, once the email went)."""
        secrets = {f.id: new_sign_in_secret() for f in files}
        links = {
            file_id: attachment_link(self.settings.public_url, secret, file_id)
            for file_id, secret in secrets.items()
        }
        return links, tuple(secrets.values())

    # --- "you have unread messages" ---------------------------------------------------------

    async def send_notification(self, job: Claimed) -> Settle | None:
        conv_id, user_id = int(job.payload["conversation_id"]), int(job.payload["user_id"])
        prepared_and_newest = await in_thread(self._prepare_notification, job.id, conv_id, user_id)
        if prepared_and_newest is None:
            return None
        prepared, newest_id = prepared_and_newest
        await self._send(prepared)

        def settle(session: Session, now: datetime) -> None:
            # One statement, not the member loaded and flushed: this runs in the write turn.
            session.execute(
                update(Member)
                .where(
                    Member.conversation_id == conv_id,
                    Member.user_id == user_id,
                    Member.notified_through_id < newest_id,
                )
                .values(notified_through_id=newest_id)
                .execution_options(synchronize_session=False)
            )
            self._record(session, prepared, EmailKind.notification, now)
            # The sign-in link the email carries, recorded with it (as a delivery's file links
            # are): one write transaction per notification instead of two, and an attempt that
            # failed leaves no credential behind.
            self._record_links(session, prepared, now)

        return settle

    def _prepare_notification(
        self, job_id: int, conv_id: int, user_id: int
    ) -> tuple[_Prepared, int] | None:
        with self.db.read() as session:
            recipient = notify_recipient(session, conv_id, user_id)
            if recipient is None:
                return None  # they left the conversation
            if not recipient.email_notifications or not recipient.email:
                return None
            messages, total = unread_to_notify(
                session, conv_id, user_id, after=recipient.after, limit=NOTIFY_MAX_LISTED
            )
            if not messages:
                return None  # read in time, or deleted
            names = render.conversation_names(session, user_id, conv_id)
            about = self._about(session, user_id, recipient, names)
            message_id = self.keys.message_id("n", job_id)
            threading = self._threading(session, message_id, conv_id, user_id)
        tz = recipient.timezone
        listed = [
            compose.NotifiedMessage(
                author=m.author if m.author is not None else "jobchat",
                organization=m.organization if m.author is not None else None,
                sent_at=format_datetime(m.created_at, tz),
                preview=with_file_names(m.body, m.filenames),
            )
            for m in messages
        ]
        # The link's credential is recorded in ``settle``, with the email that carries it.
        secret = new_sign_in_secret()
        link = conversation_link(self.settings.public_url, secret, conv_id)
        email = compose.notification_email(
            addressing=self._addressing(
                self.from_name,
                conv_id,
                to_id=user_id,
                to_name=recipient.name,
                to_address=recipient.email,
            ),
            notification=compose.Notification(
                recipient_name=recipient.name,
                title=render.title(Kind(recipient.conv_kind), names, user_id),
                about=about,
                messages=listed,
                more=total - len(listed),
                link=link,
                link_hours=int(self.settings.notify_link_hours),
                settings_hint=SETTINGS_HINT,
            ),
            threading=threading,
            date=self.clock.now(),
        )
        prepared = _Prepared(email, recipient.email, conv_id, user_id, (secret,))
        return prepared, messages[-1].id

    @staticmethod
    def _about(
        session: Session, user_id: int, recipient: NotifyRecipient, names: Names
    ) -> list[str]:
        """The context a notification gives: for a candidate, the job and when they applied;
        for staff, the candidate and the job the conversation is about."""
        lines = []
        if recipient.kind == UserKind.candidate:
            if names.job_title is not None:
                lines.append(f"Job: {names.job_title}")
            applied = applied_at(
                session,
                user_id,
                application_id=recipient.application_id,
                job_id=recipient.job_id,
            )
            if applied is not None:
                lines.append(f"You applied on {format_date(applied, recipient.timezone)}.")
            return lines
        if names.candidate is not None:
            lines.append(f"Candidate: {names.candidate}")
        if names.job_title is not None:
            lines.append(f"Job: {names.job_title}")
        if names.partner is not None:
            lines.append(f"Partner: {names.partner}")
        return lines

    # --- "this conversation is closed" ------------------------------------------------------

    async def send_closed_notice(self, job: Claimed) -> Settle | None:
        inbound_id = int(job.payload["inbound_email_id"])
        prepared = await in_thread(self._prepare_closed_notice, inbound_id)
        if prepared is None:
            return None
        await self._send(prepared)

        def settle(session: Session, now: datetime) -> None:
            self._record(session, prepared, EmailKind.closed_notice, now)

        return settle

    def _prepare_closed_notice(self, inbound_id: int) -> _Prepared | None:
        with self.db.read() as session:
            inbound = session.get(InboundEmail, inbound_id)
            if inbound is None or inbound.conversation_id is None or inbound.user_id is None:
                return None
            user = session.get(User, inbound.user_id)
            conv = session.get(Conversation, inbound.conversation_id)
            if user is None or conv is None or not user.email:
                return None
            member = session.get(Member, (conv.id, user.id))
            title = (
                render.conversation_title(session, user.id, conv.id, conv.kind)
                if member
                else "this conversation"
            )
            message_id = self.keys.message_id("c", inbound.id)
            references = thread_message_ids(session, conv.id, user.id)
            if inbound.message_id_header and inbound.message_id_header not in references:
                references.append(inbound.message_id_header)
            email = compose.closed_notice_email(
                addressing=compose.Addressing(
                    from_name=self.from_name,
                    from_address=self.from_address,
                    to_name=user.name,
                    to_address=user.email,
                    reply_to=None,
                ),
                subject=compose.reply_subject(inbound.subject),
                title=title,
                threading=compose.Threading(
                    message_id=message_id,
                    in_reply_to=inbound.message_id_header,
                    references=tuple(references),
                ),
                date=self.clock.now(),
            )
            return _Prepared(email, user.email, conv.id, user.id)
