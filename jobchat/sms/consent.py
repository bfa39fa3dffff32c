"""Changing a candidate's SMS consent: the only writer of it, and of its ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.sms.models import ConsentSource, SmsConsentChange


def do_set_sms_consent(
    session: Session,
    candidate: User,
    consented: bool,
    *,
    source: ConsentSource,
    now: datetime,
    detail: str | None = None,
    actor: User | None = None,
) -> bool:
    """Set the consent and record the change with its source; returns whether it changed.
    Saying again what is already so (a second STOP) changes nothing and records nothing."""
    if candidate.sms_consent == consented and candidate.id is not None:
        return False
    candidate.sms_consent = consented
    session.flush()  # a new candidate needs its id for the ledger row
    session.add(
        SmsConsentChange(
            candidate_id=candidate.id,
            consented=consented,
            source=source,
            detail=detail,
            actor_id=actor.id if actor else None,
            created_at=now,
        )
    )
    return True
