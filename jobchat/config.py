"""Settings, read from ``JOBCHAT_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBCHAT_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./jobchat.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql://user@host/db.",
    )
    api_key: str | None = Field(
        default=None, description="The integration key the ATS uses (more: jobchat api-key create)."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Where users reach this server (links)."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for real-time fan-out across server processes."
    )
    redis_prefix: str = Field(
        default="jobchat",
        description="Prefix of this deployment's Redis channels and keys (several may share one).",
    )
    max_request_bytes: int = Field(default=64 * 1024, description="Larger request bodies get 413.")
    max_message_chars: int = Field(default=10_000, description="Longest app or email message body.")
    max_sms_chars: int = Field(default=1_600, description="Longest SMS body.")
    login_link_minutes: int = Field(default=15, description="How long a sign-in link stays valid.")
    session_days: int = Field(default=14, description="How long a browser session lasts.")
    send_rate_per_minute: int = Field(
        default=120, description="Messages one user may send per minute before 429."
    )
    event_retention_hours: float = Field(
        default=168,
        gt=0,
        description="How long events are kept for clients resuming the stream with ?after=.",
    )
    stream_queue_frames: int = Field(
        default=500, ge=1, description="Frames one socket may have waiting before it is closed."
    )
    stream_max_backlog: int = Field(
        default=10_000, ge=1, description="Most events a resume replays; beyond it, reload."
    )
    stream_heartbeat_seconds: float = Field(
        default=25, gt=0, description="A heartbeat frame goes to every socket this often."
    )
    stream_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often each process reads new events without being woken (Redis down).",
    )
    presence_ttl_seconds: float = Field(
        default=60, gt=0, description="With Redis: how long a crashed process still looks online."
    )
    default_phone_region: str = Field(
        default="US", description="Region for phone numbers written without a country code."
    )

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the psycopg 3 driver named, which is the one we install."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
