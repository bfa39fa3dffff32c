"""The search page, ``/search?q=``: the caller's messages that match, drawn by the server
(it works without our script), each result opening its conversation at the message.

The results come from ``jobchat.search.queries.search`` (the same function as the API, so the
same access rules and order); this module only turns them into what the page shows. The
snippet is plain text with character ranges to highlight: the page cuts it into parts, each
escaped by the template, and only the ranges become <mark>.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from jobchat.conversations.schemas import Names
from jobchat.errors import Invalid, NotFound
from jobchat.inputs import MAX_ID, QueryText, storable_problem
from jobchat.search.queries import Filters, Hit, search
from jobchat.search.query import parse
from jobchat.web.labels import label_of
from jobchat.web.layout import frame
from jobchat.web.templating import render, short_time
from jobchat.web.viewer import PageViewer

router = APIRouter(include_in_schema=False)

PAGE = 20
CHANNELS = {"email": "Email", "sms": "SMS"}


@dataclass(frozen=True)
class Result:
    message_id: int
    href: str
    title: str
    kind: str
    author: str
    created_at: datetime
    when: str
    channel: str
    files: str
    # The snippet in order: (text, highlighted?).
    parts: list[tuple[str, bool]]


def marked(snippet: str, highlights: Sequence[Sequence[int]]) -> list[tuple[str, bool]]:
    """``snippet`` cut at the highlighted ranges: ranges are clipped to the text, and overlapping
    or touching ones merged, so bad ranges can never duplicate, lose or reorder text."""
    spans: list[list[int]] = []
    for pair in sorted((max(0, r[0]), min(len(snippet), r[1])) for r in highlights if len(r) == 2):
        start, end = pair
        if end <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    parts: list[tuple[str, bool]] = []
    at = 0
    for start, end in spans:
        if start > at:
            parts.append((snippet[at:start], False))
        parts.append((snippet[start:end], True))
        at = end
    if at < len(snippet):
        parts.append((snippet[at:], False))
    return parts


def _files_text(count: int) -> str:
    return "" if count == 0 else ("1 file" if count == 1 else f"{count} files")


def _result(hit: Hit, kind_word: str, when: str) -> Result:
    m = hit.message
    return Result(
        message_id=m.id,
        href=f"/conversations/{hit.conversation_id}?at={m.id}",
        title=hit.conversation_title,
        kind=kind_word,
        author=m.author.name if m.author is not None else "jobchat",
        created_at=m.created_at,
        when=when,
        channel=CHANNELS.get(str(m.channel), ""),
        files=_files_text(len([a for a in m.attachments if a.removed_at is None])),
        parts=marked(hit.snippet, hit.highlights),
    )


OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
OptionalRef = Annotated[str | None, Query(max_length=200)]
# The query is taken as typed, however long or odd, so that its problem shows as a notice
# next to the kept search box (jobchat.search.query.parse says what is wrong), never as
# the generic error page.
RawText = Annotated[str | None, Query()]


@router.get("/search")
def search_page(
    viewer: PageViewer,
    q: RawText = None,
    conversation: OptionalId = None,
    job: OptionalRef = None,
    candidate: OptionalRef = None,
    cursor: QueryText = None,
) -> HTMLResponse:
    """``job`` and ``candidate`` are external ids, as in the API; ``conversation`` an id."""
    q = (q or "").strip()
    keep = [
        (name, str(value))
        for name, value in (("conversation", conversation), ("job", job), ("candidate", candidate))
        if value is not None
    ]
    results: list[Result] = []
    more_href: str | None = None
    error = ""
    notice = ""
    suggestion: tuple[str, str] | None = None
    with viewer.read() as (session, user):
        bad = storable_problem(q)
        if bad:
            error = f"Search {bad}."
        elif q:
            try:
                found = search(
                    session,
                    user,
                    q,
                    Filters(conversation=conversation, job=job, candidate=candidate),
                    PAGE,
                    cursor or None,
                )
            except Invalid as exc:
                error = _problem(exc)
            except NotFound as exc:
                error = str(exc)
            else:
                now = viewer.caller.now
                results = [
                    _result(
                        hit,
                        label_of(hit.conversation_kind, Names(), user).kind,
                        short_time(hit.message.created_at, now, user.timezone),
                    )
                    for hit in found.hits
                ]
                if found.next_cursor:
                    more_href = "/search?" + urlencode(
                        [("q", q), *keep, ("cursor", found.next_cursor)]
                    )
                if not results and not cursor:
                    notice, suggestion = _nothing_found(q, keep)
        return render(
            "search.html",
            q=q,
            search_q=q,
            keep=keep,
            scope=_scope_text(conversation, job, candidate),
            unscoped_href="/search?" + urlencode({"q": q}),
            results=results,
            searched=bool(q) and not error,
            more_href=more_href,
            count_text=_count_text(len(results), more=more_href is not None),
            error=error,
            notice=notice,
            suggestion=suggestion,
            **frame(session, user, viewer, "search"),
        )


def _nothing_found(q: str, keep: list[tuple[str, str]]) -> tuple[str, tuple[str, str] | None]:
    """Why a search found nothing, when the query says: only words too common to be indexed
    ("the") make a query that can match nothing; and a plain query might have meant the start
    of a word ("tues" for "Tuesday"): the prefix form, offered as a link."""
    if parse(q).empty:
        if len(q.split()) == 1:
            return f"“{q}” is too common a word to search for; add another word.", None
        return f"“{q}”: these words are too common to search for; add another word.", None
    if "*" in q or '"' in q:
        return "", None
    words = q.split()
    if not words or len(words[-1]) < 2:
        return "", None
    prefixed = " ".join([*words[:-1], words[-1] + "*"])
    try:
        parse(prefixed)
    except Invalid:
        return "", None
    return "", (prefixed, "/search?" + urlencode([("q", prefixed), *keep]))


def _count_text(shown: int, *, more: bool) -> str:
    if more:
        return f"More than {shown} results"
    return "1 result" if shown == 1 else f"{shown} results"


def _problem(exc: Invalid) -> str:
    """The query's problem in a sentence ("q: ..." becomes "Search: ...")."""
    fields = getattr(exc, "fields", None) or {}
    if isinstance(fields, dict) and fields:
        name, problem = next(iter(fields.items()))
        return f"{'Search' if name == 'q' else name.capitalize()} {problem}."
    return str(exc)


def _scope_text(conversation: int | None, job: str | None, candidate: str | None) -> str:
    if conversation is not None:
        return "this conversation"
    if job is not None and candidate is not None:
        return "conversations about this candidate and job"
    if job is not None:
        return "conversations about this job"
    if candidate is not None:
        return "conversations about this candidate"
    return ""
