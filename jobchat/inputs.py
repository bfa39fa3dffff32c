"""Types for what clients send, bounded so that no input can reach the database malformed.

PostgreSQL refuses NUL characters in text and integers past BIGINT; SQLite refuses integers past
64 bits; neither stores a lone UTF-16 surrogate. Checking here turns each into a 422 that names
the field instead of a driver error.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

MAX_ID = 2**63 - 1


def storable(value: str) -> str:
    """The value, if a database can store it; ValueError if not."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON can spell lone surrogates ("\ud800"), which no UTF-8 database can store.
        raise ValueError("must be valid Unicode text") from None
    return value


def _storable_opt(value: str | None) -> str | None:
    return None if value is None else storable(value)


def is_control(char: str) -> bool:
    """Control characters (Unicode category Cc: NUL, TAB, CR, LF, ESC, DEL, the C1 set) and the
    line and paragraph separators U+2028/U+2029, which Python's email package (and many other
    readers) take for line breaks too."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


CONTROL_PROBLEM = "must be one line of text, without control characters (line breaks, tabs, NUL)"


def storable_problem(value: str) -> str | None:
    """Why a database cannot store ``value``, or None if it can (storable's check, for
    callers that collect problems rather than raise)."""
    try:
        storable(value)
    except ValueError as exc:
        return str(exc)
    return None


def control_problem(value: str) -> str | None:
    """Why ``value`` cannot be a single-line field (a name, a subject), or None if it can.

    Such a field ends up in an email header, where a line break would cut the header (the email
    package refuses to build it, so every email of that sender would fail), and in one-line
    places of the pages."""
    return CONTROL_PROBLEM if any(is_control(c) for c in value) else None


def fold_controls(value: str) -> str:
    """``value`` with each run of control characters turned into one space: for text already
    stored before control characters were refused, wherever it must be one line."""
    out: list[str] = []
    for char in value:
        if not is_control(char):
            out.append(char)
        elif not out or out[-1] != " ":
            out.append(" ")
    return "".join(out).strip()


def _one_line(value: str) -> str:
    if (problem := control_problem(value)) is not None:
        raise ValueError(problem)
    return value


Text = Annotated[str, AfterValidator(storable)]
"""Any client-sent string."""

Line = Annotated[str, AfterValidator(storable), AfterValidator(_one_line)]
"""A client-sent string that must stay on one line: a person's or an organisation's name, a
job title, an email subject."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone offset (like 2026-01-05T09:00:00Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


Moment = Annotated[datetime, AfterValidator(_utc)]
"""A point in time with its offset, stored in UTC."""

ExtRef = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable)]
"""A reference to an ATS object by its external id."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""One of our own integer ids (conversations, messages)."""

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
PathRef = Annotated[
    str,
    Path(min_length=1, max_length=200, description="Your own (ATS) id."),
    AfterValidator(storable),
]
QueryRef = Annotated[str | None, Query(min_length=1, max_length=200), AfterValidator(_storable_opt)]
QueryText = Annotated[str | None, Query(max_length=400), AfterValidator(_storable_opt)]
