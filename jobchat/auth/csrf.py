"""CSRF tokens for the browser session.

A token is an HMAC of the session secret, so it needs no storage, changes with every session,
and cannot be made by a page on another site (which never sees the HttpOnly cookie). Pages put
it in each form's hidden ``csrf`` field and in ``<meta name="csrf-token">`` for our scripts,
which send it as ``X-CSRF-Token`` on cookie-authenticated API writes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_PURPOSE = b"jobchat csrf v1"


def csrf_token(session_secret: str) -> str:
    mac = hmac.new(session_secret.encode(), _PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_ok(session_secret: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        csrf_token(session_secret).encode(), presented.encode(errors="replace")
    )
