"""What makes an outgoing message sendable: its text within the limits, and a candidate the
channel reaches. The send makes these checks as it sends; a message to be sent later makes them
when it is scheduled, and a composer asks which channels would pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from jobchat.config import Settings
from jobchat.conversations.models import ONE_CANDIDATE_KINDS, Conversation, Kind
from jobchat.directory.models import User
from jobchat.directory.phones import normalise_phone
from jobchat.errors import Invalid
from jobchat.inputs import control_problem, storable_problem
from jobchat.messages.channels import sms_refusal
from jobchat.messages.models import Channel
from jobchat.quiet_hours import QuietHours


@dataclass(frozen=True)
class Limits:
    max_chars: int
    max_sms_chars: int
    default_region: str
    notify_delay: timedelta = timedelta(seconds=120)
    sms_enabled: bool = False
    sms_quiet: QuietHours | None = None

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_chars=settings.max_message_chars,
            max_sms_chars=settings.max_sms_chars,
            default_region=settings.default_phone_region,
            notify_delay=timedelta(seconds=settings.notify_delay_seconds),
            sms_enabled=bool(settings.sms_provider),
            sms_quiet=settings.sms_quiet_window,
        )


@dataclass(frozen=True)
class Outgoing:
    body: str
    channel: Channel = Channel.app
    subject: str | None = None
    idempotency_key: str | None = None
    # Arrived from its author by email or SMS (a reply): nothing goes out, no subject needed.
    received: bool = False
    # Attachment ids the author uploaded into this conversation (jobchat.files), in order.
    attachments: tuple[int, ...] = ()


def check_text(
    body: str, subject: str | None, channel: Channel, limits: Limits, *, with_files: bool = False
) -> None:
    """The body and subject (both already stripped) within the limits: 422 naming each bad
    one. A message that carries files (``with_files``) may have no text."""
    problems: dict[str, str] = {}
    if not body:
        if not with_files:
            problems["body"] = "must not be empty"
    elif (unstorable := storable_problem(body)) is not None:
        # The API's schema refuses it already; this covers the pages' forms (a NUL would be a
        # 500 from PostgreSQL).
        problems["body"] = unstorable
    elif channel is Channel.sms and len(body) > limits.max_sms_chars:
        problems["body"] = f"an SMS may be at most {limits.max_sms_chars} characters"
    elif len(body) > limits.max_chars:
        problems["body"] = f"may be at most {limits.max_chars} characters"
    if channel is Channel.email and subject is None:
        problems["subject"] = "required for email"
    elif subject is not None and len(subject) > 300:
        problems["subject"] = "may be at most 300 characters"
    elif subject is not None and (problem := control_problem(subject)) is not None:
        # The API's schema refuses it already; this covers the pages' forms.
        problems["subject"] = problem
    if problems:
        raise Invalid(problems)


def check_outgoing(
    session: Session, actor: User, conv: Conversation, out: Outgoing, limits: Limits
) -> None:
    """The checks a send of ``out`` by ``actor`` into ``conv`` makes of the message itself
    (body and subject, the channel reaching its candidate), without sending: 422 as a send
    would answer. For a message that is to be sent later."""
    check_text(
        out.body.strip(),
        (out.subject or "").strip() or None,
        out.channel,
        limits,
        with_files=bool(out.attachments),
    )
    find_recipient(session, actor, conv, out.channel, limits)


def available_channels(
    session: Session, actor: User, conv: Conversation, limits: Limits
) -> list[Channel]:
    """The channels ``actor`` could send on here now: the same checks a send makes, so a
    composer offers SMS only when a text would really go out."""
    out = []
    for channel in Channel:
        try:
            find_recipient(session, actor, conv, channel, limits)
        except Invalid:
            continue
        out.append(channel)
    return out


def find_recipient(
    session: Session, actor: User, conv: Conversation, channel: Channel, limits: Limits
) -> tuple[User | None, str | None]:
    """The candidate an email or SMS goes to, and their address; (None, None) for the app."""
    if channel is Channel.app:
        return None, None
    if not actor.is_staff:
        raise Invalid({"channel": "only staff send email and SMS; reply in the app"})
    if Kind(conv.kind) not in ONE_CANDIDATE_KINDS:
        raise Invalid(
            {"channel": "email and SMS go only to the candidate of a one-candidate conversation"}
        )
    candidate = conv.candidate
    assert candidate is not None
    if not candidate.is_active:
        raise Invalid(
            {"channel": "the candidate is deactivated: nothing more goes to them"},
            code="candidate_deactivated",
        )
    if channel is Channel.email:
        return candidate, candidate.email
    refusal = sms_refusal(
        session, candidate, sms_enabled=limits.sms_enabled, default_region=limits.default_region
    )
    if refusal is not None:
        raise Invalid({"channel": refusal.detail}, code=refusal.code)
    phone = normalise_phone(candidate.phone or "", limits.default_region)
    assert phone is not None  # sms_refusal checked it
    return candidate, phone
