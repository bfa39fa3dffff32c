"""Consent changed by text, as the law now reads it: opt-outs kept as a keyed hash of the number
(never the number), a STOP that outlives anyone's later say-so, and the migration that converts
the plain numbers of before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from jobchat.auth.models import ServerSecret
from jobchat.db.engine import Database
from jobchat.db.migrate import alembic_config
from jobchat.sms.models import SmsOptOut
from jobchat.sms.optouts import KEY_NAME, opt_out_key
from tests.support import World, body, start
from tests.twilio_support import (
    INBOUND_PATH,
    TWILIO_CLIENT_WARNINGS,
    candidate_daytime_clock,
    inbound_sms_form,
    twilio,
    twilio_app_settings,
    webhook,
    worker,
)

NUMBER = "+14155550123"  # cand's number in the world

pytestmark = TWILIO_CLIENT_WARNINGS
__all__ = ["candidate_daytime_clock", "twilio", "twilio_app_settings", "worker"]


def text_in(client: TestClient, words: str, number: str = NUMBER) -> str:
    """Text ``words`` to our number; the TwiML answer."""
    r = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=number, body=words))
    assert r.status_code == 200, r.text
    return r.text


def consent(world: World, candidate: str = "cand") -> dict[str, Any]:
    return body(world["emp_admin"].get(f"/api/v1/candidates/{candidate}/sms-consent"), 200)


def opt_out_rows(db: Database) -> list[tuple[str, str | None]]:
    with db.read() as session:
        rows = session.execute(select(SmsOptOut.number_hash, SmsOptOut.detail)).all()
        return [(h, d) for h, d in rows]


# --- keyed hash -----------------------------------------------------------------------------------


def test_an_opt_out_keeps_the_keyed_hash_of_the_number_and_never_the_number(
    client: TestClient, world: World, db: Database
) -> None:
    text_in(client, "STOP")
    ((number_hash, _),) = opt_out_rows(db)
    with db.read() as session:
        assert number_hash == opt_out_key(session, NUMBER)
        key = session.get_one(ServerSecret, KEY_NAME).value
    assert len(number_hash) == 64 and NUMBER not in number_hash
    assert number_hash != opt_out_key_with("another key", NUMBER)  # keyed, not a plain hash
    assert key not in number_hash
    # Nothing of the number in any column, in any form a reader would recognise.
    with db.read() as session:
        dumped = " ".join(
            str(v) for row in session.execute(text("SELECT * FROM sms_opt_outs")) for v in row
        )
    for form in (NUMBER, NUMBER[1:], NUMBER[-10:], "415555"):
        assert form not in dumped
    assert consent(world)["number_opted_out_at"] is not None

    text_in(client, "START")
    assert opt_out_rows(db) == []
    assert consent(world)["number_opted_out_at"] is None


def opt_out_key_with(key: str, number: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()


def test_a_stop_still_wins_over_a_later_sms_consent_true_and_over_a_new_candidate(
    client: TestClient, world: World
) -> None:
    text_in(client, "STOP")
    answer = world.api.candidate("cand", "Carla Candidate", sms_consent=True)
    assert (answer["sms_consent"], answer["sms_number_opted_out"]) == (False, True)
    # Someone new given the number is covered too: the hash is looked up from their number.
    fresh = world.api.candidate("cand9", "Nia Newcomer", phone=NUMBER, sms_consent=True)
    assert (fresh["sms_consent"], fresh["sms_number_opted_out"]) == (False, True)
    r = world["emp_admin"].put("/api/v1/candidates/cand/sms-consent", {"consent": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "sms_number_opted_out"
    chat = start(world["emp_admin"], "application", application="app1")
    refused = world["emp_admin"].send(chat, "Interview at 10?", channel="sms")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "sms_opted_out"


def test_the_migration_converts_plain_numbers_to_their_keyed_hash_and_back(
    world: World, db: Database
) -> None:
    config = alembic_config(db.engine.url.render_as_string(hide_password=False))
    gone = "+14155550999"  # on nobody's record (an erased candidate's): lost on the way back
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0017")
            connection.execute(text("DELETE FROM server_secrets"))  # made by the upgrade
            for number in (NUMBER, gone):
                connection.execute(
                    text(
                        "INSERT INTO sms_opt_outs (number, created_at, detail)"
                        " VALUES (:n, :at, 'STOP')"
                    ),
                    {"n": number, "at": datetime(2026, 1, 1, tzinfo=UTC)},
                )
            command.upgrade(config, "0019")
        db.engine.dispose()
        with db.read() as session:
            expected = {opt_out_key(session, n) for n in (NUMBER, gone)}
        assert {h for h, _ in opt_out_rows(db)} == expected
        assert consent(world)["number_opted_out_at"] is not None

        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0017")
            back = connection.execute(text("SELECT number FROM sms_opt_outs")).scalars().all()
        assert back == [NUMBER]
    finally:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        db.engine.dispose()


@pytest.mark.parametrize("number", [NUMBER, "+33612345678"])
def test_the_key_is_made_once_and_the_hash_is_stable(db: Database, number: str) -> None:
    with db.write() as session:
        first = opt_out_key(session, number)
    with db.write() as session:
        assert opt_out_key(session, number) == first
        assert session.scalar(select(ServerSecret.name).where(ServerSecret.name == KEY_NAME))
