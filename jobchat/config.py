"""Settings, read from ``JOBCHAT_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
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
    token_days: int = Field(
        default=90, description="Default lifetime of a user API token (expires_in_days overrides)."
    )
    write_timeout_seconds: float = Field(
        default=10,
        description="How long a write waits for its turn before it answers 503 busy.",
    )
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
    secret_key: str | None = Field(
        default=None,
        description="Signs reply addresses and email ids; unset: one is made and kept in the "
        "database.",
    )
    # --- operations ---
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR.")
    log_format: str = Field(default="text", description="text or json (one object a line).")
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses (or networks) of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: none.",
    )
    # --- email ---
    smtp_url: str | None = Field(
        default=None,
        description="smtp://user:pass@host:port or smtps://...; STARTTLS when offered. "
        "Unset: emails are logged, not sent.",
    )
    email_from: str = Field(
        default="jobchat@localhost",
        description="The From address of every email; the sender's name is put in front of it.",
    )
    reply_domain: str = Field(
        default="reply.localhost", description="The domain of reply addresses (its MX points here)."
    )
    inbound_smtp_port: int | None = Field(
        default=None, ge=0, le=65535, description="Receive mail over SMTP on this port (serve)."
    )
    inbound_smtp_host: str = Field(default="127.0.0.1", description="Where inbound SMTP listens.")
    inbound_email_secret: str | None = Field(
        default=None, description="Authenticates POST /api/v1/inbound/email; unset: it is off."
    )
    max_inbound_email_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="The largest inbound email accepted."
    )
    notify_delay_seconds: float = Field(
        default=120,
        ge=0,
        description="Unread this long after it arrived, a message is sent to its member by email.",
    )
    notify_link_hours: float = Field(
        default=72, gt=0, description="How long the sign-in link in a notification works."
    )
    smtp_timeout_seconds: float = Field(
        default=30, gt=0, description="How long one SMTP conversation may take."
    )
    # --- the jobs worker ---
    job_max_attempts: int = Field(
        default=12, ge=1, description="Attempts before a job ends in the failed state."
    )
    job_backoff_seconds: float = Field(
        default=5, gt=0, description="The wait after a first failure; it doubles with each one."
    )
    job_backoff_max_seconds: float = Field(
        default=600, gt=0, description="The longest wait between two attempts."
    )
    job_lease_seconds: float = Field(
        default=300,
        gt=0,
        description="A job a worker took and did not finish is taken up again after this.",
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the worker looks for due jobs unwoken."
    )
    worker_concurrency: int = Field(default=8, ge=1, description="Jobs one worker runs at once.")
    run_worker: bool = Field(
        default=True, description="Whether jobchat serve runs the jobs worker in-process."
    )
    # --- SMS ---
    sms_provider: str | None = Field(
        default=None,
        description="twilio, or console (logs instead of sending); unset: SMS is off (422).",
    )
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    twilio_auth_token: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    twilio_from_number: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_FROM_NUMBER", "twilio_from_number")
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "TWILIO_MESSAGING_SERVICE_SID", "twilio_messaging_service_sid"
        ),
    )
    twilio_api_url: str = Field(
        default="https://api.twilio.com",
        description="Twilio's API address (tests point it at a loopback server).",
    )
    spool_dir: str = Field(
        default="./jobchat-spool",
        description=(
            "Where Twilio's webhooks are kept until the database has taken them (one folder "
            "per deployment, shared by its server processes, on a disk that survives restarts)."
        ),
    )
    sms_timeout_seconds: float = Field(
        default=30, gt=0, description="How long the SMS provider may take to answer."
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
