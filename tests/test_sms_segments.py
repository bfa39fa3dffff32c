"""What a text costs in SMS segments: the GSM 03.38 alphabet as it is, UCS-2 for everything
else, and the split that never cuts an escaped character or a surrogate pair in two."""

from __future__ import annotations

import pytest

from jobchat.sms.segments import GSM_BASIC, GSM_EXTENSION, Segments, count_segments

EURO = "€"  # GSM-7 extension table: two septets
GRIN = "\N{GRINNING FACE}"  # outside the BMP: a surrogate pair, two UTF-16 units


def test_an_empty_body_is_no_segment() -> None:
    assert count_segments("") == Segments("GSM-7", 0, 0, 160)


def test_160_gsm_characters_are_one_segment_and_161_are_two_of_153() -> None:
    assert count_segments("a" * 160) == Segments("GSM-7", 160, 1, 160)
    assert count_segments("a" * 161) == Segments("GSM-7", 161, 2, 153)


def test_a_multipart_gsm_text_holds_153_septets_a_segment() -> None:
    assert count_segments("a" * 306) == Segments("GSM-7", 306, 2, 153)
    assert count_segments("a" * 307) == Segments("GSM-7", 307, 3, 153)


def test_extension_characters_count_two_septets() -> None:
    assert count_segments("^{}\\[~]|" + EURO + "\f") == Segments("GSM-7", 20, 1, 160)
    assert count_segments("a" * 158 + EURO) == Segments("GSM-7", 160, 1, 160)
    assert count_segments("a" * 159 + EURO) == Segments("GSM-7", 161, 2, 153)


def test_an_extension_character_is_not_split_across_segments() -> None:
    # 306 septets would fill two segments exactly, but the euro's escape would be the last
    # septet of the first: the euro moves whole to the second, and the last "a" to a third.
    assert count_segments("a" * 152 + EURO + "a" * 152) == Segments("GSM-7", 306, 3, 153)
    # Where the escape and its character fit, nothing moves.
    assert count_segments("a" * 151 + EURO + "a" * 153) == Segments("GSM-7", 306, 2, 153)


def test_the_basic_set_and_the_extension_table_are_gsm_03_38() -> None:
    assert len(GSM_BASIC) == 127  # 128 code points less the escape
    assert len(GSM_EXTENSION) == 10
    assert "\x1b" not in GSM_BASIC
    for text in ["@£$¥èéùìòÇ\nØø\rÅå", "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ", "¤¡§¿ÄÖÑÜäöñüà", "Hello, world!"]:
        assert count_segments(text).encoding == "GSM-7", text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("café", Segments("GSM-7", 4, 1, 160)),  # é is in the basic set
        ("fête", Segments("UCS-2", 4, 1, 70)),  # ê is not
        ("é" * 160, Segments("GSM-7", 160, 1, 160)),
        ("`", Segments("UCS-2", 1, 1, 70)),  # the backtick is not GSM either
        ("Straße", Segments("GSM-7", 6, 1, 160)),
    ],
)
def test_accented_letters_follow_the_table(body: str, expected: Segments) -> None:
    assert count_segments(body) == expected


def test_turkish_and_polish_letters_make_the_whole_text_ucs2() -> None:
    # The dotless i (U+0131) is Turkish, on purpose.
    assert count_segments("Görüşme yarın saat 10'da, İstanbul ofisinde.") == Segments(  # noqa: RUF001
        "UCS-2", 44, 1, 70
    )
    assert count_segments("Zażółć gęślą jaźń") == Segments("UCS-2", 17, 1, 70)
    # One such letter in a long GSM text: 100 characters, now two UCS-2 segments.
    assert count_segments("a" * 99 + "ş") == Segments("UCS-2", 100, 2, 67)


def test_ucs2_holds_70_units_in_one_segment_and_67_a_segment_beyond() -> None:
    assert count_segments("ê" * 70) == Segments("UCS-2", 70, 1, 70)
    assert count_segments("ê" * 71) == Segments("UCS-2", 71, 2, 67)
    assert count_segments("ê" * 134) == Segments("UCS-2", 134, 2, 67)
    assert count_segments("ê" * 135) == Segments("UCS-2", 135, 3, 67)


def test_an_emoji_is_two_units() -> None:
    assert count_segments("Hi " + GRIN) == Segments("UCS-2", 5, 1, 70)
    assert count_segments(GRIN * 35) == Segments("UCS-2", 70, 1, 70)
    assert count_segments(GRIN * 36) == Segments("UCS-2", 72, 2, 67)


def test_a_surrogate_pair_is_not_split_across_segments() -> None:
    # 134 units would fill two segments exactly, but the emoji would straddle the 67-unit line.
    assert count_segments("a" * 66 + GRIN + "a" * 66) == Segments("UCS-2", 134, 3, 67)
    assert count_segments("a" * 65 + GRIN + "a" * 67) == Segments("UCS-2", 134, 2, 67)
    # 67 emoji: 33 whole ones to a segment (66 units), so 3 segments where 134/67 says 2.
    assert count_segments(GRIN * 67) == Segments("UCS-2", 134, 3, 67)


def test_1600_characters_the_longest_twilio_takes() -> None:
    assert count_segments("a" * 1600) == Segments("GSM-7", 1600, 11, 153)
    assert count_segments("ê" * 1600) == Segments("UCS-2", 1600, 24, 67)
    assert count_segments(GRIN * 800) == Segments("UCS-2", 1600, 25, 67)
