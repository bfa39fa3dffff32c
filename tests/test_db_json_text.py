"""JSON columns are written by orjson (``jobchat.db.json_text``): the values read back are the
values written, including those orjson refuses and the standard library takes, on both
databases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Text, cast, select

from jobchat.clock import FrozenClock
from jobchat.db import json_text
from jobchat.db.engine import Database
from jobchat.jobqueue.actions import enqueue
from jobchat.jobqueue.models import QueuedJob

VALUES: list[Any] = [
    {"text": "Grüße, 你好 👋", "quote": 'say "hi"\n\\', "n": -3, "f": 0.1, "none": None},
    [1, [2, {"three": [True, False]}]],
    # A lone surrogate: orjson refuses it, the standard library writes it escaped.
    {"lone": "\ud800"},
    # Past 64 bits: orjson refuses it too.
    {"big": 2**70},
]


@pytest.mark.parametrize("value", VALUES)
def test_a_json_column_reads_back_what_was_written(
    db: Database, clock: FrozenClock, value: Any
) -> None:
    if not db.is_sqlite and "lone" in value:
        pytest.skip("PostgreSQL's json type refuses an escaped lone surrogate")
    with db.write() as session:
        job = enqueue(session, "json-text-test", {"value": value}, now=clock.now())
        session.flush()
        job_id = job.id
    with db.read() as session:
        read = session.scalar(select(QueuedJob.payload).where(QueuedJob.id == job_id))
    assert read == {"value": value}


def test_json_columns_are_written_by_orjson(db: Database, clock: FrozenClock) -> None:
    # PostgreSQL's json type keeps the text it was given, as SQLite does.
    with db.write() as session:
        job = enqueue(session, "json-text-test", {"value": ["é", 1]}, now=clock.now())
        session.flush()
        job_id = job.id
    with db.read() as session:
        text = session.scalar(select(cast(QueuedJob.payload, Text)).where(QueuedJob.id == job_id))
    assert text == '{"value":["é",1]}'


def test_keys_that_are_not_strings_are_written_as_the_standard_library_writes_them() -> None:
    value = {7: {"unread": {"conversation": 1}}, 12: None}
    assert json.loads(json_text.dumps(value)) == json.loads(json.dumps(value))
    assert json.loads(json_text.dumps(value)) == {"7": {"unread": {"conversation": 1}}, "12": None}


def test_what_neither_encoder_takes_is_still_refused() -> None:
    with pytest.raises(TypeError):
        json_text.dumps({"bytes": b"x"})


def test_text_is_compact_and_keeps_characters_outside_ascii() -> None:
    assert json_text.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'


@pytest.mark.parametrize("value", [*VALUES, {7: {"nan": float("nan")}}])
def test_dumps_and_reread_gives_the_text_and_what_a_reader_of_it_gets(value: Any) -> None:
    text, reread = json_text.dumps_and_reread(value)
    assert text == json_text.dumps(value)
    assert reread == json.loads(text)
    if "big" in value:
        assert reread["big"] == 2**70 and isinstance(reread["big"], int)  # not orjson's float


def test_dumps_and_reread_shares_nothing_with_the_value() -> None:
    value = {"members": [{"id": 1}], "data": {"conversation": {"title": "Nurse"}}}
    _, reread = json_text.dumps_and_reread(value)
    value["members"][0]["id"] = 2  # type: ignore[index]
    value["data"]["conversation"]["title"] = "changed later"  # type: ignore[index]
    assert reread == {"members": [{"id": 1}], "data": {"conversation": {"title": "Nurse"}}}
