"""The carrier keywords a reply may be: STOP and its synonyms opt out of texts, START opts back
in, HELP asks who is texting. Only a reply that is the keyword alone counts, the way carriers and
Twilio read them, so "Please stop texting me" is an ordinary reply."""

from __future__ import annotations

from typing import Literal

Keyword = Literal["stop", "start", "help"]

_KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"], "stop"
    ),
    **dict.fromkeys(["START", "UNSTOP", "YES"], "start"),
    **dict.fromkeys(["HELP", "INFO"], "help"),
}

# Phones and people add these: "Stop." and "STOP!" mean STOP.
_TRAILING = ".!?,;:"


def keyword_of(body: str) -> Keyword | None:
    word = body.strip()
    while word and (word[-1] in _TRAILING or word[-1].isspace()):
        word = word[:-1]
    return _KEYWORDS.get(word.upper())
