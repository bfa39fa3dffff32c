"""The search benchmark's data set: recruiting chatter drawn from a Zipf-distributed vocabulary.

Kept apart from bench_search.py so that the text model (which words exist, how often each is
drawn, which phrases are planted) can be read on its own. Everything is deterministic for a seed.
"""

from __future__ import annotations

import importlib
import random
import re
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any


def _words(text: str) -> list[str]:
    return text.split()


# fmt: off
# The most frequent words of English chat, roughly in order: they take the top of the ranking,
# as they do in real text, so most of a message's words are words the search ignores.
STOP = _words(
    "the to and i a you for of is in we it on that be with your are have this will at can "
    "as me my our please if not do so from by or an was all would just any there they let "
    "know get has been us what when about he she him her them their be but up out more no "
    "yes one also which then than into could should did were had how some its who may over "
    "very here only well after before am being because both each few most other such same too "
    "again further once off own why where while these those through during until"
)

RECRUITING = _words(
    "candidate interview offer contract visa application role position salary shift hospital "
    "clinic ward agency employer recruiter reference references documents passport registration "
    "licence license certificate exam test result results panel schedule scheduled rescheduled "
    "availability available start date notice period relocation housing flight flights onboarding "
    "orientation probation overtime allowance benefits pension insurance sponsorship permit "
    "medical checkup vaccination police clearance background check checks cv resume portfolio "
    "skills experience years degree diploma qualification qualifications training course mentor "
    "manager supervisor team department unit nurse nurses nursing midwife midwifery carer care "
    "caregiver physiotherapist pharmacist paramedic doctor surgeon dentist hygienist technician "
    "engineer electrician welder plumber machinist driver chef teacher accountant analyst "
    "developer software data site lab laboratory warehouse logistics construction hospitality "
    "accepted declined rejected shortlisted hired withdrawn pending approved signed unsigned "
    "submitted uploaded attached received reviewed confirmed cancelled postponed moved "
    "feedback assessment screening call video phone email message update status stage next step "
    "steps process timeline deadline urgent priority asap tomorrow today yesterday week weekend "
    "month morning afternoon evening night day days hours hour minutes time zone local "
    "contractual fulltime parttime permanent temporary locum bank night nights weekends rota "
    "roster handover patient patients residents elderly pediatric icu emergency theatre surgery "
    "english ielts oet osce nclex score band scores translation translated certified copy copies "
    "embassy consulate appointment biometrics stamp arrival airport pickup accommodation rent "
    "deposit bond bank account tax number address proof payslip payroll invoice rate hourly "
    "annual gross net bonus package cover covers covered letter letters"
)

GENERAL = _words(
    "thanks thank hello hi dear regards best kind sorry great good fine okay sure perfect noted "
    "understood happy glad hope hoping looking forward confirm confirming checking following "
    "send sending sent share sharing shared call calling called meet meeting met talk talked "
    "speak spoke discuss discussed ask asked asking answer answered reply replied wait waiting "
    "need needs needed want wanted like liked think thought see saw seen look looked find found "
    "give gave given take took taken make made work working worked help helped helping start "
    "started starting finish finished plan planned plans change changed changes arrange arranged "
    "book booked booking organise organised prepare prepared ready done still already soon later "
    "early late quick quickly new old first last second third final other another same different "
    "long short small large full part whole every everything something nothing anything someone "
    "everyone family home house city country office room address form forms list question "
    "questions issue issues problem problems concern concerns detail details information info "
    "note notes file files link links copy portal system online offline form signed cheers "
    "possible possibly probably maybe definitely really actually currently recently finally "
    "family children partner spouse school travel travelling trip ticket tickets luggage "
    "weather cold warm rain snow sunny holiday holidays leave sick unwell"
)

