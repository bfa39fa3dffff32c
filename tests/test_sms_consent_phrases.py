"""Opt-outs in the person's own words, opt-ins and help, in every language of the data file:
every phrase listed there is tested here (the parameters are read from the file itself), and so
is a list of replies that only look like an opt-out and must stay ordinary replies."""

from __future__ import annotations

import tomllib
import unicodedata
from pathlib import Path

import pytest

from jobchat.sms.keywords import keyword_of, match_reply
from jobchat.sms.phrases import expand, parse, phrases, words

pytestmark = pytest.mark.no_database

DATA = phrases()
ROOT = Path(__file__).resolve().parent.parent


def listed(section: str) -> list[tuple[str, str]]:
    """(language, phrase) for every phrase of ``section`` in the data file."""
    return [(lang, phrase) for lang, pattern in DATA.listed[section] for phrase in expand(pattern)]


def ascii_only(text: str) -> str:
    """As typed on a phone without accents: "arrêter" -> "arreter"."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def inside(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    return any(whole[i : i + len(part)] == part for i in range(len(whole) - len(part) + 1))


def ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{lang}:{phrase}" for lang, phrase in cases]


def test_the_data_file_has_the_six_languages_and_every_section() -> None:
    assert [lang.code for lang in DATA.languages] == ["en", "es", "fr", "pt", "de", "it"]
    for section in ("opt_out", "opt_out_strong", "opt_in", "help"):
        langs = {lang for lang, _ in DATA.listed[section]}
        assert {"en", "es", "fr", "pt", "de", "it"} <= langs, section


def test_the_data_file_ships_with_the_package() -> None:
    """An installed wheel reads it with importlib.resources: pyproject's package-data lists it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "sms/phrases.toml" in config["tool"]["setuptools"]["package-data"]["jobchat"]


OPT_OUT = listed("opt_out")


@pytest.mark.parametrize(("lang", "phrase"), OPT_OUT, ids=ids(OPT_OUT))
def test_an_opt_out_phrase_as_the_whole_reply_opts_out(lang: str, phrase: str) -> None:
    for reply in (
        phrase,
        phrase.upper(),
        ascii_only(phrase),
        f"{phrase.capitalize()}!",
        f" {phrase}. ",
    ):
        assert keyword_of(reply) == "stop", reply
    # The politeness of its language, before or after.
    polite = {
        "en": "please",
        "es": "por favor",
        "fr": "s'il vous plaît",
        "pt": "por favor",
        "de": "bitte",
        "it": "per favore",
        "carrier": "thanks",
    }[lang]
    assert keyword_of(f"{phrase} {polite}") == "stop"
    assert keyword_of(f"{polite.capitalize()}, {phrase}!!") == "stop"


STRONG = listed("opt_out_strong")


@pytest.mark.parametrize(("lang", "phrase"), STRONG, ids=ids(STRONG))
def test_a_strong_opt_out_phrase_opts_out_even_inside_a_longer_reply(
    lang: str, phrase: str
) -> None:
    found = match_reply(phrase)
    assert found is not None and found.keyword == "stop"
    assert found.phrase  # the phrase of the file, kept as the reason: not the reply
    for reply in (
        f"Hello. {phrase.capitalize()}.",
        f"I got the job elsewhere, {phrase}!",
        f"{phrase.upper()} 😡",
        ascii_only(phrase),
    ):
        assert keyword_of(reply) == "stop", reply
    (tail, *_) = sorted(
        " ".join(t) for t in next(lng for lng in DATA.languages if lng.code == lang).tails
    )
    assert keyword_of(f"{phrase} {tail}") == "stop"


@pytest.mark.parametrize(("lang", "phrase"), STRONG, ids=ids(STRONG))
def test_a_strong_phrase_negated_or_qualified_is_an_ordinary_reply(lang: str, phrase: str) -> None:
    negation = {"en": "don't", "es": "no", "fr": "si", "pt": "não", "de": "nicht", "it": "non"}
    condition = {
        "en": "if you",
        "es": "si",
        "fr": "pourquoi",
        "pt": "se",
        "de": "warum",
        "it": "se",
    }
    for reply in (f"{negation[lang]} {phrase}", f"{condition[lang]} {phrase}"):
        found = match_reply(reply)
        # Unless a strong phrase inside this one stands beyond the blocker's reach: "nicht
        # schreiben Sie mir | keine Nachrichten mehr".
        assert found is None or inside(words(found.phrase), words(phrase)[1:]), reply
    # Followed, in the same clause, by what makes it about something else.
    assert keyword_of(f"{phrase} 9am 10am tuesday") is None


OPT_IN = listed("opt_in")


@pytest.mark.parametrize(("lang", "phrase"), OPT_IN, ids=ids(OPT_IN))
def test_an_opt_in_phrase_as_the_whole_reply_opts_back_in(lang: str, phrase: str) -> None:
    for reply in (phrase, phrase.upper(), ascii_only(phrase), f"{phrase}!"):
        assert keyword_of(reply) == "start", reply
    assert keyword_of(f"I said {phrase} at the interview") is None


HELP = listed("help")


@pytest.mark.parametrize(("lang", "phrase"), HELP, ids=ids(HELP))
def test_a_help_phrase_as_the_whole_reply_asks_for_help(lang: str, phrase: str) -> None:
    for reply in (phrase, phrase.upper(), ascii_only(phrase), f"{phrase}?"):
        assert keyword_of(reply) == "help", reply
    assert keyword_of(f"can you send the {phrase} about parking on Tuesday") is None


