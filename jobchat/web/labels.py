"""Words the pages use for stored values."""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass

from jobchat.conversations.models import Kind
from jobchat.conversations.schemas import ConversationOut, Names
from jobchat.directory.models import OrgKind, Stage, User

# A stage as staff read it.
STAGE_WORDS = {
    Stage.prospect: "Prospect",
    Stage.applied: "Applied",
    Stage.screening: "Screening",
    Stage.cv_review: "CV review",
    Stage.interview: "Interview",
    Stage.offer: "Offer",
    Stage.offer_accepted: "Offer accepted",
    Stage.hired: "Hired",
    Stage.rejected: "Rejected",
    Stage.withdrawn: "Withdrawn",
}

# A stage as the candidate reads it: about them, not about the pipeline.
CANDIDATE_STAGE_WORDS = {
    **STAGE_WORDS,
    Stage.prospect: "Shortlisted",
    Stage.screening: "Being screened",
    Stage.cv_review: "CV under review",
    Stage.offer: "Offer made",
    Stage.rejected: "Not selected",
}

# What a hiring team is called to people outside it: an agency user reads this rather than
# their own organisation's name twice.
HIRING_TEAM = "Hiring team"


class Side(enum.StrEnum):
    """Where the reader stands in a conversation: it decides who "the other side" is."""

    candidate = "candidate"
    employer = "employer"
    partner = "partner"
    agency = "agency"


@dataclass(frozen=True)
class ConversationLabel:
    """A conversation as one reader names it: ``who`` is the other side, ``kind`` a short chip,
    ``about`` what it concerns (job, or candidate and job), ``title`` all of it in one line."""

    who: str
    kind: str
    about: str
    title: str


def side_of(me: User) -> Side:
    if me.is_candidate:
        return Side.candidate
    kind = me.organization.kind if me.organization is not None else OrgKind.employer
    if kind == OrgKind.source_partner:
        return Side.partner
    if kind == OrgKind.agency:
        return Side.agency
    return Side.employer


def _joined(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


def conversation_label(c: ConversationOut, me: User) -> ConversationLabel:
    """Name ``c`` for ``me``: the other side, the kind in the reader's words, and the context.

    Candidates never read internal words ("agency", "partners"); staff read the candidate and
    the job; nobody reads their own name or organisation as the other side.
    """
    return label_of(Kind(c.kind), c.names, me)


def label_of(kind: Kind, n: Names, me: User) -> ConversationLabel:
    """``conversation_label`` from a kind and the names of its context alone: for a page that
    names a conversation before it exists (the new-chat composer), in the same words."""
    side = side_of(me)
    job = n.job_title or ""
    employer = n.employer or HIRING_TEAM
    candidate = n.candidate or "Candidate"
    with_job = _joined(candidate, job)

    def label(who: str, chip: str, about: str, title: str) -> ConversationLabel:
        return ConversationLabel(who=who, kind=chip, about=about, title=title)

    if kind is Kind.job_partner:
        partner = n.partner or "Partner"
        if side is Side.employer:
            return label(partner, "Job partner", job, _joined(partner, job))
        return label(employer, "Employer", job, _joined(employer, job))
    if kind is Kind.job_partners:
        who = "All partners" if side is Side.employer else f"{employer} and partners"
        return label(who, "Job partners", job, _joined("Job partners", job))
    if kind is Kind.job_relocation:
        if side is Side.employer:
            who = "Partners and new hires"
        elif side is Side.candidate:
            who = employer
        else:
            who = f"{employer} and new hires"
        return label(who, "Relocation", job, _joined("Relocation", job))
    if kind is Kind.candidate_partner:
        if side is Side.candidate:
            partner = n.partner or "Your source partner"
            return label(partner, "Source partner", "Your caseworkers", partner)
        return label(candidate, "Direct", n.partner or "", candidate)
    if kind is Kind.case:
        if side is Side.candidate:
            source = me.source_partner.name if me.source_partner is not None else None
            who = _joined(source, employer).replace(" · ", " and ")
            return label(who, "Case chat", job, _joined("Case chat", job))
        return label(candidate, "Case chat", job, _joined("Case chat", with_job))
    if kind is Kind.application:
        if side is Side.candidate:
            return label(employer, HIRING_TEAM, job, _joined(employer, job))
        return label(candidate, "Application", job, with_job)
    if kind is Kind.agency:
        if side is Side.agency:
            return label(HIRING_TEAM, "Agency", with_job, _joined(HIRING_TEAM, with_job))
        agency = n.agency_user or "Agency"
        return label(agency, "Agency", with_job, _joined("Agency", with_job))
    # agency_private: two people, each reading the other's name.
    other = (n.employer_user or HIRING_TEAM) if side is Side.agency else (n.agency_user or "Agency")
    return label(other, "Private", with_job, _joined("Private", other, candidate))


def conversation_title(conversation: ConversationOut, me: User) -> str:
    """A conversation's name as `me` reads it on the pages (the API's `title` stays as it is)."""
    return conversation_label(conversation, me).title


# Avatars: initials on one of this many colours (tokens --tone-0 … in app.css), picked from
# the name so that a person keeps their colour on every page and every visit.
TONES = 8


def initials(name: str) -> str:
    """'Omar Al-Sayed' → 'OA'; 'CRS' → 'C'; what a circle can hold."""
    words = [w for w in name.split() if w[:1].isalnum()]
    if not words:
        return "?"
    first, last = words[0][0], words[-1][0] if len(words) > 1 else ""
    return (first + last).upper()


def tone(name: str) -> int:
    # crc32, not hash(): Python salts str hashes per process, and colours must not change.
    return zlib.crc32(name.encode()) % TONES
