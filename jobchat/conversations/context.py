"""What a conversation is about: its kind and context objects, and the key that makes it unique."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from jobchat.conversations.models import Kind
from jobchat.directory.models import Application, Job, Organization, User, UserKind
from jobchat.directory.queries import (
    application_by_ext,
    job_by_ext,
    organization_by_ext,
    user_by_ext,
)
from jobchat.errors import Invalid, NotFound

T = TypeVar("T")

# The context references each kind takes (besides ``with_user``, see ``agency_private``).
KIND_FIELDS: dict[Kind, frozenset[str]] = {
    Kind.job_partner: frozenset({"job", "partner"}),
    Kind.job_partners: frozenset({"job"}),
    Kind.job_relocation: frozenset({"job"}),
    Kind.candidate_partner: frozenset({"candidate"}),
    Kind.case: frozenset({"application"}),
    Kind.application: frozenset({"application"}),
    Kind.agency: frozenset({"application"}),
    Kind.agency_private: frozenset({"application", "with_user"}),
}
OPTIONAL_FIELDS: dict[Kind, frozenset[str]] = {Kind.agency_private: frozenset({"with_user"})}


@dataclass(frozen=True)
class ContextRefs:
    """The external ids a client names in ``POST /conversations``."""

    job: str | None = None
    candidate: str | None = None
    application: str | None = None
    partner: str | None = None
    with_user: str | None = None

    def given(self) -> set[str]:
        return {name for name, value in vars(self).items() if value is not None}


@dataclass
class Loaded:
    """The objects the references name; each exists, but may not be visible to the caller."""

    kind: Kind
    job: Job | None = None
    candidate: User | None = None
    application: Application | None = None
    partner: Organization | None = None
    with_user: User | None = None


@dataclass(frozen=True)
class Context:
    kind: Kind
    job: Job | None = None
    candidate: User | None = None
    application: Application | None = None
    partner: Organization | None = None
    employer_user: User | None = None
    agency_user: User | None = None

    @property
    def key(self) -> str:
        parts: list[object] = [self.kind.value]
        if self.application is not None:
            parts.append(f"a{self.application.id}")
        elif self.job is not None:
            parts.append(f"j{self.job.id}")
        elif self.candidate is not None:
            parts.append(f"c{self.candidate.id}")
        if self.partner is not None:
            parts.append(f"p{self.partner.id}")
        if self.employer_user is not None:
            parts.append(f"e{self.employer_user.id}")
        if self.agency_user is not None:
            parts.append(f"g{self.agency_user.id}")
        return ":".join(str(p) for p in parts)


def load_refs(session: Session, kind: Kind, refs: ContextRefs) -> Loaded:
    """Check the shape of the references (422) and load the main object they name."""
    allowed = KIND_FIELDS[kind]
    required = allowed - OPTIONAL_FIELDS.get(kind, frozenset())
    given = refs.given()
    problems = dict.fromkeys(sorted(required - given), f"required for kind {kind.value}")
    problems |= dict.fromkeys(sorted(given - allowed), f"not used by kind {kind.value}")
    if problems:
        raise Invalid(problems)

    # The object the conversation is about (job, candidate or application); None if unknown.
    # The caller decides, in one answer for "unknown" and "not yours to see", before anything
    # else is looked up: otherwise which error came back would tell whether it exists.
    loaded = Loaded(kind=kind)
    if refs.application is not None:
        loaded.application = application_by_ext(session, refs.application)
    elif refs.job is not None:
        loaded.job = job_by_ext(session, refs.job)
    elif refs.candidate is not None:
        loaded.candidate = user_by_ext(session, UserKind.candidate, refs.candidate)
    return loaded


def load_other_refs(session: Session, refs: ContextRefs, loaded: Loaded) -> None:
    """Load ``partner`` and ``with_user``, once the main object is known to be visible."""
    if refs.partner is not None:
        loaded.partner = _found(organization_by_ext(session, refs.partner), "organization")
    if refs.with_user is not None:
        loaded.with_user = _found(user_by_ext(session, UserKind.staff, refs.with_user), "user")


def _found(found: T | None, what: str) -> T:
    if found is None:
        raise NotFound(f"There is no {what} with that id.")
    return found
