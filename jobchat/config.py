"""Settings, read from ``JOBCHAT_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from jobchat.config_checks import origins_of, port_of, readable, secure_context
from jobchat.files.location import parse_storage_url
from jobchat.netaddr import dns_server_address, relay_networks
from jobchat.proxies import trusted_proxies
from jobchat.quiet_hours import QuietHours
from jobchat.vapid_key import VapidKeyInvalid, parse_private_key

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
SMS_PROVIDERS = ("twilio", "console")
# Settings whose value may hold a secret: an error about them never repeats the value.
_SECRET = frozenset(
    {
        "database_url",
        "api_key",
        "redis_url",
        "secret_key",
        "smtp_url",
        "inbound_email_secret",
        "twilio_auth_token",
        "vapid_private_key",
    }
)


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
    max_request_bytes: int = Field(
        default=64 * 1024, ge=1024, le=1024**3, description="Larger request bodies get 413."
    )
    max_message_chars: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Longest app or email message body."
    )
    max_sms_chars: int = Field(default=1_600, ge=1, le=100_000, description="Longest SMS body.")
    login_link_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="How long a sign-in link stays valid."
    )
    session_days: int = Field(
        default=14, ge=1, le=3650, description="How long a browser session lasts."
    )
    token_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Default lifetime of a user API token (expires_in_days overrides).",
    )
    write_timeout_seconds: float = Field(
        default=10,
        gt=0,
        le=3600,
        description="How long a write waits for its turn before it answers 503 busy.",
    )
    send_rate_per_minute: int = Field(
        default=120, ge=1, description="Messages one user may send per minute before 429."
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
    log_level: str = Field(
        default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."
    )
    log_format: str = Field(default="text", description="text or json (one object a line).")
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses (or networks) of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: none; * alone: every peer "
        "(only when nothing but the proxy can reach the server, e.g. a Unix socket or a "
        "container network).",
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
        default=None, ge=1, le=65535, description="Receive mail over SMTP on this port (serve)."
    )
    inbound_smtp_host: str = Field(default="127.0.0.1", description="Where inbound SMTP listens.")
    inbound_email_secret: str | None = Field(
        default=None, description="Authenticates POST /api/v1/inbound/email; unset: it is off."
    )
    # 25 MiB, as the big mail providers send: a reply carrying a file of the full attachment
    # limit (10 MiB) is a third larger once base64-encoded.
    max_inbound_email_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024, description="The largest inbound email accepted."
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
    # --- inbound email authenticity (jobchat.mail.authenticity) ---
    mail_authenticity: str = Field(
        default="enforce",
        description="enforce: a reply whose DMARC result is fail is not posted and a bounce "
        "counts only at its email's own bounce address; off: no DMARC checks (bounces still "
        "need their address).",
    )
    mail_trusted_relays: str = Field(
        default="127.0.0.0/8,::1",
        description="Comma-separated addresses or networks of mail servers relaying to our SMTP "
        "listener: their Authentication-Results (JOBCHAT_MAIL_AUTHSERV_ID) are read instead of "
        "checking DKIM and SPF here. Empty: every peer is checked.",
    )
    mail_authserv_id: str | None = Field(
        default=None,
        description="The authserv-id of the Authentication-Results header our trusted relay (or "
        "the inbound webhook's provider) adds; unset: the topmost such header is taken as theirs.",
    )
    dns_server: str | None = Field(
        default=None,
        description="host or host:port of the DNS server for the DKIM, SPF and DMARC lookups; "
        "unset: the system's resolvers.",
    )
    dns_timeout_seconds: float = Field(
        default=3, gt=0, le=30, description="How long one DNS lookup may take."
    )
    # --- notifications: push, quiet hours, texts ---
    vapid_private_key: str | None = Field(
        default=None,
        description="The Web Push (VAPID) private key: PEM, or base64url of the raw P-256 "
        "number. Unset: one is made on first start and kept in the database.",
    )
    vapid_subject: str | None = Field(
        default=None,
        description="The VAPID contact push services see (mailto: or https:); unset: a mailto: "
        "of JOBCHAT_EMAIL_FROM.",
    )
    push_allow_insecure: bool = Field(
        default=False,
        description="Tests only: accept http:// and loopback push endpoints.",
    )
    push_ttl_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=28 * 24 * 3600,
        description="How long a push service keeps a push for a device that is offline.",
    )
    push_timeout_seconds: float = Field(
        default=10, gt=0, description="How long a push service may take to answer."
    )
    candidate_quiet_hours: str = Field(
        default="21:00-08:00",
        description="A new candidate's quiet hours (HH:MM-HH:MM in their time zone), or off.",
    )
    notify_sms_delay_seconds: float = Field(
        default=900,
        ge=0,
        description="Unread this long, a message is announced to a candidate who chose text "
        "notifications by one text (at most one per conversation per this long).",
    )
    # --- recruiter productivity: templates, scheduled and bulk sends, SMS quiet hours ---
    sms_quiet_hours: str = Field(
        default="21:00-08:00",
        description="When texts to a candidate are held (HH:MM-HH:MM in their local time), "
        "sent when the window ends; off sends at any hour.",
    )
    max_scheduled_per_user: int = Field(
        default=500,
        ge=1,
        description="Scheduled messages one user may have waiting at once; one more is 409 "
        "too_many_scheduled.",
    )
    max_active_bulks_per_user: int = Field(
        default=5,
        ge=1,
        description="Bulk messages one user may have queued or sending at once; one more is "
        "409 too_many_bulk_messages.",
    )
    sms_rate_per_second: float = Field(
        default=1,
        gt=0,
        le=1000,
        description="Texts of a bulk message handed to the SMS provider per second (Twilio's "
        "rate for a long code is 1; a short code or toll-free number takes more).",
    )
    # --- attachments and search ---
    storage_url: str = Field(
        default="file://./jobchat-files",
        description="Where attachments are kept: file://folder (relative to the working "
        "directory, or file:///absolute) or s3://bucket/prefix for any S3-compatible store.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="The S3-compatible store's address (MinIO, Ceph, R2, ...); unset means AWS. "
        "Credentials come from the standard AWS variables or files.",
    )
    max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="The largest file one upload may be (413 above it); this, not "
        "JOBCHAT_MAX_REQUEST_BYTES, bounds an upload.",
    )
    max_email_attachment_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=0,
        description="A message's attachments travel inside an email to a candidate up to this "
        "many bytes in all; beyond it the email carries links to them instead.",
    )
    # --- integration and privacy ---
    webhooks_allow_insecure: bool = Field(
        default=False,
        description="Let webhooks use http:// and loopback addresses (tests only): otherwise a "
        "webhook URL must be https:// on a public address.",
    )
    webhooks_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How long a webhook's endpoint has to answer before the attempt counts "
        "as failed (and is retried).",
    )
    embed_origins: str = Field(
        default="",
        description="Comma-separated origins (https://ats.example.com) whose pages may show "
        "jobchat in a frame, signed in by an embed sign-in link; empty: none.",
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Messages older than this many days are erased daily by the worker "
        "(as an erasure does); unset: kept.",
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
    worker_concurrency: int = Field(
        default=8, ge=1, le=1000, description="Jobs one worker runs at once."
    )
    run_worker: bool = Field(
        default=True, description="Whether jobchat serve runs the jobs worker in-process."
    )
    worker_threads_in_server: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Threads the worker inside jobchat serve computes its jobs on (their waits on mail, "
            "SMS and push servers take none); each one more competes with the requests for "
            "the process's one interpreter lock."
        ),
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
    sms_sender_name: str | None = Field(
        default=None,
        max_length=100,
        description="Who our texts say they are from (the first text's intro line, the answers "
        "to HELP, STOP and START) when no organisation is known; unset: jobchat.",
    )
    sms_help_contact: str | None = Field(
        default=None,
        max_length=100,
        description="A contact (email, phone or web address) the answer to HELP gives when it "
        "cannot name who last texted the number; unset: none.",
    )
    default_phone_region: str = Field(
        default="US", description="Region for phone numbers written without a country code."
    )

    # --- validation: a bad setting stops start-up with a line naming it (see settings_problem) ---

    @field_validator(
        "api_key",
        "redis_url",
        "secret_key",
        "smtp_url",
        "inbound_email_secret",
        "sms_provider",
        "vapid_private_key",
        "vapid_subject",
        "s3_endpoint_url",
        "mail_authserv_id",
        "dns_server",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # JOBCHAT_SMTP_URL= in a .env means "none", not a URL of zero characters (and an empty
        # integration key must never match an empty bearer token).
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (sqlite:///path or postgresql://user@host/db)"
            ) from None
        if url.get_backend_name() == "sqlite":
            if not value.startswith(("sqlite:///", "sqlite+pysqlite:///")):
                raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////abs/path")
        elif url.get_backend_name() == "postgresql":
            if url.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
                raise ValueError("PostgreSQL is reached with postgresql://, not " + url.drivername)
            if not url.database:
                raise ValueError("names no database (postgresql://user@host/DATABASE)")
        else:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("public_url", "twilio_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        parse_storage_url(value)  # raises ValueError saying what is expected
        return value.strip()

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError("must be smtp://[user:pass@]host[:port] or smtps://...")
            port_of(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme in ("redis", "rediss"):
                if not parts.hostname:
                    raise ValueError("must name a host: redis://host:6379/0")
                port_of(value)
            elif parts.scheme != "unix" or not parts.path:
                raise ValueError("must be redis://host:port/db, rediss://... or unix:///path")
        return value

    @field_validator("redis_prefix")
    @classmethod
    def _redis_prefix(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or not value.isprintable():
            raise ValueError("must be a non-empty word (no spaces or control characters)")
        return value

    @field_validator("embed_origins")
    @classmethod
    def _embed_origins(cls, value: str) -> str:
        return ",".join(origins_of(value))  # normalised: "https://a.example,https://b.example"

    @property
    def frame_origins(self) -> tuple[str, ...]:
        """The origins whose pages may frame an embed session (JOBCHAT_EMBED_ORIGINS)."""
        return tuple(self.embed_origins.split(",")) if self.embed_origins else ()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
        return level

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        form = value.strip().lower()
        if form not in LOG_FORMATS:
            raise ValueError("must be text or json")
        return form

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        return ",".join(trusted_proxies(value))

    @field_validator("mail_authenticity")
    @classmethod
    def _mail_authenticity(cls, value: str) -> str:
        choice = value.strip().lower()
        if choice not in ("enforce", "off"):
            raise ValueError("must be enforce or off")
        return choice

    @field_validator("mail_trusted_relays")
    @classmethod
    def _mail_trusted_relays(cls, value: str) -> str:
        return ",".join(str(n) for n in relay_networks(value))

    @field_validator("dns_server")
    @classmethod
    def _dns_server(cls, value: str | None) -> str | None:
        if value is not None:
            dns_server_address(value)  # raises ValueError naming what is wrong
        return value

    @field_validator("sms_provider")
    @classmethod
    def _sms_provider(cls, value: str | None) -> str | None:
        if value is None:
            return None
        choice = value.strip().lower()
        if choice not in SMS_PROVIDERS:
            raise ValueError("must be twilio or console (or unset: SMS off)")
        return choice

    @field_validator("default_phone_region")
    @classmethod
    def _region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter region code such as US, GB or AU")
        return region

    @field_validator("candidate_quiet_hours", "sms_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        window = QuietHours.parse(value)  # its ValueError names what is wrong
        return "off" if window is None else str(window)

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_private_key(cls, value: str | None) -> str | None:
        # Checked with the parser the push channel uses, so that a bad key stops start-up
        # instead of failing every push (and GET /api/v1/push/key) later.
        if value is not None:
            try:
                parse_private_key(value)
            except VapidKeyInvalid:
                raise ValueError(
                    "must be a P-256 private key: PEM, or base64url of the raw 32-byte number"
                ) from None
        return value

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mailto:", "https://")):
            raise ValueError("must be a mailto: or https: URL")
        return value

    @field_validator("email_from")
    @classmethod
    def _email_from(cls, value: str) -> str:
        # A bare address, or one with a display name used when no sender's name applies
        # ("Acme Hiring <hiring@acme.example>"), as jobchat.mail.outbound reads it.
        value = value.strip()
        address = parseaddr(value)[1]
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain or any(c.isspace() for c in address):
            raise ValueError(
                "must be an email address (hiring@example.com or Acme Hiring <hiring@example.com>)"
            )
        return value

    @field_validator("reply_domain", "inbound_smtp_host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(c.isspace() or c in "/@:" for c in host) or not host.isprintable():
            raise ValueError("must be a host name or address")
        return host

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.job_backoff_max_seconds < self.job_backoff_seconds:
            raise ValueError(
                "JOBCHAT_JOB_BACKOFF_MAX_SECONDS must be at least JOBCHAT_JOB_BACKOFF_SECONDS"
            )
        if self.sms_provider == "twilio":
            if not self.twilio_account_sid or not self.twilio_auth_token:
                raise ValueError(
                    "JOBCHAT_SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
                )
            if not self.twilio_from_number and not self.twilio_messaging_service_sid:
                raise ValueError(
                    "JOBCHAT_SMS_PROVIDER=twilio needs TWILIO_FROM_NUMBER or "
                    "TWILIO_MESSAGING_SERVICE_SID"
                )
        if self.embed_origins and not secure_context(self.public_url):
            # The embed session's cookie is SameSite=None, which browsers take only if Secure.
            raise ValueError(
                "JOBCHAT_EMBED_ORIGINS needs JOBCHAT_PUBLIC_URL on https:// (browsers keep the "
                "cookie of a session in a frame only from a secure site)"
            )
        return self

    @property
    def candidate_quiet_window(self) -> QuietHours | None:
        return QuietHours.parse(self.candidate_quiet_hours)

    @property
    def sms_quiet_window(self) -> QuietHours | None:
        return QuietHours.parse(self.sms_quiet_hours)

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the psycopg 3 driver named, which is the one we install."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


def env_name(field: str) -> str:
    """The environment variable an operator sets for ``field``."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return "JOBCHAT_" + field.upper()


def settings_problem(error: ValidationError) -> str:
    """One line for the operator: each bad variable, as they typed it, and what is wrong."""
    problems: list[str] = []
    for err in error.errors(include_url=False):
        loc = err.get("loc") or ()
        message = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        field = str(loc[0]) if loc else ""
        if field not in Settings.model_fields:
            problems.append(message)  # a rule across settings names its variables itself
            continue
        value = "" if field in _SECRET else f" (got {err.get('input')!r})"
        problems.append(f"{env_name(field)} {readable(message)}{value}")
    return "bad setting: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
