"""Changing SMS consent: the only writer of a candidate's consent, of its ledger, and of the
numbers that opted out by text.

Consent belongs to the number. A STOP (or an opt-out like it) from a number opts out every
candidate with that number and records the number in ``sms_opt_outs``; a START opts them all back
in and removes it. Meanwhile a person's own STOP wins over anyone else's say: an integration's
``sms_consent: true`` is not taken (the candidate stays opted out, and the upsert says so), a
staff member's is refused (409), and a candidate given that number is opted out. Twilio itself
refuses to text a number that sent STOP until it sends START, so nothing else could work anyway.

Every change is in the audit log (``sms.opted_out``, ``sms.opted_in``): by the number (its keyed
hash as the reference, never the number), by staff, or by the integration; about each candidate
covered.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.directory.models import User, UserKind
from jobchat.errors import Conflict
from jobchat.privacy.audit import SYSTEM, Party, record
from jobchat.privacy.models import AuditAction, PartyType
from jobchat.sms.models import ConsentSource, SmsConsentChange, SmsOptOut
from jobchat.sms.optouts import opt_out_key
from jobchat.sms.queries import number_opt_out
from jobchat.webhooks import events as webhook_events

NUMBER_OPTED_OUT = "sms_number_opted_out"


def do_set_sms_consent(
    session: Session,
    candidate: User,
    consented: bool,
    *,
    source: ConsentSource,
    now: datetime,
    detail: str | None = None,
    actor: User | None = None,
    by: Party | None = None,
) -> bool:
    """Set the consent and record the change with its source; returns whether it changed.
    Saying again what is already so (a second STOP) changes nothing and records nothing.
    ``by``: who the audit log names, if not ``actor`` or the source's usual party.

    Consent given by anyone but the number itself (START) is not taken while the number is
    opted out: the candidate stays (or becomes) opted out, the ledger saying why."""
    held = consented and source != ConsentSource.keyword
    if held and number_opt_out(session, candidate.phone) is not None:
        consented = False
        detail = _held(candidate.phone, source)
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
    webhook_events.sms_consent_changed(session, candidate, source, detail, actor, now)
    _audit(session, consented, now=now, by=by or _party(source, actor), candidate=candidate)
    return True


def do_record_staff_consent(
    session: Session,
    candidate: User,
    consented: bool,
    *,
    actor: User,
    now: datetime,
    note: str | None,
) -> bool:
    """A consent a staff member heard from the candidate (on a call, in person). An opt-in for
    a number that opted out by text is refused rather than quietly not taken: only the number
    texting START lifts its STOP."""
    if consented and number_opt_out(session, candidate.phone) is not None:
        raise Conflict(
            f"{candidate.phone} opted out by text (STOP); texts resume only when it sends START.",
            code=NUMBER_OPTED_OUT,
        )
    return do_set_sms_consent(
        session,
        candidate,
        consented,
        source=ConsentSource.staff,
        now=now,
        detail=note,
        actor=actor,
    )


def do_follow_number(session: Session, candidate: User, *, now: datetime) -> bool:
    """After the candidate's phone changed: a number that opted out by text opts them out too."""
    if not candidate.sms_consent:
        return False
    opt_out = number_opt_out(session, candidate.phone)
    if opt_out is None:
        return False
    return do_set_sms_consent(
        session,
        candidate,
        False,
        source=ConsentSource.keyword,
        now=now,
        detail=f"{candidate.phone} had opted out by text ({opt_out.detail or 'STOP'})",
    )


def do_opt_out_number(
    session: Session, number: str, *, now: datetime, detail: str, reason: str = "STOP"
) -> list[User]:
    """A STOP (or an opt-out in other words) from ``number``: recorded for the number, and
    every candidate with it opted out (each with a ledger row, ``detail`` the reply). Returns
    those candidates. The number is kept as its keyed hash only (jobchat.sms.optouts), with
    ``reason``, what the reply matched ("STOP", "stop texting me"): never the reply itself."""
    key = opt_out_key(session, number, now=now)
    new = session.get(SmsOptOut, key) is None
    if new:
        session.add(SmsOptOut(number_hash=key, created_at=now, detail=reason))
    return _follow(session, number, False, key=key, new=new, now=now, detail=detail)


def do_opt_in_number(session: Session, number: str, *, now: datetime, detail: str) -> list[User]:
    """A START from ``number``: its opt-out lifted, and every candidate with it opted in."""
    key = opt_out_key(session, number, now=now)
    opt_out = session.get(SmsOptOut, key)
    if opt_out is not None:
        session.delete(opt_out)
    return _follow(session, number, True, key=key, new=opt_out is not None, now=now, detail=detail)


def _follow(
    session: Session,
    number: str,
    consented: bool,
    *,
    key: str,
    new: bool,
    now: datetime,
    detail: str,
) -> list[User]:
    """Every candidate with the number takes its say. The audit log has an entry for each one
    whose consent changed, and, when the number's own opt-out was made or lifted, for each one
    covered whose consent stood (or one about no one, when no candidate has the number yet)."""
    by = Party(PartyType.number, ref=key)
    found = candidates_with(session, number)
    changed = [
        candidate
        for candidate in found
        if do_set_sms_consent(
            session,
            candidate,
            consented,
            source=ConsentSource.keyword,
            now=now,
            detail=detail,
            by=by,
        )
    ]
    if new:
        stood: list[User | None] = [c for c in found if c not in changed]
        for candidate in stood if found else [None]:
            _audit(session, consented, now=now, by=by, candidate=candidate)
    return found


def _party(source: ConsentSource, actor: User | None) -> Party:
    if actor is not None:
        return Party.person(actor)
    if source == ConsentSource.ats:
        return Party(PartyType.integration)
    return Party(PartyType.number) if source == ConsentSource.keyword else SYSTEM


def _audit(
    session: Session, consented: bool, *, now: datetime, by: Party, candidate: User | None
) -> None:
    record(
        session,
        AuditAction.sms_opted_in if consented else AuditAction.sms_opted_out,
        now=now,
        actor=by,
        subject=Party.person(candidate) if candidate is not None else None,
        details={"by": by.type.value},
    )


def candidates_with(session: Session, number: str) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.kind == UserKind.candidate, User.phone == number)
            .order_by(User.id)
        )
    )


def _held(number: str | None, source: ConsentSource) -> str:
    who = "the ATS" if source == ConsentSource.ats else "staff"
    return f"{who} sent consent, not taken: {number} opted out by text (STOP) until START"
