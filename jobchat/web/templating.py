"""The page templates: Jinja2 with autoescaping on, so every piece of user content is escaped
unless a template says otherwise (none does), and a ``static()`` that names each asset by its
content hash, so a browser may cache it for good."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from jobchat.localtime import format_date, format_datetime, zone
from jobchat.web import attachments_view
from jobchat.web.labels import conversation_label, conversation_title, initials, tone
from jobchat.web.sms_hold import held_line

STATIC_DIR = resources.files("jobchat") / "web" / "static"


@cache
def asset_version(name: str) -> str:
    """The content hash that names a static file's current version in its URL."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static(name: str) -> str:
    return f"/static/{name}?v={asset_version(name)}"


def clock_time(moment: datetime, tz_name: str) -> str:
    """'14:05' in the viewer's zone: the time on a bubble (its day is on the separator)."""
    return f"{moment.astimezone(zone(tz_name)):%H:%M}"


def day_of(moment: datetime, tz_name: str) -> str:
    """The calendar day in the viewer's zone, for day separators."""
    return moment.astimezone(zone(tz_name)).date().isoformat()


def short_time(moment: datetime, now: datetime, tz_name: str) -> str:
    """An inbox row's time: the clock today, the day this week, the date before that."""
    local, today = moment.astimezone(zone(tz_name)), now.astimezone(zone(tz_name))
    if local.date() == today.date():
        return f"{local:%H:%M}"
    if (today.date() - local.date()).days < 7:
        return f"{local:%a}"
    return f"{local.day} {local:%b}" + ("" if local.year == today.year else f" {local.year}")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("jobchat", "web/templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static
    env.globals["conversation_title"] = conversation_title
    env.globals["conversation_label"] = conversation_label
    env.globals["initials"] = initials
    env.globals["tone"] = tone
    env.globals["held_line"] = held_line
    # A form's own idempotency key: posting it twice (a double click, a resubmit) sends once.
    env.globals["new_key"] = lambda: secrets.token_urlsafe(16)
    # How a message's files are drawn (jobchat.web.attachments_view).
    env.globals["att"] = attachments_view
    env.filters["datetime"] = format_datetime
    env.filters["date"] = format_date
    env.filters["clock"] = clock_time
    env.filters["day"] = day_of
    return env


ENV = _environment()


def render(
    name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    return HTMLResponse(
        ENV.get_template(name).render(**context), status_code=status, headers=headers
    )
