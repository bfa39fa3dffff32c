"""Which replies are carrier keywords: the keyword alone, in any case, with the whitespace and
trailing punctuation phones and people add; never a keyword inside a sentence."""

from __future__ import annotations

import pytest

from jobchat.sms.keywords import keyword_of


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
)
def test_stop_and_its_synonyms_opt_out(word: str) -> None:
    assert keyword_of(word) == "stop"


@pytest.mark.parametrize("word", ["START", "UNSTOP", "YES"])
def test_start_and_its_synonyms_opt_back_in(word: str) -> None:
    assert keyword_of(word) == "start"


@pytest.mark.parametrize("word", ["HELP", "INFO"])
def test_help_and_info_ask_for_help(word: str) -> None:
    assert keyword_of(word) == "help"


@pytest.mark.parametrize(
    "body",
    ["stop", "Stop", "sToP", "  stop  ", "\nSTOP\n", "\tStop \r\n", "Stop.", "STOP!", "stop!!!"],
)
def test_any_case_surrounding_whitespace_and_trailing_punctuation_are_tolerated(
    body: str,
) -> None:
    assert keyword_of(body) == "stop"


def test_other_trailing_punctuation_and_space_before_it() -> None:
    assert keyword_of("Help?") == "help"
    assert keyword_of("yes , ") == "start"
    assert keyword_of("Unstop. ") == "start"


@pytest.mark.parametrize(
    "body",
    [
        "Please stop texting me",
        "stop it",
        "STOP STOP",
        "stop all",  # STOPALL is a keyword, two words are not
        "opt out",
        "yes please",
        "Yes, I can come on Tuesday",
        "I need help",
        "¿stop",  # punctuation is only forgiven at the end
        "stopped",
        "",
        "   ",
        "!",
    ],
)
def test_anything_but_the_keyword_alone_is_an_ordinary_reply(body: str) -> None:
    assert keyword_of(body) is None
