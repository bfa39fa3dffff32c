"""The intro of an opt-in's first text: the first text (a message, or a notification text) to a
candidate after their consent became true starts with a line saying who we are and how to stop
(jobchat.sms.identity.intro_line); later ones do not, until consent is withdrawn and given again.

"First" is the one that actually goes first, so it is decided as a text is handed to the
provider, not when it is queued (a text held for the night may go after one sent later). The
intro is claimed, on the consent's ledger row, by the text about to carry it, for as long as its
attempt may take: a second text going meanwhile goes without it, and the claimant's retry carries
it again (the same claim), so it is neither lost nor doubled. A claimant whose attempt failed lets
its claim run out, and the next text to go takes it; ``intro_sent_at`` is set once the provider
took the text that carried it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from jobchat.sms.models import SmsConsentChange

# The provider's longest body (Twilio's): a text this close to it goes without the intro, which
# the next text then carries, rather than failing or losing what the sender wrote.
PROVIDER_MAX_CHARS = 1600


def with_intro(body: str, line: str) -> str | None:
    """The text with its intro line first; None if the two would not fit the provider's limit."""
    text = f"{line}\n{body}" if body else line
    return text if len(text) <= PROVIDER_MAX_CHARS else None


def _current(session: Session, candidate_id: int) -> SmsConsentChange | None:
    return session.scalars(
        select(SmsConsentChange)
        .where(SmsConsentChange.candidate_id == candidate_id)
        .order_by(SmsConsentChange.id.desc())
        .limit(1)
    ).first()


def do_claim_intro(
    session: Session, candidate_id: int, claimant: str, *, now: datetime, hold: timedelta
) -> bool:
    """Whether the text ``claimant`` is about to send carries the intro: the candidate's consent
    is an opt-in whose intro has not gone, and no other text holds it now. One conditional
    UPDATE, so that two workers cannot both take it."""
    change = _current(session, candidate_id)
    if change is None or not change.consented or change.intro_sent_at is not None:
        return False
    taken = session.execute(
        update(SmsConsentChange)
        .where(
            SmsConsentChange.id == change.id,
            SmsConsentChange.intro_sent_at.is_(None),
            or_(
                SmsConsentChange.intro_claim.is_(None),
                SmsConsentChange.intro_claim == claimant,
                SmsConsentChange.intro_claimed_until < now,
            ),
        )
        .values(intro_claim=claimant, intro_claimed_until=now + hold)
        .returning(SmsConsentChange.id)
        .execution_options(synchronize_session=False)
    ).first()
    return taken is not None


def do_record_intro_sent(
    session: Session, candidate_id: int, claimant: str, *, now: datetime
) -> None:
    """The provider took the text that carried the intro: it is done for this opt-in."""
    session.execute(
        update(SmsConsentChange)
        .where(
            SmsConsentChange.candidate_id == candidate_id,
            SmsConsentChange.intro_claim == claimant,
            SmsConsentChange.intro_sent_at.is_(None),
        )
        .values(intro_sent_at=now)
        .execution_options(synchronize_session=False)
    )