WEEKDAYS = _words("monday tuesday wednesday thursday friday saturday sunday")
MONTHS = _words(
    "january february march april may june july august september october november december"
)
NUMBERS = [str(n) for n in range(0, 61)] + ["100", "200", "500", "1000", "2024", "2025", "2026"]
FIRST = _words(
    "ada amir ana bea ben carla chen dan dara eli emma femi gus hana ivan iris jon kai lena luis "
    "maya mo nia noor omar pia raj rosa sam sara tess tom uma vik wen yara zoe zak ines otto "
    "priya arjun fatima yusuf grace joy john mary peter paul anna maria jose juan li wei mei "
    "kofi ama kwame ngozi chidi tunde aisha khalid layla hassan mateo lucia sofia diego elena"
)
LAST = _words(
    "adams baker chen diaz evans fischer garcia haddad ito jones khan lopez meyer nakamura "
    "okafor patel quinn rossi silva tanaka ueda vargas weber xu yilmaz zimmer novak mensah berg "
    "smith brown wilson taylor nguyen kim singh kumar ali ahmed santos reyes cruz mendoza "
    "osei boateng adeyemi eze kariuki otieno murphy kelly walsh byrne oconnor ryan"
)
CITIES = _words(
    "toronto sydney dublin berlin melbourne vancouver auckland leeds perth calgary manila cebu "
    "lagos nairobi accra delhi mumbai kerala chennai karachi lahore dubai doha amman cairo "
    "london manchester birmingham glasgow cork galway brisbane adelaide ottawa montreal"
)

# Pinned ranks (1-based) for the words the measured queries use, so that their frequencies are
# what the benchmark says they are: at rank 45 a word is in about 7% of messages, at rank 3,500
# in about 0.1%. Other words fill the remaining ranks in a seeded shuffle.
PINNED = {
    "interview": 45,
    "candidate": 38,
    "offer": 52,
    "contract": 60,
    "tuesday": 120,
    "visa": 150,
    "nurse": 80,
    "nursing": 160,
    "nurses": 420,
    "start": 70,
    "date": 110,
    "physiotherapist": 3500,
}

# Phrases planted in some messages (besides the chance adjacency of their words).
PHRASES = (
    "start date", "night shift", "visa sponsorship", "reference check", "signed contract",
    "relocation package", "police clearance", "notice period", "english test", "video call",
    "offer letter", "bank account", "flight tickets", "medical checkup", "registration number",
)
PHRASE_WEIGHTS = (8, 2, 2, 2, 2, 1, 1, 2, 1, 2, 2, 1, 1, 1, 1)
PHRASE_RATE = 0.03  # share of messages with a planted phrase ("start date" in ~1% of all)

SUBJECTS = (
    "About your application", "Interview invitation", "Your offer", "Documents needed",
    "Next steps", "Visa update", "Start date",
)
# fmt: on

VOCABULARY_SIZE = 5000
ZIPF_S = 1.0
MIN_WORDS, MAX_WORDS = 5, 60

_SYLLABLES = _words(
    "ka ro mi ta ne lo su ri va de po li ma be na so te ku do fa gi ha jo le mu no pe ra si tu "
    "ve wa ya zo bra cle dri fla gro kli pra sto tri vor lan mer tel dor sen kal pin"
)


def _pseudo_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    """Rare tail words (place and product names, typos, jargon in real chat): syllable strings."""
    out: list[str] = []
    while len(out) < n:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in taken:
            taken.add(word)
            out.append(word)
    return out


@dataclass
class Vocabulary:
    words: list[str]  # by rank, rank 1 first
    cum_weights: list[float]

    def rank(self, word: str) -> int:
        return self.words.index(word) + 1


def build_vocabulary(seed: int) -> Vocabulary:
    rng = random.Random(seed)
    seen: set[str] = set()
    stop = list(dict.fromkeys(STOP))
    seen.update(stop)
    content: list[str] = []
    for group in (RECRUITING, GENERAL, WEEKDAYS, MONTHS, NUMBERS, FIRST, LAST, CITIES):
        for w in group:
            if w not in seen and w not in PINNED:
                seen.add(w)
                content.append(w)
    seen.update(PINNED)
    rng.shuffle(content)
    free = VOCABULARY_SIZE - len(stop) - len(content) - len(PINNED)
    content += _pseudo_words(rng, free, seen)
    words: list[str | None] = [None] * VOCABULARY_SIZE
    for w, r in PINNED.items():
        words[r - 1] = w
    fill = iter(stop + content)
    for i in range(VOCABULARY_SIZE):
        if words[i] is None:
            words[i] = next(fill)
    ranked = [w for w in words if w is not None]
    assert len(ranked) == VOCABULARY_SIZE == len(set(ranked))
    weights = [1.0 / (r**ZIPF_S) for r in range(1, VOCABULARY_SIZE + 1)]
    return Vocabulary(ranked, list(accumulate(weights)))


