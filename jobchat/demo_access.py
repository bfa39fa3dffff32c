"""Ways into a demo world: a sign-in link per persona, an integration key and a user token.

Kept apart from the story in ``jobchat.demo`` so that ``jobchat demo --links`` can issue fresh
ones for a demo database that already exists (links are spent by one sign-in and expire in a
day) without building anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobchat.auth.actions import do_create_api_key, do_create_credential
from jobchat.auth.api import login_url
from jobchat.auth.models import CredentialKind
from jobchat.db.engine import Database
from jobchat.directory.models import UserKind
from jobchat.directory.queries import user_by_ext

LINK_LIFETIME = timedelta(hours=24)
TOKEN_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Persona:
    label: str
    kind: UserKind
    ext_id: str


# One persona for each side of a hire.
PERSONAS = (
    Persona("Iress admin — Priya Shah", UserKind.staff, "iress-priya"),
    Persona("Iress recruiter — Tom Reilly", UserKind.staff, "iress-tom"),
    Persona("Northwind Health recruiter — Marcus Bell", UserKind.staff, "nw-marcus"),
    Persona("Talent Beyond Boundaries caseworker — Layla Haddad", UserKind.staff, "tbb-layla"),
    Persona("CRS caseworker — Joseph Mensah", UserKind.staff, "crs-joseph"),
    Persona("Bright Talent Recruiting agency user — Rachel Kim", UserKind.staff, "bright-rachel"),
    Persona("Candidate relocating to Melbourne — Omar Al-Sayed", UserKind.candidate, "cand-omar"),
    Persona("Candidate at Northwind Health — Hannah Lee", UserKind.candidate, "cand-hannah"),
)


TOKEN_PERSONA = PERSONAS[1]


class NotADemo(LookupError):
    """The database holds no demo world (``jobchat demo --links`` pointed elsewhere)."""


def issue_links(db: Database, *, public_url: str, now: datetime) -> list[tuple[str, str]]:
    """(persona, one-time sign-in link valid for a day), for every persona."""
    links = []
    with db.write() as session:
        for persona in PERSONAS:
            user = user_by_ext(session, persona.kind, persona.ext_id)
            if user is None:
                raise NotADemo(f"no demo persona {persona.ext_id!r} in this database")
            secret = do_create_credential(
                session, user=user, kind=CredentialKind.login_link, now=now, lifetime=LINK_LIFETIME
            )
            links.append((persona.label, login_url(public_url, secret)))
    return links


@dataclass(frozen=True)
class ApiAccess:
    persona: Persona
    token: str  # acts as the persona, for a week
    api_key: str | None  # a new integration key; None when JOBCHAT_API_KEY is set


def issue_api_access(db: Database, *, now: datetime, make_api_key: bool) -> ApiAccess:
    """A user token for the recruiter (a staff member with conversations of several kinds, so
    the API shows something at once) and, unless one is configured, an integration key."""
    persona = TOKEN_PERSONA
    with db.write() as session:
        user = user_by_ext(session, persona.kind, persona.ext_id)
        if user is None:
            raise NotADemo(f"no demo persona {persona.ext_id!r} in this database")
        token = do_create_credential(
            session, user=user, kind=CredentialKind.token, now=now, lifetime=TOKEN_LIFETIME
        )
        api_key = do_create_api_key(session, name="demo", now=now) if make_api_key else None
    return ApiAccess(persona=persona, token=token, api_key=api_key)
