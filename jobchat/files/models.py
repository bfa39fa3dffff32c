"""An attachment: one file uploaded into one conversation, taken by at most one message."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from jobchat.db.base import Base, BigId, UTCDateTime


class Attachment(Base):
    """The file's bytes live in the storage under ``storage_key``; this row says whose and where.

    Until a message takes it (``message_id``) only its uploader may fetch it, and an upload no
    message took is removed after a day. ``removed_at`` is set when the bytes are gone (its
    message deleted for everyone, its candidate erased): the row stays for the message's
    history, the file is no longer served.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        # The sweep of uploads no message took: message_id IS NULL AND created_at < a day ago.
        Index("ix_attachments_unclaimed", "message_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    # The order within its message (0 first).
    position: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(255))
    # Read from the content, never from the name or the uploader's header.
    content_type: Mapped[str] = mapped_column(String(100))
    # Of the stored file (images are stored re-encoded without their metadata).
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(300), unique=True)
    # A small JPEG of an image for the pages (None for documents).
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
