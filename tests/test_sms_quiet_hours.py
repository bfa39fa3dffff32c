"""SMS quiet hours: a text to a candidate in their night (JOBCHAT_SMS_QUIET_HOURS, default
21:00-08:00, in their time zone or else their number's) is held, shown as held with its
``until``, and sent by the jobs worker when their morning comes, once; the window is looked at
again then; a deletion cancels it and a STOP fails it; the notification text keeps the same
window; the thread tells staff. On SQLite and PostgreSQL, with the frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from jobchat.app import create_app
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import alembic_config
from jobchat.jobqueue.worker import Worker
from tests.mail_support import drain, worker_for
from tests.support import World, body
from tests.twilio_support import (
    INBOUND_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    inbound_sms_form,
    past_intro,
    twilio,
    twilio_settings,
    webhook,
    worker,
)
from tests.web_support import Browser

pytestmark = TWILIO_CLIENT_WARNINGS
__all__ = ["twilio", "worker"]  # the Twilio stand-in, the app's worker to drive by hand

LA_PHONE = "+14155550123"  # the world's candidate: San Francisco, America/Los_Angeles only
DEFAULT = "21:00-08:00"


def utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


@pytest.fixture
def window(request: pytest.FixtureRequest) -> str:
    """JOBCHAT_SMS_QUIET_HOURS for the test (parametrize it indirectly to change it)."""
    return str(getattr(request, "param", DEFAULT))


@pytest.fixture(name="settings")
def quiet_settings(settings: Settings, twilio: TwilioServer, window: str) -> Settings:
    return twilio_settings(settings, twilio).model_copy(update={"sms_quiet_hours": window})


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def at(clock: FrozenClock, stamp: str) -> None:
    """Move the frozen clock forward to ``stamp`` (UTC)."""
    gap = (utc(stamp) - clock.now()).total_seconds()
    assert gap >= 0, "the clock only moves forward"
    clock.advance(seconds=gap)


def text_at(world: World, clock: FrozenClock, chat: int, stamp: str, words: str) -> int:
    at(clock, stamp)
    return int(body(world["emp_team"].send(chat, words, channel="sms"), 201)["id"])


def delivery(world: World, chat: int, message_id: int) -> dict[str, Any]:
    items = body(world["emp_team"].messages(chat), 200)["items"]
    (message,) = [m for m in items if m["id"] == message_id]
    (only,) = message["deliveries"]
    return dict(only)


def held_until(world: World, chat: int, message_id: int) -> datetime:
    shown = delivery(world, chat, message_id)
    assert shown["status"] == "held", shown
    return datetime.fromisoformat(shown["until"])


def received(twilio: TwilioServer, words: str) -> int:
    return sum(1 for m in twilio.messages if past_intro(str(m["body"])) == words)


# --- held, then sent at the candidate's 08:00 -----------------------------------------------------


def test_a_text_at_2230_local_is_held_until_0800_local_and_sent_then_once(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    # 22:30 in Los Angeles (PST, UTC-8) on Monday 5 January.
    sent = body(_send_at(world, clock, chat, "2026-01-06T06:30:00", "See you tomorrow?"), 201)
    (answered,) = sent["deliveries"]
    assert answered["status"] == "held"
    assert datetime.fromisoformat(answered["until"]) == utc("2026-01-06T16:00:00")
    assert held_until(world, chat, sent["id"]) == utc("2026-01-06T16:00:00")
    drain(worker)
    at(clock, "2026-01-06T15:59:59")
    drain(worker)
    assert twilio.requests == []
    assert delivery(world, chat, sent["id"])["status"] == "held"

    at(clock, "2026-01-06T16:00:00")  # 08:00 in Los Angeles
    drain(worker)
    assert received(twilio, "See you tomorrow?") == 1
    assert twilio.messages[0]["to"] == LA_PHONE
    shown = delivery(world, chat, sent["id"])
    assert (shown["status"], shown["until"], shown["attempts"]) == ("sent", None, 1)
    clock.advance(days=1)
    drain(worker)
    assert len(twilio.requests) == 1


def _send_at(world: World, clock: FrozenClock, chat: int, stamp: str, words: str) -> Any:
    at(clock, stamp)
    return world["emp_team"].send(chat, words, channel="sms")


def test_a_text_in_the_day_goes_at_once(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    message = text_at(world, clock, chat, "2026-01-05T20:30:00", "Lunch?")  # 12:30 PST
    assert delivery(world, chat, message)["status"] == "queued"
    drain(worker)
    assert received(twilio, "Lunch?") == 1
    assert delivery(world, chat, message)["until"] is None


# --- whose night: the ATS's zone, else the number's -----------------------------------------------


@pytest.mark.parametrize(
    ("phone", "zone", "sent_at", "until"),
    [
        # The ATS gave Berlin: 22:30 there, though 13:30 where the number is.
        (LA_PHONE, "Europe/Berlin", "2026-01-05T21:30:00", "2026-01-06T07:00:00"),
        # A UK mobile: Europe/London, UTC in January.
        ("+447911123456", None, "2026-01-05T22:30:00", "2026-01-06T08:00:00"),
        # A New York number: one zone, EST.
        ("+12125551234", None, "2026-01-06T03:30:00", "2026-01-06T13:00:00"),
        # An Australian mobile has eight zones, from Lord Howe (UTC+11 in summer) to the Cocos
        # Islands (UTC+6:30): 21:30 in Sydney waits for 08:00 on Cocos, the latest morning.
        ("+61412345678", None, "2026-01-05T10:30:00", "2026-01-06T01:30:00"),
        # A US toll-free number spans Guam to Pago Pago: 22:00 in New York waits for the only
        # hours of the day that are 08:00-21:00 in all of them (from 22:00 UTC: 08:00 in Guam).
        ("+18005550123", None, "2026-01-06T03:00:00", "2026-01-06T22:00:00"),
    ],
    ids=["ats-zone", "uk-number", "us-one-zone", "several-zones", "us-no-geographic-prefix"],
)
def test_the_night_is_the_candidates_zone_else_their_numbers(
    world: World,
    chat: int,
    clock: FrozenClock,
    worker: Worker,
    twilio: TwilioServer,
    phone: str,
    zone: str | None,
    sent_at: str,
    until: str,
) -> None:
    extra = {"timezone": zone} if zone else {}
    world.api.candidate("cand", "Carla Candidate", phone=phone, **extra)
    message = text_at(world, clock, chat, sent_at, "Still interested?")
    assert held_until(world, chat, message) == utc(until)
    at(clock, until)
    clock.advance(seconds=-1)
    drain(worker)
    assert twilio.requests == []
    clock.advance(seconds=1)
    drain(worker)
    assert received(twilio, "Still interested?") == 1
    assert twilio.messages[0]["to"] == phone


def test_several_zones_all_in_the_day_send_at_once(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    world.api.candidate("cand", "Carla Candidate", phone="+61412345678")
    # 20:00 in Sydney and Lord Howe, 17:00 in Perth.
    message = text_at(world, clock, chat, "2026-01-05T09:00:00", "Call at 9?")
    assert delivery(world, chat, message)["status"] == "queued"


@pytest.mark.parametrize(
    ("sent_at", "until"),
    [
        # Spring forward (8 March 2026, 02:00 PST -> 03:00 PDT): 08:00 is 15:00 UTC, not 16:00.
        ("2026-03-08T06:30:00", "2026-03-08T15:00:00"),
        # Fall back (1 November 2026, 02:00 PDT -> 01:00 PST): 08:00 is 16:00 UTC, not 15:00.
        ("2026-11-01T05:30:00", "2026-11-01T16:00:00"),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_the_morning_follows_daylight_saving(
    world: World,
    chat: int,
    clock: FrozenClock,
    worker: Worker,
    twilio: TwilioServer,
    sent_at: str,
    until: str,
) -> None:
    at(clock, sent_at)
    world.users["emp_team"] = world.api.as_staff("emp_team")  # the first ran out meanwhile
    message = text_at(world, clock, chat, sent_at, "Over the weekend")
    assert held_until(world, chat, message) == utc(until)
    at(clock, until)
    clock.advance(seconds=-1)
    drain(worker)
    assert twilio.requests == []
    clock.advance(seconds=1)
    drain(worker)
    assert received(twilio, "Over the weekend") == 1


# --- the setting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["off"], indirect=True)
def test_off_sends_at_any_hour(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    message = text_at(world, clock, chat, "2026-01-06T11:00:00", "3 a.m. text")  # 03:00 PST
    assert delivery(world, chat, message)["status"] == "queued"
    drain(worker)
    assert received(twilio, "3 a.m. text") == 1


@pytest.mark.parametrize("window", ["22:00-07:00"], indirect=True)
def test_a_custom_window(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    evening = text_at(world, clock, chat, "2026-01-06T05:30:00", "21:30 is fine")  # PST
    assert delivery(world, chat, evening)["status"] == "queued"
    early = text_at(world, clock, chat, "2026-01-06T14:30:00", "06:30 is not")
    assert held_until(world, chat, early) == utc("2026-01-06T15:00:00")  # 07:00 PST
    drain(worker)
    assert received(twilio, "21:30 is fine") == 1 and received(twilio, "06:30 is not") == 0
    at(clock, "2026-01-06T15:00:00")
    drain(worker)
    assert received(twilio, "06:30 is not") == 1


# --- looked at again when the hold ends ----------------------------------------------------------


def test_a_zone_given_while_held_holds_it_on_rather_than_text_at_night(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    message = text_at(world, clock, chat, "2026-01-06T06:30:00", "Aloha")
    assert held_until(world, chat, message) == utc("2026-01-06T16:00:00")
    # The ATS now says Honolulu (UTC-10): at 16:00 UTC it is 06:00 there.
    world.api.candidate("cand", "Carla Candidate", timezone="Pacific/Honolulu")
    at(clock, "2026-01-06T16:00:00")
    drain(worker)
    assert twilio.requests == []
    assert held_until(world, chat, message) == utc("2026-01-06T18:00:00")
    at(clock, "2026-01-06T18:00:00")
    drain(worker)
    assert received(twilio, "Aloha") == 1
    assert delivery(world, chat, message)["status"] == "sent"
    clock.advance(days=2)
    drain(worker)
    assert len(twilio.requests) == 1


def test_a_window_changed_while_held_holds_it_on(
    world: World,
    chat: int,
    clock: FrozenClock,
    db: Database,
    settings: Settings,
    twilio: TwilioServer,
) -> None:
    message = text_at(world, clock, chat, "2026-01-06T06:30:00", "Late riser")
    # The server restarts with quiet hours until 10:00.
    later = settings.model_copy(update={"sms_quiet_hours": "21:00-10:00"})
    with TestClient(create_app(later, db=db, clock=clock)) as restarted:
        restarted_worker = worker_for(restarted.app)  # type: ignore[arg-type]
        at(clock, "2026-01-06T16:00:00")  # 08:00 PST
        drain(restarted_worker)
        assert twilio.requests == []
        assert held_until(world, chat, message) == utc("2026-01-06T18:00:00")  # 10:00 PST
        at(clock, "2026-01-06T18:00:00")
        drain(restarted_worker)
        assert received(twilio, "Late riser") == 1


def test_held_then_queued_then_sent_when_the_provider_fails_first(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    message = text_at(world, clock, chat, "2026-01-06T06:30:00", "Retry me")
    twilio.fail_next(1, status=500)
    at(clock, "2026-01-06T16:00:00")
    drain(worker)
    shown = delivery(world, chat, message)
    assert (shown["status"], shown["until"], shown["attempts"]) == ("queued", None, 1)
    clock.advance(minutes=5)  # past the backoff
    drain(worker)
    assert received(twilio, "Retry me") == 1 and len(twilio.requests) == 2
    assert delivery(world, chat, message)["status"] == "sent"


def test_a_deletion_while_held_cancels_it(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    message = text_at(world, clock, chat, "2026-01-06T06:30:00", "Oops, wrong person")
    gone = world["emp_team"].delete(f"/api/v1/messages/{message}", **{"for": "everyone"})
    assert gone.status_code == 204, gone.text
    shown = delivery(world, chat, message)
    assert (shown["status"], shown["until"]) == ("cancelled", None)
    at(clock, "2026-01-06T16:00:00")
    drain(worker)
    assert twilio.requests == []
    assert delivery(world, chat, message)["status"] == "cancelled"


def test_an_opt_out_while_held_fails_it_as_today(
    world: World,
    client: TestClient,
    chat: int,
    clock: FrozenClock,
    worker: Worker,
    twilio: TwilioServer,
) -> None:
    message = text_at(world, clock, chat, "2026-01-06T06:30:00", "Good morning")
    stop = webhook(client, INBOUND_PATH, inbound_sms_form(from_number=LA_PHONE, body="STOP"))
    assert stop.status_code == 200
    at(clock, "2026-01-06T16:00:00")
    drain(worker)
    assert twilio.requests == []
    shown = delivery(world, chat, message)
    assert (shown["status"], shown["until"]) == ("failed", None)
    assert "opted out" in shown["last_error"]


# --- the notification text keeps the same window ------------------------------------------------


def test_a_notification_text_waits_for_the_numbers_morning_without_quiet_hours_of_their_own(
    world: World, chat: int, clock: FrozenClock, worker: Worker, twilio: TwilioServer
) -> None:
    prefs = {"notifications": {"sms": True}, "quiet_hours": None}
    body(world["cand"].patch("/api/v1/me", prefs), 200)
    at(clock, "2026-01-06T06:30:00")  # 22:30 where the number is
    body(world["emp_team"].send(chat, "In the app"), 201)
    clock.advance(hours=1)  # well past the text's delay
    drain(worker)
    at(clock, "2026-01-06T15:59:00")
    drain(worker)
    assert twilio.messages == []
    at(clock, "2026-01-06T16:00:00")
    drain(worker)
    (notice,) = twilio.messages
    assert past_intro(str(notice["body"])).startswith("Tess Team sent you a message")


# --- the thread and the schema ----------------------------------------------------------------


def test_the_thread_tells_staff_when_a_held_text_goes_out(
    world: World,
    client: TestClient,
    chat: int,
    clock: FrozenClock,
    worker: Worker,
    tess: Browser,
    carla: Browser,
) -> None:
    text_at(world, clock, chat, "2026-01-06T06:30:00", "Held one")
    page = unescape(tess.page(f"/conversations/{chat}"))
    # Tuesday 08:00 in Los Angeles is 16:00 in Tess's UTC.
    line = "SMS held for quiet hours until Tue 08:00 Carla's time (Tue 16:00 yours)"
    assert line in page
    assert 'datetime="2026-01-06T16:00:00+00:00"' in page
    assert "SMS held" not in carla.page(f"/conversations/{chat}")  # staff only

    body(world["emp_team"].patch("/api/v1/me", {"timezone": "America/New_York"}), 200)
    page = unescape(tess.page(f"/conversations/{chat}"))
    assert "until Tue 08:00 Carla's time (Tue 11:00 yours)" in page

    # A number with several zones: only the viewer's clock is meaningful.
    world.api.candidate("cand", "Carla Candidate", phone="+61412345678")
    page = unescape(tess.page(f"/conversations/{chat}"))
    assert "SMS held for quiet hours until Tue 11:00 your time" in page

    world.api.candidate("cand", "Carla Candidate", phone=LA_PHONE)
    at(clock, "2026-01-06T16:00:00")
    drain(worker)
    page = unescape(tess.page(f"/conversations/{chat}"))
    assert "SMS held" not in page and "SMS sent" in page


def test_the_schema_describes_held_and_until(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    delivery_schema = schema["components"]["schemas"]["DeliveryOut"]
    assert "held" in delivery_schema["properties"]["status"]["enum"]
    assert delivery_schema["properties"]["until"]["description"]


# --- the migration ------------------------------------------------------------------------------


def test_the_migration_takes_a_zone_other_than_utc_as_given(world: World, db: Database) -> None:
    world.api.candidate("cand", "Carla Candidate", timezone="America/Chicago")
    config = alembic_config(db.engine.url.render_as_string(hide_password=False))
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0011")
            command.upgrade(config, "0012")
            # Plain SQL: the models describe the newest schema, not 0012's.
            given: dict[str, bool] = dict(
                connection.execute(
                    text(
                        "SELECT ext_id, timezone_given FROM users WHERE ext_id IN ('cand', 'cand2')"
                    )
                ).all()
            )
        assert given == {"cand": True, "cand2": False}
    finally:
        # Back to the newest schema (other tests share it on PostgreSQL).
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    db.engine.dispose()
