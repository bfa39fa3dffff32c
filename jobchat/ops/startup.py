"""What a process says as it starts: why its database could not be opened (one line, naming
the host but never the password), and a warning when no integration key exists."""

from __future__ import annotations

import logging

from sqlalchemy import exists, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from jobchat.auth.models import ApiKey
from jobchat.config import Settings
from jobchat.db.engine import Database

log = logging.getLogger("jobchat")


def database_problem(url: str, exc: DBAPIError) -> str:
    """``exc`` (met on opening ``url``) as one line: where, and why, with no password."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    # psycopg: 'connection failed: connection to server at "127.0.0.1", port 1 failed: ...'
    reason = reason.removeprefix("connection failed: ")
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"cannot open the database: {reason}"
    if parsed.get_backend_name() == "sqlite":
        where = parsed.database or ":memory:"
        missing = "unable to open" in reason
        hint = " (does its folder exist, and may this user write there?)" if missing else ""
        return f"cannot open the SQLite database {where}: {reason}{hint}"
    host = parsed.host or "the local socket"
    port = f":{parsed.port}" if parsed.port else ""
    return f"cannot reach the database {parsed.database} on {host}{port}: {reason}"


def warn_without_integration_key(db: Database, settings: Settings) -> None:
    """One warning line when nothing can call the integration API: no JOBCHAT_API_KEY, and no
    key made with ``jobchat api-key create`` that is still valid."""
    if settings.api_key:
        return
    with db.read() as session:
        any_key = session.scalar(select(exists().where(ApiKey.revoked_at.is_(None))))
    if not any_key:
        log.warning(
            "no integration key: set JOBCHAT_API_KEY or run `jobchat api-key create`; until "
            "then nothing can call the integration API"
        )
