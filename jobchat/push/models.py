"""A browser's push subscription: where its push service takes pushes for one of our users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime

# Push services' endpoints run to a few hundred characters (FCM's ~190, Apple's ~200, Mozilla's
# ~250); anything this long is not one.
MAX_ENDPOINT_CHARS = 2000


class PushSubscription(Base):
    """One browser (or installed app) of one user. The endpoint is the push service's address
    for that browser, unique: subscribing it again, even as someone else, moves it."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(MAX_ENDPOINT_CHARS), unique=True)
    # The browser's keys for RFC 8291 encryption, base64url as the browser gave them.
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
