"""Who a secret belongs to."""

from __future__ import annotations

import hmac
from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from jobchat.auth.actions import digest
from jobchat.auth.models import ApiKey, Credential, CredentialKind
from jobchat.db.prepared import Prepared
from jobchat.directory.models import User

# How the audit log names the key configured with JOBCHAT_API_KEY, which has no row.
CONFIGURED_KEY_NAME = "JOBCHAT_API_KEY"


def integration_key(
    session: Session, secret: str, configured: str | None
) -> tuple[int | None, str] | None:
    """(id, name) of the live integration key with this secret: a key made with ``jobchat
    api-key create``, or (None, "JOBCHAT_API_KEY") for the configured one; None: not a key."""
    if configured and hmac.compare_digest(digest(secret), digest(configured)):
        return None, CONFIGURED_KEY_NAME
    key = session.scalars(
        select(ApiKey).where(ApiKey.secret_hash == digest(secret), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    return (key.id, key.name) if key is not None else None


def is_api_key(session: Session, secret: str, configured: str | None) -> bool:
    return integration_key(session, secret, configured) is not None


def api_keys(session: Session) -> list[ApiKey]:
    """Every integration key made with ``jobchat api-key create``, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


# A credential counts while it is not revoked and its owner is not deactivated (deactivation
# revokes their credentials too; the join also covers one issued in a race with it).
_LIVE = (Credential.revoked_at.is_(None), User.deactivated_at.is_(None))


# Run on the driver's cursor (jobchat.db.prepared): every request whose token this process has
# not seen in the last seconds asks it first.
_TOKEN_OWNER = Prepared(
    select(Credential.user_id, Credential.expires_at)
    .join(User, User.id == Credential.user_id)
    .where(
        Credential.secret_hash == bindparam("b_hash"),
        Credential.kind == CredentialKind.token,
        *_LIVE,
    )
)


def token_owner(
    connection: Connection, secret: str, now: datetime
) -> tuple[int, datetime | None] | None:
    """(user id, expiry) of a valid user token, in one statement; None if it is not one."""
    rows = _TOKEN_OWNER.run(connection, {"b_hash": digest(secret)}).rows
    if not rows:
        return None
    user_id, expires_at = rows[0]
    if expires_at is not None and expires_at <= now:
        return None
    return int(user_id), expires_at


def credential_for(
    session: Session, secret: str, kinds: tuple[CredentialKind, ...], now: datetime
) -> Credential | None:
    """The live credential of one of ``kinds`` with this secret (its ``user`` loaded with it)."""
    cred = session.scalars(
        select(Credential)
        .join(User, User.id == Credential.user_id)
        .where(Credential.secret_hash == digest(secret), Credential.kind.in_(kinds), *_LIVE)
    ).one_or_none()
    if cred is None or (cred.expires_at is not None and cred.expires_at <= now):
        return None
    return cred


def user_for(
    session: Session, secret: str, kinds: tuple[CredentialKind, ...], now: datetime
) -> User | None:
    cred = credential_for(session, secret, kinds, now)
    return cred.user if cred is not None else None


def credential_live(session: Session, credential_id: int, now: datetime) -> bool:
    """Whether the credential with this id still lets its owner in (a socket opened with it
    checks once more after joining the stream, in case it was revoked meanwhile)."""
    row = session.execute(
        select(Credential.expires_at)
        .join(User, User.id == Credential.user_id)
        .where(Credential.id == credential_id, *_LIVE)
    ).one_or_none()
    return row is not None and (row.expires_at is None or row.expires_at > now)


def tokens_of(session: Session, user_id: int) -> list[Credential]:
    """A person's API tokens, revoked and expired ones included, oldest first."""
    return list(
        session.scalars(
            select(Credential)
            .where(Credential.user_id == user_id, Credential.kind == CredentialKind.token)
            .order_by(Credential.id)
        )
    )


def login_link_owner(session: Session, secret: str) -> int | None:
    """Whose sign-in link this is (spent or not); None when there is no such link."""
    owner: int | None = session.scalar(
        select(Credential.user_id).where(
            Credential.secret_hash == digest(secret),
            Credential.kind == CredentialKind.login_link,
        )
    )
    return owner
