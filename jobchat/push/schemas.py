"""What the push API takes and answers: a browser's PushSubscription JSON, as it gives it."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from jobchat.inputs import Text
from jobchat.push.models import MAX_ENDPOINT_CHARS, PushSubscription

AUTH_SECRET_BYTES = 16


def b64url_decode(value: str) -> bytes:
    """base64url with or without padding (browsers leave it out); ValueError if it is not."""
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("must be base64url") from None


def _p256dh(value: str) -> str:
    raw = b64url_decode(value)
    if len(raw) != 65 or raw[0] != 4:
        raise ValueError("must be an uncompressed P-256 public key (65 bytes, base64url)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise ValueError("is not a point on the P-256 curve") from None
    return value.rstrip("=")


def _auth(value: str) -> str:
    if len(b64url_decode(value)) != AUTH_SECRET_BYTES:
        raise ValueError(f"must be {AUTH_SECRET_BYTES} bytes, base64url")
    return value.rstrip("=")


def _endpoint(value: str) -> str:
    # A push service's address is plain ASCII (an international host in punycode); anything
    # else is not one, and would only make the unique index's row longer.
    if not value.isascii():
        raise ValueError("must be ASCII (a push service's URL)")
    return value


P256dh = Annotated[str, Field(max_length=200), AfterValidator(_p256dh)]
Auth = Annotated[str, Field(max_length=100), AfterValidator(_auth)]


class KeysIn(BaseModel):
    # Browsers may add keys of their own some day: only these two matter.
    model_config = ConfigDict(extra="ignore")
    p256dh: P256dh
    auth: Auth


class SubscriptionIn(BaseModel):
    """``PushSubscription.toJSON()``: extra fields a browser adds (``expirationTime``) are
    accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[
        Text, Field(min_length=1, max_length=MAX_ENDPOINT_CHARS), AfterValidator(_endpoint)
    ]
    keys: KeysIn


class SubscriptionOut(BaseModel):
    id: int
    endpoint: str
    created_at: datetime

    @classmethod
    def of(cls, sub: PushSubscription) -> SubscriptionOut:
        return cls(id=sub.id, endpoint=sub.endpoint, created_at=sub.created_at)


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class KeyOut(BaseModel):
    public_key: str = Field(
        description="The VAPID application-server key: base64url (no padding) of the "
        "uncompressed P-256 point, for PushManager.subscribe's applicationServerKey."
    )
