"""Who our texts say they are from, and the short texts that say it: the intro line of the first
text after an opt-in, and the answers to HELP, to an opt-out and to an opt-in.

The name is the organisation (and person) who last texted the number, so that the answer names
whom the person actually heard from; else the deployment's JOBCHAT_SMS_SENDER_NAME. Nothing in
these texts is about a candidate: a number two candidates share gets only the staff member's name,
organisation and email, which that number was texted by anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.config import Settings
from jobchat.conversations.models import Member
from jobchat.directory.models import User, UserKind
from jobchat.messages.models import Channel, Delivery, Message
from jobchat.sms.segments import shorten

DEFAULT_NAME = "jobchat"
# Names in our texts are cut to this: the texts stay within a segment or two.
_LONGEST_NAME = 40


@dataclass(frozen=True)
class SenderSettings:
    name: str  # JOBCHAT_SMS_SENDER_NAME, or jobchat
    help_contact: str | None  # JOBCHAT_SMS_HELP_CONTACT

    @classmethod
    def of(cls, settings: Settings) -> SenderSettings:
        return cls(
            name=(settings.sms_sender_name or "").strip() or DEFAULT_NAME,
            help_contact=(settings.sms_help_contact or "").strip() or None,
        )


@dataclass(frozen=True)
class Sender:
    """Who a text is from: an organisation's name, and the person and their email if known."""

    name: str
    person: str | None = None
    email: str | None = None


def sender_of(author: User | None, fallback: SenderSettings) -> Sender:
    """The staff member who wrote a text's message, as our texts name them."""
    if author is None or author.kind == UserKind.candidate:
        return Sender(fallback.name)
    org = author.organization
    return Sender(org.name if org is not None else fallback.name, author.name, author.email)


def last_texter(session: Session, number: str) -> User | None:
    """The staff member whose message was last texted to this number: as a message itself, or
    announced by a notification text. None if the number was never texted (or by no one)."""
    candidates = select(User.id).where(User.kind == UserKind.candidate, User.phone == number)
    texted = session.execute(
        select(Message.author_id, Delivery.created_at)
        .join(Delivery, Delivery.message_id == Message.id)
        .where(Delivery.channel == Channel.sms, Delivery.recipient_id.in_(candidates))
        .order_by(Delivery.id.desc())
        .limit(1)
    ).first()
    notified = session.execute(
        select(Member.conversation_id, Member.sms_notified_at)
        .where(Member.user_id.in_(candidates), Member.sms_notified_at.is_not(None))
        .order_by(Member.sms_notified_at.desc())
        .limit(1)
    ).first()
    author_id: int | None = None
    when: datetime | None = None
    if texted is not None:
        author_id, when = texted
    if notified is not None and (when is None or notified.sms_notified_at > when):
        author_id = session.scalar(
            select(Message.author_id)
            .join(User, User.id == Message.author_id)
            .where(
                Message.conversation_id == notified.conversation_id,
                Message.created_at <= notified.sms_notified_at,
                User.kind != UserKind.candidate,
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
    author = session.get(User, author_id) if author_id is not None else None
    return author if author is not None and author.kind != UserKind.candidate else None


def _name(sender: Sender) -> str:
    return shorten(sender.name, _LONGEST_NAME)


def intro_line(sender: Sender) -> str:
    """The first line of the first text after an opt-in: who we are, and how to stop."""
    who = _name(sender)
    if sender.person:
        who = f"{shorten(sender.person, _LONGEST_NAME)} at {who}"
    return f"{who} texts you about your job application. Reply STOP to opt out."


def opt_out_reply(sender: Sender) -> str:
    return (
        f"{_name(sender)}: you are opted out and will get no more texts from us. "
        "Reply START to get them again."
    )


def opt_in_reply(sender: Sender) -> str:
    return f"{_name(sender)}: you will get our texts again. Reply STOP to opt out, HELP for help."


def help_reply(sender: Sender, fallback: SenderSettings) -> str:
    """Who texts this number and whom to contact: the last texter and their email, else the
    deployment's contact (none if it has none)."""
    about = f"{_name(sender)}: texts about your job applications"
    if sender.person:
        about += f" from {shorten(sender.person, _LONGEST_NAME)}"
    contact = sender.email or fallback.help_contact
    reach = f" Contact: {shorten(contact, 100)}." if contact else ""
    return f"{about}.{reach} Reply STOP to opt out, START to opt back in."
