"""The deployment's signing key, and short HMAC signatures made with it.

Reply addresses and the Message-IDs of our emails carry a signature, so that nobody can make up
the address of someone else's thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobchat.auth.models import ServerSecret
from jobchat.db.engine import Database

_KEY_NAME = "signing_key"
# 13 bytes = 104 bits, written as 21 base32 characters: unguessable, and short enough for the
# 64-character local part of an email address.
_SIGNATURE_BYTES = 13


def signing_key(db: Database, configured: str | None, now: datetime) -> bytes:
    """JOBCHAT_SECRET_KEY when set; else the key made on first use and kept in the database."""
    if configured:
        return configured.encode()
    with db.read() as session:
        stored = session.get(ServerSecret, _KEY_NAME)
        if stored is not None:
            return stored.value.encode()
    try:
        with db.work() as session:
            return _create(session, now)
    except IntegrityError:
        # Another process made it first: use theirs.
        with db.read() as session:
            stored = session.get(ServerSecret, _KEY_NAME)
            assert stored is not None
            return stored.value.encode()


def _create(session: Session, now: datetime) -> bytes:
    value = secrets.token_urlsafe(48)
    session.add(ServerSecret(name=_KEY_NAME, value=value, created_at=now))
    session.flush()
    return value.encode()


def sign(key: bytes, *parts: object) -> str:
    """A lowercase base32 signature of ``parts`` (lowercase: mail systems may fold case)."""
    message = "\x1f".join(str(part) for part in parts).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.b32encode(digest).decode().rstrip("=").lower()


def verify(key: bytes, signature: str, *parts: object) -> bool:
    return hmac.compare_digest(sign(key, *parts), signature.lower())
