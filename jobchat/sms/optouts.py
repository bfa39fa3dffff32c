"""The keyed hash that names a phone number in ``sms_opt_outs``.

An opt-out must outlive the candidate: after an erasure, a STOP from their number is still
honoured (a candidate given that number later is not texted), yet nothing readable of the number
may remain. So the table keeps an HMAC-SHA256 of the E.164 number, never the number: a number
can be looked up (hash it, find the row), not read back.

The key is a dedicated random one, made once and kept in ``server_secrets`` (as the signing key
is when JOBCHAT_SECRET_KEY is unset), and deliberately not derived from JOBCHAT_SECRET_KEY:
- An opt-out of an erased candidate cannot be hashed again under a new key (its number is gone),
  so a key that followed JOBCHAT_SECRET_KEY would silently forget those STOPs the day an operator
  rotates that setting (it is documented as signing reply addresses, nothing more). A forgotten
  STOP means texting someone who said stop: worse than the gain below.
- Every process and every path (the webhook, the ATS upsert, the worker, the migration that
  converts old rows, the erasure helper, a backup restored elsewhere) hashes alike from the
  database alone, with no setting to pass down or get wrong.
The price: someone holding the whole database holds the key too, and could test candidate
numbers against the hashes one by one. The hash keeps a number out of every export, log and
casual read of the table; it is not meant to stand up to the database's own thief.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from jobchat.auth.models import ServerSecret

KEY_NAME = "sms_opt_out_key"


def opt_out_key(session: Session, number: str, *, now: datetime | None = None) -> str:
    """The keyed hash of ``number`` (E.164) that ``sms_opt_outs`` is keyed by: 64 hex digits.
    Makes the key on first use, in the caller's write transaction (migration 0019 makes it on
    upgrade, so this is for a database that never had an opt-out)."""
    stored = session.get(ServerSecret, KEY_NAME)
    if stored is None:
        made = now if now is not None else datetime.now(UTC)
        stored = ServerSecret(name=KEY_NAME, value=secrets.token_urlsafe(48), created_at=made)
        session.add(stored)
        session.flush()
    return number_hash(stored.value, number)


def known_opt_out_key(session: Session, number: str) -> str | None:
    """The hash for a lookup, without making the key: no key yet means no opt-out yet."""
    stored = session.get(ServerSecret, KEY_NAME)
    return None if stored is None else number_hash(stored.value, number)


def number_hash(key: str, number: str) -> str:
    return hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()
