"""Read-only questions about SMS."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from jobchat.sms.models import InboundSms, SmsConsentChange, SmsOptOut
from jobchat.sms.optouts import known_opt_out_key


def consent_history(session: Session, candidate_id: int) -> list[SmsConsentChange]:
    return list(
        session.scalars(
            select(SmsConsentChange)
            .where(SmsConsentChange.candidate_id == candidate_id)
            .options(selectinload(SmsConsentChange.actor))
            .order_by(SmsConsentChange.id.desc())
        )
    )


def inbound_page(
    session: Session, *, outcome: str | None, before: int | None, limit: int
) -> list[InboundSms]:
    query = (
        select(InboundSms)
        .options(selectinload(InboundSms.candidate))
        .order_by(InboundSms.id.desc())
        .limit(limit)
    )
    if outcome is not None:
        query = query.where(InboundSms.outcome == outcome)
    if before is not None:
        query = query.where(InboundSms.id < before)
    return list(session.scalars(query))


def number_opt_out(session: Session, number: str | None) -> SmsOptOut | None:
    """The opt-out of this number (E.164), if it texted STOP and not START since."""
    if not number:
        return None
    key = known_opt_out_key(session, number)
    return session.get(SmsOptOut, key) if key is not None else None
