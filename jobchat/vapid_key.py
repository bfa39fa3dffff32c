"""Reading a VAPID private key as JOBCHAT_VAPID_PRIVATE_KEY gives it.

A leaf (no jobchat imports): the settings check it at start-up and the push channel
(jobchat.push.keys) signs with it, and neither may import the other for it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02


class VapidKeyInvalid(ValueError):
    pass


def parse_private_key(value: str) -> Vapid02:
    """A key as JOBCHAT_VAPID_PRIVATE_KEY gives it: PEM, or base64url of the raw number."""
    value = value.strip()
    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(value.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
                key.curve, ec.SECP256R1
            ):
                raise VapidKeyInvalid("a VAPID key must be an EC key on the P-256 curve")
            return Vapid02(key)
        return Vapid02.from_string(value)
    except VapidKeyInvalid:
        raise
    except Exception as exc:
        raise VapidKeyInvalid(
            f"JOBCHAT_VAPID_PRIVATE_KEY is not a P-256 private key: {exc}"
        ) from exc
