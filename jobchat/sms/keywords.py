"""What a texted reply asks for besides an answer: to stop texts, to have them again, or who is
texting. The phrases, in every language we read, are data (jobchat/sms/phrases.toml); this
decides.

A reply is first normalised (jobchat.sms.phrases: case, accents, apostrophes, punctuation and
emoji), split into clauses at its punctuation, and stripped of politeness words ("please",
"thanks", "por favor", "s'il vous plaît"...). Then:

- It IS a keyword or phrase when every clause left is one (or one said again, "STOP STOP"):
  "Stop!", "unsubscribe please", "Arrêter", "no more messages 🙏". This is how STOP, START and
  HELP work in any language, and the only way START and HELP work.
- It CONTAINS an opt-out when one of its clauses (or two, where a comma cuts the phrase: "Hören
  Sie auf, mir zu schreiben") holds a strong opt-out phrase, one that cannot mean anything else
  ("stop texting me", "remove me from your list", "ne m'écrivez plus"), as whole words, and that
  phrase is
  - not preceded, within three words of its clause, by a word of its language that turns it
    into something else: a negation ("don't stop texting me"), a condition or a question ("if
    you stop texting me", "why did you stop texting me"), someone else ("tell him to ...");
  - not followed, in its clause, by anything but words that leave it whole ("anymore",
    "again"): "stop texting me at night" asks for a time, "no more messages to send you" is
    about something else. The next clause is free: "Stop texting me, I found a job".
Everything else is an ordinary reply, read by a person in the thread: "stop by tomorrow at 3",
"unstoppable", "no more questions, thanks", and "remove me from the 9am slot", which asks to be
moved from one slot, not to hear nothing more (a recruiter can record an opt-out if that is
what was meant; taking it as one would silence a candidate who only wanted another time).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from jobchat.sms.phrases import Keyword, Language, Phrases, Words, clauses, phrases

__all__ = ["Keyword", "ReplyMatch", "keyword_of", "match_reply"]

# How far back, within its clause, a word may turn a strong phrase into something else.
_BLOCKER_REACH = 3


@dataclass(frozen=True)
class ReplyMatch:
    keyword: Keyword
    # What it matched, from the data file (never the reply's own words): "STOP" for a carrier
    # keyword, else the phrase ("stop texting me"); kept as the opt-out's reason.
    phrase: str


def keyword_of(body: str) -> Keyword | None:
    found = match_reply(body)
    return found.keyword if found else None


def match_reply(body: str, data: Phrases | None = None) -> ReplyMatch | None:
    data = data if data is not None else phrases()
    parts = [_polite_dropped(c, data.politeness) for c in clauses(body)]
    parts = [p for p in parts if p]
    if not parts:
        return None
    whole = _whole(parts, data)
    if whole is not None:
        return whole
    # A clause, or two running into each other where a comma cuts a phrase in two ("Hören Sie
    # auf, mir zu schreiben"): a phrase found there must cross the comma.
    spans = [(clause, 0) for clause in parts] + [
        (first + second, len(first)) for first, second in pairwise(parts)
    ]
    for clause, cut in spans:
        for language in data.languages:
            phrase = _strong_in(clause, language, cut)
            if phrase is not None:
                return ReplyMatch("stop", phrase)
    return None


def _whole(parts: list[Words], data: Phrases) -> ReplyMatch | None:
    """Every clause a keyword or phrase (all of them, or the reply's words run together): the
    reply is that. If they differ ("Stop. Help"), an opt-out wins: stopping is the one a
    mistake must not lose."""
    joined = tuple(w for p in parts for w in p)
    found = [_known(joined, data)] if _known(joined, data) else [_known(p, data) for p in parts]
    if not found or any(f is None for f in found):
        return None
    matches = [f for f in found if f is not None]
    for match in matches:
        if match.keyword == "stop":
            return match
    return matches[0] if all(m.keyword == matches[0].keyword for m in matches) else None


def _known(clause: Words, data: Phrases) -> ReplyMatch | None:
    """The clause as a keyword or phrase, or as one said over again ("stop stop")."""
    size = len(clause)
    for n in range(1, size + 1):
        if size % n == 0 and clause == clause[:n] * (size // n) and clause[:n] in data.whole:
            keyword, label = data.whole[clause[:n]]
            return ReplyMatch(keyword, label)
    return None


def _strong_in(clause: Words, language: Language, cut: int = 0) -> str | None:
    """A strong opt-out phrase of ``language`` in ``clause``, neither blocked nor qualified
    there; with ``cut``, only one that starts before it and ends after it."""
    for phrase, label in language.strong.items():
        size = len(phrase)
        for start in range(len(clause) - size + 1):
            if clause[start : start + size] != phrase:
                continue
            if cut and not start < cut < start + size:
                continue
            before = clause[max(0, start - _BLOCKER_REACH) : start]
            after = clause[start + size :]
            if not _holds_any(before, language.blockers) and _only(after, language.tails):
                return label
    return None


def _polite_dropped(clause: Words, politeness: frozenset[Words]) -> Words:
    """The clause without its politeness words, longest first ("thank you" before "thank")."""
    longest = max((len(p) for p in politeness), default=0)
    kept: list[str] = []
    i = 0
    while i < len(clause):
        for size in range(min(longest, len(clause) - i), 0, -1):
            if clause[i : i + size] in politeness:
                i += size
                break
        else:
            kept.append(clause[i])
            i += 1
    return tuple(kept)


def _holds_any(words: Words, parts: frozenset[Words]) -> bool:
    return any(words[i : i + len(p)] == p for p in parts for i in range(len(words) - len(p) + 1))


def _only(words: Words, tails: frozenset[Words]) -> bool:
    """Whether ``words`` is nothing but tails, one after another."""
    if not words:
        return True
    return any(words[: len(t)] == t and _only(words[len(t) :], tails) for t in tails)
