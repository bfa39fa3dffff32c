"""Merge fields: parsing a template, checking it, and filling it in for one conversation.

A template is plain text with ``{{field}}`` or ``{{field | fallback}}`` placeholders. Filling it
in is one pass of a regular expression over the template alone: the values put in are never
scanned again, so a candidate named ``{{sender.name}}`` or ``<script>`` stays exactly that text.
No template engine ever sees a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from jobchat.conversations.models import Conversation
from jobchat.directory.models import Application, Job, User

# The fields a template may name, with what each means (shown in the API docs and the pages).
FIELDS: dict[str, str] = {
    "candidate.name": "The candidate's full name",
    "candidate.first_name": "The candidate's first name",
    "job.title": "The job's title",
    "employer.name": "The employer's name",
    "sender.name": "Your full name",
    "sender.first_name": "Your first name",
    "sender.organization": "Your organisation's name",
    "application.stage": "The application's stage",
}

MAX_FALLBACK_CHARS = 200

# {{ name }} or {{ name | fallback }}; the fallback may hold anything but braces. No two parts
# of the pattern can match the same character (the name stops at the first | or brace, the
# fallback at the first brace), so it never backtracks: an unclosed "{{a|" and a page of spaces
# costs one scan, where optional spaces around lazy groups cost cubic time, inside the one
# write turn every writer waits for. The spaces are stripped in Python instead (_parts).
_PLACEHOLDER = re.compile(r"\{\{([^{}|]*)(?:\|([^{}]*))?\}\}")


@dataclass(frozen=True)
class Placeholder:
    field: str
    fallback: str | None


def _parts(match: re.Match[str]) -> Placeholder:
    fallback = match.group(2)
    return Placeholder(match.group(1).strip(), fallback.strip() if fallback is not None else None)


def placeholders(text: str) -> list[Placeholder]:
    return [_parts(m) for m in _PLACEHOLDER.finditer(text)]


def template_problem(text: str) -> str | None:
    """Why ``text`` is not a valid template (naming the first bad field), or None."""
    for ph in placeholders(text):
        if ph.field not in FIELDS:
            known = ", ".join(FIELDS)
            return f"has an unknown merge field {{{{{ph.field}}}}}; the fields are {known}"
        if ph.fallback is not None and len(ph.fallback) > MAX_FALLBACK_CHARS:
            return f"has a fallback for {ph.field} longer than {MAX_FALLBACK_CHARS} characters"
    stray = _PLACEHOLDER.sub("", text)
    if "{{" in stray or "}}" in stray:
        return "has a {{ without its }} (a merge field looks like {{candidate.first_name}})"
    return None


@dataclass(frozen=True)
class Rendered:
    text: str
    # Fields that had no value and no fallback, in the order they first appear.
    missing: list[str]


def render(text: str, values: Mapping[str, str | None]) -> Rendered:
    """Fill in ``text``. A field without a value takes its fallback; with neither it is left as
    written (so a preview can show it) and reported in ``missing``."""
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        ph = _parts(match)
        field, fallback = ph.field, ph.fallback
        value = values.get(field)
        if value:
            return value
        if fallback is not None:
            return fallback
        if field not in missing:
            missing.append(field)
        return match.group(0)

    return Rendered(_PLACEHOLDER.sub(fill, text), missing)


def _first_name(name: str | None) -> str | None:
    if not name:
        return None
    parts = name.split()
    return parts[0] if parts else None


def _stage(stage: str | None) -> str | None:
    if not stage:
        return None
    return "CV review" if stage == "cv_review" else stage.replace("_", " ")


def merge_values(conv: Conversation | None, sender: User) -> dict[str, str | None]:
    """The value of every field for a message from ``sender`` into ``conv`` (None: no value,
    as for a job chat's candidate, or a template previewed outside any conversation)."""
    application: Application | None = conv.application if conv is not None else None
    candidate: User | None = None
    job: Job | None = None
    if conv is not None:
        candidate = conv.candidate or (application.candidate if application else None)
        job = conv.job or (application.job if application else None)
    return values_for(candidate=candidate, job=job, application=application, sender=sender)


def values_for(
    *,
    candidate: User | None,
    job: Job | None,
    application: Application | None,
    sender: User,
) -> dict[str, str | None]:
    return {
        "candidate.name": candidate.name if candidate else None,
        "candidate.first_name": _first_name(candidate.name) if candidate else None,
        "job.title": job.title if job else None,
        "employer.name": job.employer.name if job else None,
        "sender.name": sender.name,
        "sender.first_name": _first_name(sender.name),
        "sender.organization": sender.organization.name if sender.organization else None,
        "application.stage": _stage(application.stage) if application else None,
    }
