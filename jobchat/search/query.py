"""The query language: what ``q`` asks for, and its translation to each database.

Every word is required (AND). A plain word matches any form of it (its stem); ``word*`` matches
words starting so (at least two letters before the star); ``"a phrase"`` matches its words in
order, next to each other once stop words are left out (the index leaves them out the same way).
Stop words and over-long tokens are ignored; an unbalanced quote closes at the end.

Neither database ever sees the user's text: FTS5 expressions and tsquery literals are built from
our own tokens (letters and digits only), each quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from jobchat.errors import Invalid
from jobchat.search.text import WORD_MARK, is_stop_word, stem, tokenize

MAX_QUERY_CHARS = 200
MIN_PREFIX_CHARS = 2

TermKind = Literal["word", "prefix", "phrase"]


@dataclass(frozen=True)
class Term:
    """One required part of a query.

    word: ``stems == (stem,)``, matched against stems; ``surface`` is the folded word typed
    (an exact surface match ranks higher). prefix: ``surface`` is the folded prefix, matched
    against the start of surface words. phrase: ``stems`` in order, adjacent.
    """

    kind: TermKind
    stems: tuple[str, ...] = ()
    surface: tuple[str, ...] = ()


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]

    @property
    def empty(self) -> bool:
        """Only stop words (or nothing searchable): matches nothing, not an error."""
        return not self.terms


def _invalid(problem: str) -> Invalid:
    return Invalid({"q": problem})


# A quoted part (the closing quote optional: an unbalanced one runs to the end), or a run of
# anything else up to the next quote.
_PARTS = re.compile(r'"([^"]*)"?|([^"]+)')


def parse(q: str) -> Query:
    """Parse ``q``; 422 if it is empty, too long or has no letters or digits at all."""
    if len(q) > MAX_QUERY_CHARS:
        raise _invalid(f"may be at most {MAX_QUERY_CHARS} characters")
    if not q.strip():
        raise _invalid("must not be empty")
    terms: list[Term] = []
    saw_token = False
    for match in _PARTS.finditer(q):
        phrase, loose = match.group(1), match.group(2)
        if phrase is not None:
            tokens = tokenize(phrase)
            saw_token = saw_token or bool(tokens)
            words = [t.word for t in tokens if not is_stop_word(t.word)]
            if len(words) == 1:
                terms.append(Term("word", (stem(words[0]),), (words[0],)))
            elif words:
                terms.append(Term("phrase", tuple(stem(w) for w in words), tuple(words)))
            continue
        for chunk in loose.split():
            tokens = tokenize(chunk)
            if not tokens:
                continue
            saw_token = True
            # "e-mail*": the star belongs to the last token of its chunk, and only when it
            # follows it directly.
            star = chunk.endswith("*") and tokens[-1].end == len(chunk.rstrip("*"))
            for i, token in enumerate(tokens):
                if star and i == len(tokens) - 1:
                    if len(token.word) < MIN_PREFIX_CHARS:
                        raise _invalid(
                            f"a prefix needs at least {MIN_PREFIX_CHARS} letters before the *"
                        )
                    terms.append(Term("prefix", (), (token.word,)))
                elif not is_stop_word(token.word):
                    terms.append(Term("word", (stem(token.word),), (token.word,)))
    if not saw_token:
        raise _invalid("must contain a word (letters or digits)")
    # The same term twice asks nothing more.
    return Query(tuple(dict.fromkeys(terms)))


def _fts_quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def fts5_expression(query: Query) -> str:
    """The FTS5 MATCH expression over ``message_search(words, stems)``."""
    parts = []
    for term in query.terms:
        if term.kind == "word":
            parts.append(f"stems : {_fts_quote(term.stems[0])}")
        elif term.kind == "prefix":
            parts.append(f"words : {_fts_quote(term.surface[0])} *")
        else:
            parts.append("stems : (" + " + ".join(_fts_quote(s) for s in term.stems) + ")")
    return " AND ".join(parts)


def _ts_quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery_literal(query: Query) -> str:
    """The PostgreSQL ``tsquery`` text (cast, never parsed by a text search configuration)."""
    parts = []
    for term in query.terms:
        if term.kind == "word":
            parts.append(_ts_quote(term.stems[0]))
        elif term.kind == "prefix":
            parts.append(_ts_quote(WORD_MARK + term.surface[0]) + ":*")
        else:
            parts.append("(" + " <-> ".join(_ts_quote(s) for s in term.stems) + ")")
    return " & ".join(parts)
