"""Stored credentials. Only SHA-256 digests of secrets are kept, never the secrets."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobchat.db.base import Base, BigId, UTCDateTime
from jobchat.directory.models import User


class CredentialKind(enum.StrEnum):
    token = "token"  # noqa: S105  (a kind of credential, not a secret)
    # token: an API bearer token acting as one user
    login_link = "login_link"  # one-time, short-lived; exchanged for a session
    session = "session"  # browser session cookie


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Credential(Base):
    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # API tokens: a label the integration gave, and when it was revoked (a revoked token is
    # kept, so that listing a person's tokens shows what was revoked and when).
    name: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ServerSecret(Base):
    """Keys this deployment made for itself (when JOBCHAT_SECRET_KEY is not set), kept so that
    every process and every restart signs alike."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
