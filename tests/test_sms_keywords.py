"""Which replies are carrier keywords: the keyword, in any case, with the whitespace, punctuation
and politeness phones and people add; never a keyword inside a sentence."""

from __future__ import annotations

import pytest

from jobchat.sms.keywords import keyword_of

pytestmark = pytest.mark.no_database


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
    ("body", "keyword"),
    [
        # Once ordinary replies; opt-outs in the person's own words since issue 19 (more in
        # tests/test_sms_consent_phrases.py).
        ("Please stop texting me", "stop"),
        ("stop it", "stop"),
        ("STOP STOP", "stop"),
        ("stop all", "stop"),
        ("opt out", "stop"),
        ("¿stop", "stop"),
        ("yes please", "start"),  # politeness is dropped
    ],
)
def test_a_keyword_said_in_a_few_more_words(body: str, keyword: str) -> None:
    assert keyword_of(body) == keyword


@pytest.mark.parametrize(
    "body",
    ["Yes, I can come on Tuesday", "I need help", "stopped", "stop the car", "", "   ", "!"],
)
def test_anything_else_is_an_ordinary_reply(body: str) -> None:
    assert keyword_of(body) is None
