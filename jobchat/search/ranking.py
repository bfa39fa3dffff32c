"""Scoring matches and cutting snippets, in Python, so both databases rank and show alike.

The score is BM25-like without the collection statistics (every message in a result holds every
term, and a score must not depend on which database counted what): each term's frequency
saturates (k1), long messages count less (b, against a fixed typical length), an exact surface
form counts more than another form of the word, and a phrase hit more than a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobchat.inputs import is_control
from jobchat.search.query import Query, Term
from jobchat.search.text import Token, kept, stem

_K1 = 1.2
_B = 0.75
_TYPICAL_TOKENS = 40
_EXACT_BONUS = 0.5
_PHRASE_WEIGHT = 2.0

SNIPPET_CHARS = 200
ELLIPSIS = "…"


def _phrase_starts(stems: list[str], phrase: tuple[str, ...]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(stems) - n + 1) if tuple(stems[i : i + n]) == phrase]


def _frequency(term: Term, words: list[str], stems: list[str]) -> float:
    if term.kind == "word":
        return stems.count(term.stems[0]) + _EXACT_BONUS * words.count(term.surface[0])
    if term.kind == "prefix":
        return float(sum(1 for w in words if w.startswith(term.surface[0])))
    return _PHRASE_WEIGHT * len(_phrase_starts(stems, term.stems))


def score(query: Query, words: str, stems: str) -> float:
    """How well a message (its index streams) matches; 0 when a term is missing from it."""
    word_list, stem_list = words.split(), stems.split()
    norm = _K1 * (1 - _B + _B * max(len(stem_list), 1) / _TYPICAL_TOKENS)
    total = 0.0
    for term in query.terms:
        tf = _frequency(term, word_list, stem_list)
        if tf == 0:
            return 0.0
        total += tf * (_K1 + 1) / (tf + norm)
    # Rounded: equal matches tie exactly, and ties go to the newest.
    return round(total, 9)


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    term: int


def _hits(query: Query, text: str) -> list[_Hit]:
    """The tokens of ``text`` that match a term, in order (a phrase: each of its tokens)."""
    tokens: list[Token] = kept(text)
    stems = [stem(t.word) for t in tokens]
    found: dict[int, int] = {}
    for n, term in enumerate(query.terms):
        if term.kind == "word":
            found.update(
                {i: n for i, s in enumerate(stems) if s == term.stems[0] and i not in found}
            )
        elif term.kind == "prefix":
            prefix = term.surface[0]
            found.update(
                {i: n for i, t in enumerate(tokens) if t.word.startswith(prefix) and i not in found}
            )
        else:
            for first in _phrase_starts(stems, term.stems):
                for i in range(first, first + len(term.stems)):
                    found.setdefault(i, n)
    return [_Hit(tokens[i].start, tokens[i].end, found[i]) for i in sorted(found)]


def _best_window(hits: list[_Hit]) -> tuple[int, int]:
    """Indices [first, last] into ``hits`` of the cluster that shows the most different terms
    (then the most hits) within one snippet's length; the earliest such."""
    best = (0, 0)
    best_key = (-1, -1)
    for first, anchor in enumerate(hits):
        last = first
        while last + 1 < len(hits) and hits[last + 1].end - anchor.start <= SNIPPET_CHARS:
            last += 1
        cluster = hits[first : last + 1]
        key = (len({h.term for h in cluster}), len(cluster))
        if key > best_key:
            best, best_key = (first, last), key
    return best


def _plain(text: str) -> str:
    # One character for one: highlight offsets stay valid.
    return "".join(" " if is_control(c) else c for c in text)


def snippet(
    query: Query, subject: str | None, body: str, filenames: Sequence[str] = ()
) -> tuple[str, list[tuple[int, int]]]:
    """Plain text of about SNIPPET_CHARS around the best cluster of matches (from the body, or
    the subject if only it matched, or the files' names, comma-separated, if only they did),
    and the matched tokens' ranges in it (str indices)."""
    hits = _hits(query, body)
    text = body
    if not hits and subject:
        subject_hits = _hits(query, subject)
        if subject_hits or not body:
            hits, text = subject_hits, subject
    if not hits and filenames:
        names = ", ".join(filenames)
        name_hits = _hits(query, names)
        if name_hits or not text:
            hits, text = name_hits, names
    if len(text) <= SNIPPET_CHARS:
        return _plain(text), [(h.start, h.end) for h in hits]
    if hits:
        first, last = _best_window(hits)
        lo, hi = hits[first].start, hits[last].end
    else:
        lo = hi = 0
    # Some context before the cluster, the rest after it.
    spare = max(SNIPPET_CHARS - (hi - lo), 0)
    start = max(0, lo - min(spare // 3, 60))
    end = min(len(text), start + SNIPPET_CHARS)
    start = max(0, min(start, end - SNIPPET_CHARS))
    start, end = _at_word_boundaries(text, start, end, lo, hi)
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    shift = len(prefix) - start
    ranges = [(h.start + shift, h.end + shift) for h in hits if h.start >= start and h.end <= end]
    return prefix + _plain(text[start:end]) + suffix, ranges


def _at_word_boundaries(text: str, start: int, end: int, lo: int, hi: int) -> tuple[int, int]:
    """[start, end) moved inwards so that neither cuts a word (never past the cluster [lo, hi)),
    and without whitespace at either end."""
    if start > 0 and not text[start - 1].isspace():
        cut = start
        while cut < lo and not text[cut].isspace():
            cut += 1
        start = cut if cut < lo else lo
    if end < len(text) and not text[end].isspace():
        cut = end
        while cut > hi and not text[cut - 1].isspace():
            cut -= 1
        end = cut if cut > hi else max(hi, end)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
