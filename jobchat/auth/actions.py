"""Making and spending credentials: the only code that writes them."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jobchat.auth.embed import EMBED_LINK_PREFIX, EMBED_SESSION_PREFIX, is_embed_link
from jobchat.auth.models import ApiKey, Credential, CredentialKind
from jobchat.directory.models import User
from jobchat.errors import NotFound
from jobchat.events.actions import emit
from jobchat.events.models import EventType
from jobchat.privacy.audit import Party, record
from jobchat.privacy.models import AuditAction, PartyType

# Prefixes make a leaked secret recognisable (and greppable by secret scanners).
_PREFIX = {
    "api_key": "jck_",
    CredentialKind.token: "jct_",
    CredentialKind.login_link: "jcl_",
    CredentialKind.session: "jcs_",
    # Sign-in for a frame in the ATS (jobchat.auth.embed): still a login link and a session.
    "embed_login_link": EMBED_LINK_PREFIX,
    "embed_session": EMBED_SESSION_PREFIX,
}


def digest(secret: str) -> str:
    """Secrets are 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(kind: str) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(32)


def do_create_api_key(session: Session, *, name: str, now: datetime) -> str:
    secret = new_secret("api_key")
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
    return do_issue_credential(session, user_id=user.id, kind=kind, now=now, lifetime=lifetime)[1]


def do_issue_credential(
    session: Session,
    *,
    user_id: int,
    kind: CredentialKind,
    now: datetime,
    lifetime: timedelta | None = None,
    name: str | None = None,
    secret: str | None = None,
) -> tuple[Credential, str]:
    """A new credential of ``kind`` for user ``user_id``: its row (flushed, so it has an id) and its
    secret, which is nowhere else: only its digest is stored. ``secret``: one made earlier
    with new_secret (a link already sent, recorded with the outcome of its sending)."""
    secret = secret or new_secret(kind)
    cred = Credential(
        kind=kind,
        secret_hash=digest(secret),
        user_id=user_id,
        created_at=now,
        expires_at=now + lifetime if lifetime is not None else None,  # 0: already over
        name=name,
    )
    session.add(cred)
    session.flush()
    return cred, secret


def do_create_login_link(
    session: Session, *, user: User, now: datetime, lifetime: timedelta, embed: bool = False
) -> str:
    """A one-time sign-in link's secret; ``embed``: the session it opens may be framed by the
    ATS (JOBCHAT_EMBED_ORIGINS)."""
    secret = new_secret("embed_login_link" if embed else CredentialKind.login_link)
    do_issue_credential(
        session,
        user_id=user.id,
        kind=CredentialKind.login_link,
        now=now,
        lifetime=lifetime,
        secret=secret,
    )
    return secret


def do_redeem_login_link(
    session: Session, *, secret: str, now: datetime, session_lifetime: timedelta
) -> tuple[User, str]:
    """Spend a one-time sign-in link: returns the user and a new browser session secret (an
    embed session's, for an embed link)."""
    link = session.scalars(
        select(Credential)
        .where(
            Credential.secret_hash == digest(secret),
            Credential.kind == CredentialKind.login_link,
        )
        .with_for_update()
    ).one_or_none()
    if (
        link is None
        or link.used_at is not None
        or link.revoked_at is not None
        or not link.user.is_active
        or (link.expires_at and link.expires_at <= now)
    ):
        raise NotFound("This sign-in link is not valid: it was used already or has expired.")
    link.used_at = now
    _cred, cookie = do_issue_credential(
        session,
        user_id=link.user_id,
        kind=CredentialKind.session,
        now=now,
        lifetime=session_lifetime,
        secret=new_secret("embed_session" if is_embed_link(secret) else CredentialKind.session),
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


def do_revoke_token(
    session: Session, *, credential_id: int, now: datetime, actor: Party
) -> Credential | None:
    """Revoke one user API token, and return it; None when there is no token with that id.

    Revoking one already revoked changes nothing (its first revocation time stays). The
    ``access.revoked`` event tells every server process, in commit order, to forget the token
    and close the sockets it opened (the route also sends the news over the bus, which is
    faster; the event is the copy that cannot be lost).
    """
    cred = session.get(Credential, credential_id)
    if cred is None or cred.kind != CredentialKind.token:
        return None
    if cred.revoked_at is None:
        cred.revoked_at = now
        owner = Party.person(cred.user)
        record(
            session,
            AuditAction.token_revoked,
            now=now,
            actor=actor,
            subject=Party(PartyType.token, cred.id),
            details={"owner": {"type": owner.type, "id": owner.ref}},
        )
        emit(
            session,
            EventType.access_revoked,
            now=now,
            user_id=cred.user_id,
            data={"credential": cred.id},
        )
    return cred


def do_end_access(session: Session, *, user: User, now: datetime) -> None:
    """End every credential of ``user`` (tokens, sessions, unused sign-in links) at once, and
    tell every server process to close their sockets (the ``access.revoked`` event, for all)."""
    session.execute(
        update(Credential)
        .where(Credential.user_id == user.id, Credential.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    emit(session, EventType.access_revoked, now=now, user_id=user.id, data={"all": True})


def do_revoke_api_key(
    session: Session, *, key_id: int, now: datetime, actor: Party
) -> ApiKey | None:
    """Revoke an integration key (made with ``jobchat api-key create``); None: no such key.

    Keys are looked up on every request (never cached), so the next call with it gets 401."""
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = now
        subject = Party(PartyType.api_key, key.id, key.name)
        record(session, AuditAction.api_key_revoked, now=now, actor=actor, subject=subject)
    return key
