"""The one tokenizer of search: indexing, querying, ranking, snippets and highlights all use it.

Both databases receive text we tokenised here (SQLite's FTS5 with its plain ``ascii`` tokenizer
over space-joined tokens, PostgreSQL a ``tsvector`` literal we build), never their own parsers:
so a word means the same on both, and results are identical.

A token is a run of Unicode letters and digits (no underscore), each character folded: NFKC,
casefold, then its diacritics removed (NFKD minus combining marks), so "Zoë", "ZOË" and "zoe"
are one word. Format characters (soft hyphens, zero-width joiners) and combining marks are
absorbed into the token they sit in. Each token keeps its character span in the original text,
for snippets and highlights. Stop words are dropped, tokens over 64 characters skipped, and the
rest stemmed with the Snowball English stemmer.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer  # type: ignore[import-untyped]  # no stubs published

# Longer tokens are not words anyone searches for (hashes, base64, URLs' insides): skipped on
# both sides, like stop words.
MAX_TOKEN_CHARS = 64
# PostgreSQL keeps word positions up to 16383; later tokens of a very long message are left out
# of the index on both databases alike, so phrase matches agree.
MAX_POSITIONS = 16383

# Common English function words, ignored in the index and in queries (our own list).
_STOP_WORDS = """
    a about above after again against all am an and any are as at
    be because been before being below between both but by
    can could d did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how
    i if in into is it its itself just ll me more most my myself
    no nor not of off on once only or other our ours ourselves out over own
    re s same she should so some such t than that the their theirs them themselves then there
    these they this those through to too under until up us very
    was we were what when where which while who whom why will with would
    you your yours yourself yourselves ve m o y also yet via per
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True, slots=True)
class Token:
    """A folded word and its span ``[start, end)`` in the original text (str indices)."""

    word: str
    start: int
    end: int


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    """What one character contributes to a token: "" for marks and format characters."""
    if unicodedata.category(char) == "Cf":
        return ""
    folded = unicodedata.normalize("NFKC", char).casefold()
    return "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))


def tokenize(text: str) -> list[Token]:
    """Every token of ``text`` (stop words included; too long ones left out), in order."""
    if text.isascii():
        # The common case, and the fast one: for ASCII, folding is lowercasing.
        return [
            Token(m.group().lower(), m.start(), m.end())
            for m in _ASCII_WORD.finditer(text)
            if m.end() - m.start() <= MAX_TOKEN_CHARS
        ]
    out: list[Token] = []
    chars: list[str] = []
    start = end = 0

    def flush() -> None:
        if chars and len(chars) <= MAX_TOKEN_CHARS:
            out.append(Token("".join(chars), start, end))
        chars.clear()

    for i, char in enumerate(text):
        folded = _fold_char(char)
        if not folded:
            if chars:
                end = i + 1
            continue
        for c in folded:
            if c.isalnum():
                if not chars:
                    start = i
                chars.append(c)
                end = i + 1
            else:
                flush()
    flush()
    return out


def is_stop_word(word: str) -> bool:
    return word in STOP_WORDS


_local = threading.local()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball English stem of a folded word."""
    # PyStemmer's stemmers are not thread safe: one per thread (requests run in a pool).
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    result: str = stemmer.stemWord(word)
    return result or word


def kept(text: str) -> list[Token]:
    """The tokens of ``text`` the index holds: stop words left out."""
    return [t for t in tokenize(text) if t.word not in STOP_WORDS]


def index_tokens(subject: str | None, body: str, filenames: Sequence[str] = ()) -> list[str]:
    """The folded words a message is indexed under, in order: the subject's, the body's, then
    its files' names' ("Carla_CV.pdf" is carla, cv, pdf: a recruiter looks for "the CV")."""
    words = [t.word for t in kept(subject)] if subject else []
    words.extend(t.word for t in kept(body))
    for name in filenames:
        words.extend(t.word for t in kept(name))
    return words[:MAX_POSITIONS]


def index_terms(subject: str | None, body: str, filenames: Sequence[str] = ()) -> tuple[str, str]:
    """The index's two aligned token streams for a message, space-joined: (words, stems)."""
    words = index_tokens(subject, body, filenames)
    return " ".join(words), " ".join(stem(w) for w in words)


def _quote(lexeme: str) -> str:
    # Tokens are letters and digits only; quoting is belt and braces.
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


# In the tsvector, surface words carry this mark and stems none: two namespaces in one vector
# (not weights: a stem equal to its word at the same position would merge into one entry).
WORD_MARK = "="


def tsvector_literal(words: str, stems: str) -> str:
    """The PostgreSQL ``tsvector`` text of a message's words and stems (position = 1-based
    index among the kept tokens)."""
    positions: dict[str, list[int]] = {}
    for pos, (word, stemmed) in enumerate(zip(words.split(), stems.split(), strict=True), 1):
        positions.setdefault(WORD_MARK + word, []).append(pos)
        positions.setdefault(stemmed, []).append(pos)
    return " ".join(_quote(lexeme) + ":" + ",".join(map(str, p)) for lexeme, p in positions.items())
