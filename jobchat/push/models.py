"""A browser's push subscription: where its push service takes pushes for one of our users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime

# Push services' endpoints run to a few hundred characters (FCM's ~190, Apple's ~200, Mozilla's
# ~250); anything this long is not one. ASCII only (schemas), so this many bytes at most: well
# inside what PostgreSQL's unique btree index takes in one row (about 2,700 bytes).
MAX_ENDPOINT_CHARS = 1000


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
    # The sign-in (session or token) that subscribed: signing out deletes the session and with
    # it this row (the next person at a shared computer must not see this one's messages); a
    # revoked or expired one is never pushed to (jobchat.push.payload). None: made otherwise.
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), index=True
    )