# Replies that only look like an opt-out (or an opt-in, or help): an ordinary reply each, for
# the recruiter to read. Not taken from the data file: the rules must hold for what they did not
# list.
FALSE_POSITIVES = [
    "don't stop the process",
    "Please don't stop the process, I'm still interested",
    "stop by tomorrow at 3",
    "can we stop by the office",
    "I'll stop at the station",
    "unstoppable",
    "Stopped by yesterday, nobody was there",
    "Is the interview still on? Or should I stop preparing",
    "no more questions, thanks",
    "No more questions from me!",
    # Ambiguous, decided: asks to be moved from one slot, not to get no texts at all. A person
    # reads it (and may record an opt-out), rather than the candidate being silenced.
    "remove me from the 9am slot",
    "Can you remove me from the Tuesday shift list?",
    "stop texting me at 6am please, I work nights",
    "Don't stop texting me, it's the best way to reach me",
    "Why did you stop texting me?",
    "If you stop texting me I'll miss the interview",
    "My old boss won't stop texting me lol",
    "I have no more messages to send you",
    "There will be no more messages?",
    "don't text me the address, email it",
    "cancel my interview",
    "Could you end the call earlier tomorrow?",
    "I want to quit my current job",
    "parar en la estación a las 3",
    "No dejen de escribirme, por favor",
    "Si dejan de escribirme no sabré la hora",
    "Je passerai au bureau, arrêtez-vous au feu",
    "pourquoi arrêtez-vous de m'écrire ?",
    "Não parem de me mandar mensagens",
    "Warum hören Sie auf mir zu schreiben?",
    "Non smettete di scrivermi",
    "yes I can come on Tuesday",
    "start date is Monday?",
    "I need help finding the office",
    "info about parking?",
    "STOPPING by at noon",
    "Stop! I meant Tuesday not Monday",
    "Stop texting me lol jk",
    "Why won't you stop texting me",
    "Did I say stop texting me?",
    "Stop texting me on weekends",
    "please remove me from the interview list",
    "Cancelar la entrevista",
    "End of the day works",
    "The bus stop is near",
    "nonstop",
    "Help me understand the offer",
    "Please don't stop sending me updates",
    "stop sending texts before 9am please",
    "I will stop by your office tomorrow",
    "Please remove the old resume from my profile",
    "I had to cancel, can we reschedule?",
    "No more than 30 minutes away",
    "Should I stop applying elsewhere?",
    "I'd like to stop by on Monday",
    "I no longer wish to relocate",
    "",
    "   ",
    "🙏",
    "!!!",
]


@pytest.mark.parametrize("reply", FALSE_POSITIVES)
def test_a_reply_that_only_looks_like_one_is_an_ordinary_reply(reply: str) -> None:
    assert match_reply(reply) is None


@pytest.mark.parametrize(
    ("reply", "keyword"),
    [
        ("Please stop texting me", "stop"),
        ("Hi, stop texting me. I found a job.", "stop"),
        ("No, stop texting me", "stop"),
        ("stop stop stop", "stop"),
        ("Stop. Help", "stop"),  # differing keywords: stopping wins
        ("STOP 🛑", "stop"),
        ("\uff33\uff54\uff4f\uff50", "stop"),  # full-width, as some keyboards type it (NFKC)
        ("stop\u2019", "stop"),
        ("DON\u2019T TEXT ME ANYMORE", "stop"),
        ("dont text me anymore", "stop"),
        ("please unsubscribe me, thank you", "stop"),
        ("Por favor, deja de enviarme mensajes", "stop"),
        ("ne m\u2019\u00e9crivez plus, merci", "stop"),
        ("Hören Sie auf, mir zu schreiben", "stop"),  # the comma German puts in the phrase
        ("wrong number, stop", "stop"),
        ("Wrong number", "stop"),  # not the candidate's phone
        ("Stop sending me these messages", "stop"),
        ("I don't want any more texts from you", "stop"),
        ("Unsubscribe me from this list", "stop"),
        ("do not text this number again", "stop"),
        ("no more msgs", "stop"),
        ("Stop these texts", "stop"),
        ("I'd like to unsubscribe", "stop"),
        ("I no longer wish to receive these texts", "stop"),
        ("Please stop sending texts", "stop"),
        ("stop sending texts to this number", "stop"),
        ("please stop texting this number", "stop"),
        ("Remove this number", "stop"),
        ("cancel texts", "stop"),
        ("I want to stop receiving these messages", "stop"),
        ("ya no quiero recibir mensajes", "stop"),
        ("basta ya", "stop"),
        ("não quero mais receber mensagens", "stop"),
        ("Desinscrever-me, por favor", "stop"),
        ("Hilfe", "help"),
        ("Help!", "help"),
        ("start again please", "start"),
        ("yes please", "start"),
    ],
)
def test_replies_as_people_write_them(reply: str, keyword: str) -> None:
    assert keyword_of(reply) == keyword


def test_a_phrase_meaning_two_things_or_holding_a_politeness_word_is_refused() -> None:
    base = {"carrier": {"opt_out": ["STOP"], "opt_in": ["START"], "help": ["HELP"]}}
    with pytest.raises(ValueError, match="both"):
        parse({**base, "languages": {"en": {"opt_in": ["stop"]}}})
    with pytest.raises(ValueError, match="politeness"):
        parse({**base, "languages": {"en": {"opt_out": ["stop please"], "politeness": ["please"]}}})
    assert words("Ne m'écrivez PLUS") == ("ne", "mecrivez", "plus")
    assert expand("(a|b) c( d|)") == ["a c d", "a c", "b c d", "b c"]
