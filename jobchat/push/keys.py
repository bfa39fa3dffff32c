"""The server's VAPID key (RFC 8292): browsers take pushes only from the key they subscribed
with, so it must be the same in every process and after every restart.

JOBCHAT_VAPID_PRIVATE_KEY when set (PEM, or base64url of the raw 32-byte private number);
otherwise a key made on first use and kept in the server_secrets table.
"""

from __future__ import annotations

import threading
from datetime import datetime
from email.utils import parseaddr
from weakref import WeakKeyDictionary

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from py_vapid.utils import b64urlencode
from sqlalchemy.exc import IntegrityError

from jobchat.auth.models import ServerSecret
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.vapid_key import parse_private_key

_KEY_NAME = "vapid_private_key"

# The stored key, read once per database: it never changes once made.
_stored: WeakKeyDictionary[Database, Vapid02] = WeakKeyDictionary()
_lock = threading.Lock()


def raw_private_key(vapid: Vapid02) -> str:
    """base64url (no padding) of the 32-byte private number: how the key is stored."""
    number = vapid.private_key.private_numbers().private_value
    return str(b64urlencode(number.to_bytes(32, "big")))


def public_key(vapid: Vapid02) -> str:
    """The application-server key browsers subscribe with: base64url (no padding) of the
    uncompressed P-256 point."""
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return str(b64urlencode(point))


def vapid_key(db: Database, settings: Settings, now: datetime) -> Vapid02:
    if settings.vapid_private_key:
        return parse_private_key(settings.vapid_private_key)
    with _lock:
        cached = _stored.get(db)
    if cached is not None:
        return cached
    key = _load_or_create(db, now)
    with _lock:
        _stored[db] = key
    return key


def vapid_subject(settings: Settings) -> str:
    """Who push services may contact about our pushes."""
    if settings.vapid_subject:
        return settings.vapid_subject
    return "mailto:" + parseaddr(settings.email_from)[1]


def _load_or_create(db: Database, now: datetime) -> Vapid02:
    with db.read() as session:
        stored = session.get(ServerSecret, _KEY_NAME)
        if stored is not None:
            return Vapid02.from_raw(stored.value.encode())
    made = Vapid02()
    made.generate_keys()
    try:
        with db.work() as session:
            session.add(ServerSecret(name=_KEY_NAME, value=raw_private_key(made), created_at=now))
            session.flush()
        return made
    except IntegrityError:
        # Another process made one first: use theirs, so that every process signs alike.
        with db.read() as session:
            stored = session.get(ServerSecret, _KEY_NAME)
            assert stored is not None
            return Vapid02.from_raw(stored.value.encode())