@dataclass
class Query:
    """A measured query and how to count its matches in the generated text (by token)."""

    label: str
    q: str
    words: tuple[frozenset[int], ...]  # each word: the vocabulary indexes that match it
    phrase: bool = False
    skip: frozenset[int] = frozenset()  # words a phrase match steps over (the search's stop words)


# The Snowball English stemmer, as the search uses (untyped package, hence Any).
_stemmer: Any = importlib.import_module("snowballstemmer").stemmer("english")


def stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def make_query(
    vocab: Vocabulary, label: str, q: str, is_stop_word: Callable[[str], bool] = lambda w: False
) -> Query:
    """Word matches by English stem (any form of the word), ``x*`` by prefix of the word, and a
    quoted phrase by its words next to each other once stop words are left out."""
    phrase = q.startswith('"')
    terms = re.findall(r"[\w']+\*?", q.lower())
    stems = [stem(w) for w in vocab.words]
    words: list[frozenset[int]] = []
    for term in terms:
        if term.endswith("*"):
            prefix = term[:-1]
            words.append(frozenset(i for i, w in enumerate(vocab.words) if w.startswith(prefix)))
        else:
            target = stem(term)
            words.append(frozenset(i for i, s in enumerate(stems) if s == target))
    skip = frozenset(i for i, w in enumerate(vocab.words) if is_stop_word(w))
    return Query(label, q, tuple(words), phrase, skip)


def matches(query: Query, tokens: Sequence[int]) -> bool:
    if not query.phrase:
        present = set(tokens)
        return all(not present.isdisjoint(w) for w in query.words)
    if query.skip:
        tokens = [t for t in tokens if t not in query.skip]
    n = len(query.words)
    first = query.words[0]
    for i in range(len(tokens) - n + 1):
        if tokens[i] in first and all(tokens[i + k] in query.words[k] for k in range(1, n)):
            return True
    return False


@dataclass
class TextModel:
    vocab: Vocabulary
    rng: random.Random
    phrase_tokens: list[list[int]] = field(default_factory=list)
    phrase_cum: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        index = {w: i for i, w in enumerate(self.vocab.words)}
        self.phrase_tokens = [[index[w] for w in p.split()] for p in PHRASES]
        self.phrase_cum = list(accumulate(PHRASE_WEIGHTS))
        self._population = range(VOCABULARY_SIZE)

    def tokens(self) -> list[int]:
        rng = self.rng
        n = rng.randint(MIN_WORDS, MAX_WORDS)
        toks = rng.choices(self._population, cum_weights=self.vocab.cum_weights, k=n)
        if rng.random() < PHRASE_RATE:
            planted = self.phrase_tokens[
                bisect(self.phrase_cum, rng.random() * self.phrase_cum[-1])
            ]
            at = rng.randint(0, n)
            toks[at:at] = planted
        return toks

    def render(self, toks: Iterable[int]) -> str:
        """Sentences: a capital after each full stop, a comma or a question mark now and then."""
        rng, words = self.rng, self.vocab.words
        out: list[str] = []
        capital = True
        for t in toks:
            w = words[t]
            out.append(w.capitalize() if capital else w)
            r = rng.random()
            capital = r < 0.09
            if capital:
                out[-1] += "." if r < 0.075 else "?"
            elif r < 0.13:
                out[-1] += ","
        text = " ".join(out)
        return text if text.endswith((".", "?")) else text.rstrip(",") + "."


def bodies(model: TextModel, n: int, queries: Sequence[Query]) -> Iterator[tuple[str, list[bool]]]:
    """``n`` message bodies, each with which of ``queries`` it matches."""
    for _ in range(n):
        toks = model.tokens()
        yield model.render(toks), [matches(q, toks) for q in queries]
