"""Making and spending credentials: the only code that writes them."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobchat.auth.models import ApiKey, Credential, CredentialKind
from jobchat.directory.models import User
from jobchat.errors import NotFound

# Prefixes make a leaked secret recognisable (and greppable by secret scanners).
_PREFIX = {
    "api_key": "jck_",
    CredentialKind.token: "jct_",
    CredentialKind.login_link: "jcl_",
    CredentialKind.session: "jcs_",
}


def digest(secret: str) -> str:
    """Secrets are 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(kind: str) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(32)


def do_create_api_key(session: Session, *, name: str, now: datetime) -> str:
    secret = _new_secret("api_key")
    session.add(ApiKey(name=name, secret_hash=digest(secret), created_at=now))
    return secret


def do_create_credential(
    session: Session,
    *,
    user: User,
    kind: CredentialKind,
    now: datetime,
    lifetime: timedelta | None = None,
) -> str:
    secret = _new_secret(kind)
    session.add(
        Credential(
            kind=kind,
            secret_hash=digest(secret),
            user_id=user.id,
            created_at=now,
            expires_at=now + lifetime if lifetime is not None else None,  # 0: already over
        )
    )
    return secret


def do_redeem_login_link(
    session: Session, *, secret: str, now: datetime, session_lifetime: timedelta
) -> tuple[User, str]:
    """Spend a one-time sign-in link: returns the user and a new browser session secret."""
    link = session.scalars(
        select(Credential)
        .where(
            Credential.secret_hash == digest(secret),
            Credential.kind == CredentialKind.login_link,
        )
        .with_for_update()
    ).one_or_none()
    if link is None or link.used_at is not None or (link.expires_at and link.expires_at <= now):
        raise NotFound("This sign-in link is not valid: it was used already or has expired.")
    link.used_at = now
    cookie = do_create_credential(
        session, user=link.user, kind=CredentialKind.session, now=now, lifetime=session_lifetime
    )
    return link.user, cookie


def do_end_session(session: Session, *, secret: str) -> None:
    cred = session.scalars(
        select(Credential).where(
            Credential.secret_hash == digest(secret), Credential.kind == CredentialKind.session
        )
    ).one_or_none()
    if cred is not None:
        session.delete(cred)
