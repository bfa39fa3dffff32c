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
