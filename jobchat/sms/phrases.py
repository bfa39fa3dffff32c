"""The phrases a texted reply is compared with (jobchat/sms/phrases.toml), and the one way both
the reply and the phrases are normalised so that they compare: NFKC, case folded, accents
folded, apostrophes dropped, every other mark or emoji a space; sentences and clauses split at
their punctuation, since "No, stop texting me" and "don't stop texting me" differ only there."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Keyword = Literal["stop", "start", "help"]
Words = tuple[str, ...]

# The data file's sections, by what they mean.
_SECTIONS: dict[str, Keyword] = {"opt_out": "stop", "opt_in": "start", "help": "help"}

# Apostrophes join what they stand between ("don't" -> "dont", "m'écrivez" -> "mecrivez"), so
# that a reply typed with any of them, or none, reads alike.
_APOSTROPHES = re.compile("['\u2018\u2019\u02bc\u00b4`\u2032]")
# Where a clause ends: a negation or a qualifier in one clause says nothing about the next.
_CLAUSE_END = re.compile(r"[.!?;:,\n\r\u2026\u00a1\u00bf()\[\]{}|/\\\u3002\uff01\uff1f]+")
_WORD = re.compile(r"[^\W_]+")
_GROUP = re.compile(r"\(([^()]*)\)")


def clauses(text: str) -> list[Words]:
    """The words of each clause of ``text``, normalised; clauses with no words left out."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(
        c for c in unicodedata.normalize("NFD", folded) if unicodedata.category(c) != "Mn"
    )
    folded = _APOSTROPHES.sub("", folded)
    found = (tuple(_WORD.findall(part)) for part in _CLAUSE_END.split(folded))
    return [words for words in found if words]


def words(text: str) -> Words:
    """A phrase of the data file as words (one clause: it has no clause marks)."""
    return tuple(w for clause in clauses(text) for w in clause)


def expand(pattern: str) -> list[str]:
    """Every phrase a pattern stands for: "(a|b) c( d|)" -> ["a c d", "a c", "b c d", "b c"]."""
    group = _GROUP.search(pattern)
    if group is None:
        return [pattern]
    head, tail = pattern[: group.start()], pattern[group.end() :]
    return [
        phrase for choice in group.group(1).split("|") for phrase in expand(head + choice + tail)
    ]


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    # Opt-out phrases that count inside a longer reply, with the phrase as the file has it.
    strong: dict[Words, str]
    blockers: frozenset[Words]
    tails: frozenset[Words]


@dataclass(frozen=True)
class Phrases:
    # A whole reply (each clause of it) that means a keyword, with the phrase it was: "STOP",
    # "stop texting me".
    whole: dict[Words, tuple[Keyword, str]]
    politeness: frozenset[Words]
    languages: tuple[Language, ...]
    # Every pattern of the file as written, by section, for the tests (each one is tested).
    listed: dict[str, list[tuple[str, str]]]


def parse(data: dict[str, object]) -> Phrases:
    """The data file's contents, checked: a phrase means one thing only, and no phrase holds a
    politeness word (it is dropped from a reply before comparing, so the phrase could never
    match)."""
    whole: dict[Words, tuple[Keyword, str]] = {}
    listed: dict[str, list[tuple[str, str]]] = {}

    def add(section: str, lang: str, pattern: str, *, label: str | None = None) -> None:
        listed.setdefault(section, []).append((lang, pattern))
        if section == "opt_out_strong":
            return
        keyword = _SECTIONS[section]
        for phrase in expand(pattern):
            key = words(phrase)
            if not key:
                raise ValueError(f"{lang}: {pattern!r} has no words")
            known = whole.get(key)
            if known is not None and known[0] != keyword:
                raise ValueError(f"{lang}: {phrase!r} is both {known[0]} and {keyword}")
            if known is None:
                whole[key] = (keyword, label or " ".join(phrase.split()))

    carrier = _table(data, "carrier")
    for section in _SECTIONS:
        for word in _strings(carrier, section):
            add(section, "carrier", word, label=word.upper())
    languages = []
    for code, raw in _table(data, "languages").items():
        table = raw if isinstance(raw, dict) else {}
        for section in (*_SECTIONS, "opt_out_strong"):
            for pattern in _strings(table, section):
                add(section, code, pattern)
        languages.append(
            Language(
                code=code,
                name=str(table.get("name", code)),
                strong={
                    words(p): " ".join(p.split())
                    for pattern in _strings(table, "opt_out_strong")
                    for p in expand(pattern)
                },
                blockers=_phrases(table, "blockers"),
                tails=_phrases(table, "tails"),
            )
        )
    politeness = frozenset(
        words(p)
        for raw in _table(data, "languages").values()
        for p in _strings(raw if isinstance(raw, dict) else {}, "politeness")
    )
    everything = [*whole, *(p for lang in languages for p in lang.strong)]
    for phrase in everything:
        for polite in politeness:
            if _contains(phrase, polite):
                raise ValueError(f"{' '.join(phrase)!r} holds the politeness word {polite}")
    return Phrases(whole, politeness, tuple(languages), listed)


@cache
def phrases() -> Phrases:
    """The data file shipped with the package (package data: see pyproject.toml)."""
    text = resources.files("jobchat.sms").joinpath("phrases.toml").read_text(encoding="utf-8")
    return parse(tomllib.loads(text))


def _table(data: dict[str, object], name: str) -> dict[str, object]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"[{name}] is missing")
    return value


def _strings(table: dict[str, object], name: str) -> list[str]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return list(value)


def _phrases(table: dict[str, object], name: str) -> frozenset[Words]:
    return frozenset(words(p) for pattern in _strings(table, name) for p in expand(pattern))


def _contains(phrase: Words, part: Words) -> bool:
    n = len(part)
    return any(phrase[i : i + n] == part for i in range(len(phrase) - n + 1))
