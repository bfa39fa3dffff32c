"""Times as a person reads them: in their own timezone, written out."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Names are validated when stored; one that vanished from tzdata falls back to UTC.
        return ZoneInfo("UTC")


def format_datetime(moment: datetime, tz_name: str) -> str:
    """'Mon 5 Jan 2026, 10:00 CET'."""
    local = moment.astimezone(zone(tz_name))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"


def format_date(moment: datetime, tz_name: str) -> str:
    """'5 January 2026'."""
    local = moment.astimezone(zone(tz_name))
    return f"{local.day} {local:%B %Y}"
