"""Standard Webhooks signatures (https://www.standardwebhooks.com): ``v1,`` and the base64
HMAC-SHA256 of ``{webhook-id}.{webhook-timestamp}.{body}``, keyed with the secret's bytes (the
base64 after ``whsec_``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request's headers; one signature per secret, space-separated (a receiver accepts
    the request when any of them checks out: during a rotation, old and new)."""
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
    }
