"""Checks on contact data and preferences, each naming the field it is about."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jobchat.directory.phones import normalise_phone
from jobchat.inputs import control_problem

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email_problem(email: str) -> str | None:
    # \s covers the line breaks; the other control characters would reach the To header too.
    if not _EMAIL.match(email) or control_problem(email) is not None:
        return "is not an email address"
    return None


def timezone_problem(name: str) -> str | None:
    # ZoneInfo also accepts relative file paths; only the IANA names are valid input here.
    if name not in _iana_names():
        return "is not an IANA time zone name (like Europe/Berlin)"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "is not an IANA time zone name (like Europe/Berlin)"
    return None


_names: frozenset[str] | None = None


def _iana_names() -> frozenset[str]:
    global _names
    if _names is None:
        _names = frozenset(available_timezones())
    return _names


def phone_or_problem(raw: str, default_region: str) -> tuple[str | None, str | None]:
    """(E.164 number, None) for a valid phone number, (None, problem) for anything else."""
    phone = normalise_phone(raw, default_region)
    if phone is None:
        return None, "is not a valid phone number (include the country code, like +44 20 7946 0000)"
    return phone, None
