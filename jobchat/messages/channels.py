"""Whether a text can go to a candidate now, and if not, why.

One answer for the send that refuses an SMS (``outgoing.find_recipient``) and for every composer
that offers the SMS choice: a page shows it disabled with the same reason the send would give,
instead of leaving it out and letting the person wonder where it went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from jobchat.conversations.models import ONE_CANDIDATE_KINDS, Kind
from jobchat.directory.models import User
from jobchat.directory.phones import normalise_phone
from jobchat.messages.models import Channel
from jobchat.sms.queries import number_opt_out

if TYPE_CHECKING:  # outgoing imports this module; the limits are only read here
    from jobchat.messages.outgoing import Limits


@dataclass(frozen=True)
class SmsRefusal:
    """Why no text can go to the candidate: the API's error ``code``, and a sentence for the
    API's ``fields.channel`` (``detail``) and one for a page (``reason``)."""

    code: str
    detail: str
    reason: str


def sms_refusal(
    session: Session, candidate: User, *, sms_enabled: bool, default_region: str
) -> SmsRefusal | None:
    """Why a text to ``candidate`` would be refused now; None when it would go out.

    The server first (nothing to do about one candidate), then the candidate's say-so (a STOP
    from the number wins over a consent), then the number: the order the API has always
    answered in, so a candidate with neither consent nor number stays `sms_opted_out`.
    """
    if not sms_enabled:
        return SmsRefusal(
            "sms_not_configured",
            "SMS is not set up on this server (JOBCHAT_SMS_PROVIDER)",
            "SMS is not set up on this server.",
        )
    if number_opt_out(session, candidate.phone) is not None:
        return SmsRefusal(
            "sms_opted_out",
            "the candidate has opted out of SMS (STOP)",
            f"{candidate.name} opted out of texts (replied STOP).",
        )
    if not candidate.sms_consent:
        return SmsRefusal(
            "sms_opted_out",
            "the candidate has not opted in to SMS",
            f"{candidate.name} has not agreed to receive texts.",
        )
    if not candidate.phone:
        return SmsRefusal(
            "sms_no_phone",
            "the candidate has no phone number",
            f"{candidate.name} has no phone number.",
        )
    if candidate.phone_problem or normalise_phone(candidate.phone, default_region) is None:
        problem = candidate.phone_problem or "is not valid"
        return SmsRefusal(
            "sms_invalid_phone",
            f"the candidate's phone number {candidate.phone!r} {problem}",
            f"{candidate.name}'s phone number {candidate.phone} {problem}.",
        )
    return None


@dataclass(frozen=True)
class ChannelOption:
    """A channel a composer shows: ``reason`` says why it cannot be used now (None: it can)."""

    channel: Channel
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.reason is None


def channel_options(
    session: Session, actor: User, kind: Kind, candidate: User | None, limits: Limits
) -> list[ChannelOption]:
    """The channels a composer offers ``actor`` in a conversation of ``kind`` with ``candidate``
    (its one candidate, if it has one): the app always; email and SMS where they apply at all
    (staff writing in a conversation with exactly one candidate), each with the reason it cannot
    be used now. The same rules as a send (``outgoing.find_recipient``)."""
    options = [ChannelOption(Channel.app)]
    if not actor.is_staff or kind not in ONE_CANDIDATE_KINDS or candidate is None:
        return options
    if not candidate.is_active:
        gone = f"{candidate.name} is deactivated: nothing more goes to them."
        return [*options, ChannelOption(Channel.email, gone), ChannelOption(Channel.sms, gone)]
    refusal = sms_refusal(
        session, candidate, sms_enabled=limits.sms_enabled, default_region=limits.default_region
    )
    return [
        *options,
        ChannelOption(Channel.email),
        ChannelOption(Channel.sms, refusal.reason if refusal else None),
    ]
