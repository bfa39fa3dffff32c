"""The intro of an opt-in's first text: the first text (a message, or a notification text) to a
candidate after their consent became true starts with a line saying who we are and how to stop
(jobchat.sms.identity.intro_line); later ones do not, until consent is withdrawn and given again.

"First" is the one that actually goes first, so it is decided as a text is handed to the
provider, not when it is queued (a text held for the night, or retried, may go after one queued
later). The intro is claimed, on the consent's ledger row, by the text about to carry it, for as
long as its attempt may take. Another text to go meanwhile waits (a second, then looks again):
it must not overtake the one that says who we are. The claimant's attempt either goes (then
``intro_sent_at`` is set, and the others go without it) or fails (then it gives the claim back
at once, and whichever text goes next carries the intro, its own retry included). A claimant that
crashed lets its claim run out. So the intro is neither lost nor doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
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


# How long a text waits, each time, for the one carrying the intro.
WAIT = timedelta(seconds=1)


@dataclass(frozen=True)
class Wait:
    """Another text holds the intro and has not gone yet: look again at ``until``."""

    until: datetime


def do_claim_intro(
    session: Session, candidate_id: int, claimant: str, *, now: datetime, hold: timedelta
) -> bool | Wait:
    """Whether the text ``claimant`` is about to send carries the intro (the candidate's consent
    is an opt-in whose intro has not gone), or must wait for the text that does. One conditional
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
    if taken is not None:
        return True
    session.refresh(change)
    if change.intro_sent_at is not None:
        return False  # it went meanwhile
    held = change.intro_claimed_until
    return Wait(min(held, now + WAIT) if held is not None else now + WAIT)


def do_release_intro(session: Session, candidate_id: int, claimant: str) -> None:
    """The claimant's attempt failed: the intro is free for whichever text goes next."""
    session.execute(
        update(SmsConsentChange)
        .where(
            SmsConsentChange.candidate_id == candidate_id,
            SmsConsentChange.intro_claim == claimant,
            SmsConsentChange.intro_sent_at.is_(None),
        )
        .values(intro_claim=None, intro_claimed_until=None)
        .execution_options(synchronize_session=False)
    )


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


@dataclass(frozen=True)
class IntroClaims:
    """Claiming the intro for a text about to go, and giving it back when its attempt failed,
    each in a transaction of its own: what both senders of texts (messages, notification
    texts) do around the provider's call. A claim lasts as long as an attempt may: the
    provider's timeout, twice, and a margin."""

    db: Database
    clock: Clock
    hold: timedelta

    @classmethod
    def of(cls, db: Database, clock: Clock, settings: Settings) -> IntroClaims:
        return cls(db, clock, timedelta(seconds=2 * settings.sms_timeout_seconds + 30))

    def claim(self, candidate_id: int, claimant: str) -> bool | Wait:
        with self.db.work() as session:
            now = self.clock.now()
            return do_claim_intro(session, candidate_id, claimant, now=now, hold=self.hold)

    def release(self, candidate_id: int, claimant: str) -> None:
        with self.db.work() as session:
            do_release_intro(session, candidate_id, claimant)
