"""Types for what clients send, bounded so that no input can reach the database malformed.

PostgreSQL refuses NUL characters in text and integers past BIGINT; SQLite refuses integers past
64 bits. Checking here turns both into a 422 that names the field instead of a driver error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

MAX_ID = 2**63 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _no_nul_opt(value: str | None) -> str | None:
    return None if value is None else _no_nul(value)


Text = Annotated[str, AfterValidator(_no_nul)]
"""Any client-sent string."""

ExtRef = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
"""A reference to an ATS object by its external id."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""One of our own integer ids (conversations, messages)."""

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
PathRef = Annotated[
    str,
    Path(min_length=1, max_length=200, description="Your own (ATS) id."),
    AfterValidator(_no_nul),
]
QueryRef = Annotated[str | None, Query(min_length=1, max_length=200), AfterValidator(_no_nul_opt)]
QueryText = Annotated[str | None, Query(max_length=400), AfterValidator(_no_nul_opt)]
