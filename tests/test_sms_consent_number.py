"""SMS consent belongs to the number: a STOP from a number two candidates share opts out both,
START opts both back in, and a person's own STOP wins over an integration's or a staff member's
later opt-in, over a phone change, and over texts queued before it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.jobqueue.worker import Worker
from jobchat.sms.models import SmsOptOut
from jobchat.sms.optouts import opt_out_key
from tests.mail_support import drain
from tests.support import World, assert_error, body, sent, start
from tests.twilio_support import (
    INBOUND_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    candidate_daytime_clock,
    inbound_sms_form,
    twilio,
    twilio_app_settings,
    webhook,
    worker,
)

SHARED = "+14155550123"  # cand's number in the world; cand2 is given it too
OTHER = "+14155550188"

pytestmark = TWILIO_CLIENT_WARNINGS
# The fixtures: a Twilio stand-in, the app's settings pointing at it, the app's worker, and a
# clock at daytime for the candidate (texts at night are held: tests/test_sms_quiet_hours.py).
__all__ = ["candidate_daytime_clock", "twilio", "twilio_app_settings", "worker"]


@pytest.fixture
def chats(world: World) -> dict[str, int]:
    """cand and cand2 share a phone number, both consent, each has an application chat."""
    world.api.candidate("cand2", "Dan Candidate", phone=SHARED, sms_consent=True)
    return {
        "cand": start(world["emp_admin"], "application", application="app1"),
        "cand2": start(world["emp_admin"], "application", application="app2"),
    }


def text_in(client: TestClient, words: str, number: str = SHARED) -> None:
    r = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=number, body=words))
    assert r.status_code == 200, r.text


def text_out(world: World, chat: int, words: str = "Interview at 10?") -> Any:
    return world["emp_admin"].send(chat, words, channel="sms")


def consent(world: World, candidate: str) -> dict[str, Any]:
    # Employer staff see the candidates of their job; cand3 applied nowhere, tbb manages them.
    viewer = world["sp_in" if candidate == "cand3" else "emp_admin"]
    return body(viewer.get(f"/api/v1/candidates/{candidate}/sms-consent"), 200)


def ledger(world: World, candidate: str) -> list[tuple[bool, str, str | None]]:
    return [
        (h["consented"], h["source"], h["detail"]) for h in consent(world, candidate)["history"]
    ]


def test_stop_from_a_shared_number_opts_out_everyone_with_it_and_start_opts_them_back_in(
    client: TestClient, world: World, chats: dict[str, int]
) -> None:
    text_in(client, "STOP")
    for who in ("cand", "cand2"):
        shown = consent(world, who)
        assert shown["consent"] is False and shown["number_opted_out_at"] is not None
        assert ledger(world, who)[0] == (False, "keyword", "STOP")
        assert_error(text_out(world, chats[who]), 422, "sms_opted_out")

    text_in(client, "start")
    for who in ("cand", "cand2"):
        shown = consent(world, who)
        assert shown["consent"] is True and shown["number_opted_out_at"] is None
        assert ledger(world, who)[0] == (True, "keyword", "start")
        assert sent(text_out(world, chats[who]))["deliveries"][0]["status"] == "queued"


@pytest.mark.parametrize("word", ["UNSUBSCRIBE", "Cancel", "quit!"])
def test_every_opt_out_keyword_covers_the_number(
    client: TestClient, world: World, chats: dict[str, int], word: str
) -> None:
    text_in(client, word)
    assert [consent(world, who)["consent"] for who in ("cand", "cand2")] == [False, False]


def test_texts_queued_before_the_stop_do_not_go_out_after_it(
    client: TestClient, world: World, chats: dict[str, int], worker: Worker, twilio: TwilioServer
) -> None:
    queued = [sent(text_out(world, chats[who]))["id"] for who in ("cand", "cand2")]
    text_in(client, "STOP")
    drain(worker)
    assert twilio.requests == []
    for who, message_id in zip(("cand", "cand2"), queued, strict=True):
        items = body(world["emp_admin"].messages(chats[who]), 200)["items"]
        (delivery,) = next(m for m in items if m["id"] == message_id)["deliveries"]
        assert delivery["status"] == "failed"
        assert "opted out" in delivery["last_error"]


def test_the_ats_cannot_opt_in_a_number_that_texted_stop(
    client: TestClient, world: World, chats: dict[str, int]
) -> None:
    text_in(client, "STOP")
    r = world.api.integration.put(
        "/api/v1/candidates/cand2",
        {"name": "Dan Candidate", "email": "cand2@example.org", "sms_consent": True},
    )
    answer = body(r, 200)
    assert (answer["sms_consent"], answer["sms_number_opted_out"]) == (False, True)
    assert consent(world, "cand2")["consent"] is False
    assert_error(text_out(world, chats["cand2"]), 422, "sms_opted_out")

    # A new candidate with that number: created, not opted in, and the answer says why.
    r = world.api.integration.put(
        "/api/v1/candidates/cand3",
        {
            "name": "Eve",
            "email": "eve@example.org",
            "phone": SHARED,
            "sms_consent": True,
            "source_partner": "tbb",
        },
    )
    answer = body(r, 201)
    assert (answer["sms_consent"], answer["sms_number_opted_out"]) == (False, True)
    shown = consent(world, "cand3")
    assert (shown["consent"], shown["history"]) == (False, [])  # never opted in: nothing changed
    assert shown["number_opted_out_at"] is not None

    # Once the number texts START, the person's own word opts them in.
    text_in(client, "START")
    assert [consent(world, who)["consent"] for who in ("cand", "cand2", "cand3")] == [True] * 3
    answer = body(
        world.api.integration.put(
            "/api/v1/candidates/cand2",
            {"name": "Dan Candidate", "email": "cand2@example.org", "sms_consent": True},
        ),
        200,
    )
    assert (answer["sms_consent"], answer["sms_number_opted_out"]) == (True, False)


def test_a_candidate_given_an_opted_out_number_is_opted_out(
    client: TestClient, world: World
) -> None:
    world.api.candidate("cand2", "Dan Candidate", phone=OTHER, sms_consent=True)
    text_in(client, "STOP", number=SHARED)  # cand's number
    answer = world.api.candidate("cand2", "Dan Candidate", phone="(415) 555-0123")
    assert (answer["sms_consent"], answer["sms_number_opted_out"]) == (False, True)
    assert ledger(world, "cand2")[0][:2] == (False, "keyword")


def test_a_stop_from_a_number_nobody_has_yet_is_kept_for_whoever_gets_it(
    client: TestClient, world: World
) -> None:
    text_in(client, "STOP", number=OTHER)
    answer = world.api.candidate("cand9", "Newcomer", phone=OTHER, sms_consent=True)
    assert (answer["sms_consent"], answer["sms_number_opted_out"]) == (False, True)


def test_staff_cannot_opt_in_a_number_that_texted_stop_but_can_record_an_opt_out(
    client: TestClient, world: World, chats: dict[str, int]
) -> None:
    text_in(client, "STOP")
    path = "/api/v1/candidates/cand2/sms-consent"
    r = world["emp_admin"].put(path, {"consent": True, "note": "said yes on a call"})
    error = assert_error(r, 409, "sms_number_opted_out")
    assert "START" in error["message"]
    assert consent(world, "cand2")["consent"] is False

    text_in(client, "START")
    body(world["emp_admin"].put(path, {"consent": False, "note": "asked us to stop"}), 200)
    # Staff recording an opt-out of one candidate does not opt the number out.
    assert consent(world, "cand2")["number_opted_out_at"] is None
    assert consent(world, "cand")["consent"] is True


def test_a_number_opted_out_before_consent_followed_it_still_stops_texts(
    world: World,
    chats: dict[str, int],
    db: Database,
    worker: Worker,
    twilio: TwilioServer,
    clock: FrozenClock,
) -> None:
    """A database migrated from before: the number's opt-out carried over, but a candidate
    sharing it still shows consent. The send path and the worker check the number itself."""
    queued = sent(text_out(world, chats["cand2"]))
    with db.write() as session:
        key = opt_out_key(session, SHARED)
        session.add(SmsOptOut(number_hash=key, created_at=clock.now(), detail="carried over"))
    drain(worker)
    assert twilio.requests == []
    items = body(world["emp_admin"].messages(chats["cand2"]), 200)["items"]
    (delivery,) = next(m for m in items if m["id"] == queued["id"])["deliveries"]
    assert delivery["status"] == "failed"

    with db.write() as session:
        session.execute(update(User).where(User.ext_id == "cand2").values(sms_consent=True))
    assert_error(text_out(world, chats["cand2"]), 422, "sms_opted_out")
    # The next upsert saying consent puts it right, and the ledger says why.
    answer = world.api.candidate("cand2", "Dan Candidate", sms_consent=True)
    assert (answer["sms_consent"], answer["sms_number_opted_out"]) == (False, True)
    consented, source, detail = ledger(world, "cand2")[0]
    assert (consented, source) == (False, "ats") and detail is not None and "STOP" in detail
