"""Who a secret belongs to."""

from __future__ import annotations

import hmac
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.auth.actions import digest
from jobchat.auth.models import ApiKey, Credential, CredentialKind
from jobchat.directory.models import User


def is_api_key(session: Session, secret: str, configured: str | None) -> bool:
    if configured and hmac.compare_digest(digest(secret), digest(configured)):
        return True
    key = session.scalars(
        select(ApiKey).where(ApiKey.secret_hash == digest(secret), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    return key is not None


def token_owner(session: Session, secret: str, now: datetime) -> tuple[int, datetime | None] | None:
    """(user id, expiry) of a valid user token, in one statement; None if it is not one."""
    row = session.execute(
        select(Credential.user_id, Credential.expires_at).where(
            Credential.secret_hash == digest(secret), Credential.kind == CredentialKind.token
        )
    ).one_or_none()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return row.user_id, row.expires_at


def user_for(
    session: Session, secret: str, kinds: tuple[CredentialKind, ...], now: datetime
) -> User | None:
    cred = session.scalars(
        select(Credential).where(
            Credential.secret_hash == digest(secret), Credential.kind.in_(kinds)
        )
    ).one_or_none()
    if cred is None or (cred.expires_at is not None and cred.expires_at <= now):
        return None
    return cred.user


def login_link_owner(session: Session, secret: str) -> int | None:
    """Whose sign-in link this is (spent or not); None when there is no such link."""
    owner: int | None = session.scalar(
        select(Credential.user_id).where(
            Credential.secret_hash == digest(secret),
            Credential.kind == CredentialKind.login_link,
        )
    )
    return owner
