"""How JSON values become text: the JSON columns (events, jobs, webhook deliveries...) and the
events a send writes for itself and hands the real-time stream.

A send writes its events' data and extras as JSON text: with the standard library's encoder
that was about 50 us a value on the fourteenth stop's machine (an event's extras name every
member), with orjson about 6 (bench/bench_instructions.py --sends counts what it saves). orjson
writes the same JSON values in a compact form (no spaces; characters outside ASCII as
themselves, not as ``\\uXXXX`` escapes), which every reader parses to what it parsed before. A
float NaN, which is not JSON (PostgreSQL's json type refuses it), is written as null.

Where orjson refuses a value that the standard library writes (a string with a lone
surrogate, an integer past 64 bits), the standard library writes it, so nothing that was
written before fails now. Reading stays the standard library's: orjson reads an integer past
64 bits as a float. Only ``dumps_and_reread`` reads with orjson, and only text orjson wrote,
which holds no such integer.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Dictionary keys that are not strings (events' extras are keyed by user id) are written as
# strings, as the standard library writes them.
_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """``value`` as JSON text."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def dumps_and_reread(value: Any) -> tuple[str, Any]:
    """``value`` as JSON text, and that text read back: the value as any reader of the column
    will have it (keys as strings, NaN as None), sharing nothing with ``value``."""
    try:
        raw = orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        text = json.dumps(value)
        return text, json.loads(text)
    return raw.decode(), orjson.loads(raw)
