"""How many SMS segments a text costs: GSM-7 when every character is in the GSM 03.38 alphabet,
UCS-2 as soon as one is not, and fewer characters per segment once it has to be split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jobchat.inputs import fold_controls

# GSM 03.38 basic character set, one septet each, a row of the table (16 code points) per line;
# 0x1B, the escape into the extension table, is left out of its row.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table: an escape septet and then the character, so two septets each.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

# A text of up to this many units goes as one SMS. A longer one is split, and each part gives up
# room to the header (UDH) that tells the phone how to put the parts back together.
_SINGLE = {"GSM-7": 160, "UCS-2": 70}
_MULTIPART = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class Segments:
    encoding: Literal["GSM-7", "UCS-2"]
    # Length in the encoding's units: GSM-7 septets (an extension character counts 2), UCS-2
    # UTF-16 code units (a character outside the BMP, such as an emoji, counts 2).
    characters: int
    segments: int  # 0 for an empty body
    per_segment: int  # 160 or 153 (GSM-7, single or multipart), 70 or 67 (UCS-2)


def count_segments(body: str) -> Segments:
    encoding: Literal["GSM-7", "UCS-2"]
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in body):
        encoding = "GSM-7"
        units = [2 if c in GSM_EXTENSION else 1 for c in body]
    else:
        encoding = "UCS-2"
        units = [2 if ord(c) > 0xFFFF else 1 for c in body]  # a surrogate pair in UTF-16
    total = sum(units)
    if total <= _SINGLE[encoding]:
        return Segments(encoding, total, 1 if total else 0, _SINGLE[encoding])
    per_segment = _MULTIPART[encoding]
    return Segments(encoding, total, _packed(units, per_segment), per_segment)


def _packed(units: list[int], per_segment: int) -> int:
    """Segments needed when no character may be cut in two: an escape septet must stay with its
    character and a high surrogate with its low one, so a character that does not fit in what is
    left of a segment starts the next (the few units left over go unused)."""
    segments, used = 1, 0
    for size in units:
        if used + size > per_segment:
            segments, used = segments + 1, 0
        used += size
    return segments


_ELLIPSIS = "..."  # GSM-7, unlike "…", which would make the whole text UCS-2


def shorten(value: str, limit: int) -> str:
    """A name or phrase on one line (control characters folded, runs of space as one), cut to
    ``limit`` characters with "..." where it was cut, for a text of ours."""
    value = " ".join(fold_controls(value).split())
    if len(value) <= limit:
        return value
    return value[: max(limit - len(_ELLIPSIS), 1)].rstrip() + _ELLIPSIS
