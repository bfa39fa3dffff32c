"""Read-only lookups of directory objects by their external (ATS) ids."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.directory.models import Application, Job, Organization, User, UserKind


def organization_by_ext(session: Session, ext_id: str) -> Organization | None:
    return session.scalars(select(Organization).where(Organization.ext_id == ext_id)).one_or_none()


def user_by_ext(session: Session, kind: UserKind, ext_id: str) -> User | None:
    return session.scalars(
        select(User).where(User.kind == kind, User.ext_id == ext_id)
    ).one_or_none()


def job_by_ext(session: Session, ext_id: str) -> Job | None:
    return session.scalars(select(Job).where(Job.ext_id == ext_id)).one_or_none()


def application_by_ext(session: Session, ext_id: str) -> Application | None:
    return session.scalars(select(Application).where(Application.ext_id == ext_id)).one_or_none()
