"""A page of the API written as JSON from plain data, for the hottest reads.

The inbox and history routes build each item as the plain data its API model serialises to
(its fields in the model's order, datetimes aware UTC) and write the page straight to JSON,
without a pydantic model per item and without FastAPI validating the page again
(tests/test_read_paths.py holds both byte for byte to the models' JSON).
"""

from __future__ import annotations

from typing import Any

import orjson

# An item (a conversation, member, message, delivery or attachment) as plain data: the JSON its
# API model serialises to.
Plain = dict[str, Any]


def page_json(items: list[Plain], next_cursor: object) -> bytes:
    """``{"items": ..., "next_cursor": ...}`` as the page's model writes it, byte for byte
    (pydantic writes an aware UTC datetime with a "Z", as ``OPT_UTC_Z`` does, and an enum as
    its value)."""
    return orjson.dumps({"items": items, "next_cursor": next_cursor}, option=orjson.OPT_UTC_Z)
