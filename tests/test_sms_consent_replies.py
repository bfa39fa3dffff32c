"""Consent changed by text, as the law now reads it: an opt-out (keyword or the person's own
words) answered once with a confirmation, START confirmed once, HELP naming who texts and whom to
contact, the first text after an opt-in saying who we are and how to stop (once, retries and
all), every change in the audit log, and opt-outs kept as a keyed hash of the number (never the
number), a STOP that outlives anyone's later say-so, and the migration that converts the plain
numbers of before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from jobchat.auth.models import ServerSecret
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import alembic_config
from jobchat.jobqueue.worker import Worker
from jobchat.privacy.models import AuditEntry
from jobchat.sms.models import SmsOptOut
from jobchat.sms.optouts import KEY_NAME, opt_out_key
from tests.mail_support import drain
from tests.support import World, body, start
from tests.twilio_support import (
    INBOUND_PATH,
    TWILIO_CLIENT_WARNINGS,
    TwilioServer,
    candidate_daytime_clock,
    inbound_sms_form,
    past_intro,
    twilio,
    twilio_settings,
    webhook,
    worker,
)

NUMBER = "+14155550123"  # cand's number in the world
SENDER_NAME = "Northwind Careers"
HELP_CONTACT = "help@northwind.example"
INTRO = "Tess Team at Acme Health texts you about your job application. Reply STOP to opt out."
OPTED_OUT = "will get no more texts from us. Reply START to get them again."
OPTED_IN = "you will get our texts again. Reply STOP to opt out, HELP for help."

pytestmark = TWILIO_CLIENT_WARNINGS
__all__ = ["candidate_daytime_clock", "twilio", "worker"]


@pytest.fixture
def settings(settings: Settings, twilio: TwilioServer) -> Settings:
    """SMS through the Twilio stand-in, and the deployment's own name and help contact."""
    return twilio_settings(settings, twilio).model_copy(
        update={"sms_sender_name": SENDER_NAME, "sms_help_contact": HELP_CONTACT}
    )


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


def answer_of(twiml: str) -> str | None:
    """The text a TwiML answer sends back, if any."""
    if "<Message>" not in twiml:
        return None
    return twiml.split("<Message>")[1].split("</Message>")[0]


def sent(twilio: TwilioServer) -> list[str]:
    return [str(m["body"]) for m in twilio.messages]


def text_out(world: World, chat: int, words: str, who: str = "emp_team") -> None:
    body(world[who].send(chat, words, channel="sms"), 201)


def at(clock: FrozenClock, moment: datetime) -> None:
    clock.advance(seconds=(moment - clock.now()).total_seconds())


def introduced_once(bodies: list[str], words: set[str]) -> bool:
    """The texts went, the first (only) with the intro."""
    return (
        bodies[0].startswith(f"{INTRO}\n")
        and not any(INTRO in b for b in bodies[1:])
        and {past_intro(b) for b in bodies} == words
        and len(bodies) == len(words)
    )


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def audit(db: Database, action: str) -> list[AuditEntry]:
    with db.read() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


# --- answers: an opt-out confirmed once, START once, HELP ---------------------------------------


@pytest.mark.parametrize("words", ["STOP", "Please stop texting me", "ne m'écrivez plus, merci"])
def test_an_opt_out_is_confirmed_once_and_a_second_one_is_not_answered(
    client: TestClient, world: World, db: Database, words: str
) -> None:
    first = answer_of(text_in(client, words))
    assert first == f"{SENDER_NAME}: you are opted out and {OPTED_OUT}"
    assert consent(world)["consent"] is False
    assert answer_of(text_in(client, "stop")) is None
    assert answer_of(text_in(client, "remove me from your list")) is None
    assert answer_of(text_in(client, words)) is None
    # The number's reason is what matched, never the reply's own words.
    ((_, reason),) = opt_out_rows(db)
    assert reason in ("STOP", "stop texting me", "ne m'écrivez plus")
    # The ledger keeps the reply (it is the candidate's, and goes with them).
    assert [h["detail"] for h in consent(world)["history"]][:1] == [words]


def test_an_opt_out_names_who_texted_the_number(
    client: TestClient, world: World, chat: int, worker: Worker
) -> None:
    text_out(world, chat, "Can you come on Tuesday?")
    drain(worker)
    assert (
        answer_of(text_in(client, "Stop texting me!"))
        == f"Acme Health: you are opted out and {OPTED_OUT}"
    )


def test_start_is_confirmed_once_then_is_an_ordinary_reply(
    client: TestClient, world: World, chat: int, worker: Worker
) -> None:
    text_out(world, chat, "Can you come on Tuesday?")
    drain(worker)
    text_in(client, "STOP")
    assert answer_of(text_in(client, "Start")) == f"Acme Health: {OPTED_IN}"
    assert consent(world)["consent"] is True
    # Nothing to opt into now: "Yes please" answers the recruiter's question, in the thread.
    assert answer_of(text_in(client, "Yes please")) is None
    assert answer_of(text_in(client, "START")) is None
    thread = body(world["emp_team"].messages(chat), 200)["items"]
    replies = [m["body"] for m in thread if m["author"]["id"] == "cand"]
    assert replies == ["Yes please", "START"]
    assert [c["detail"] for c in consent(world)["history"]][:2] == ["Start", "STOP"]


def test_help_names_the_organisation_and_person_who_last_texted_and_their_email(
    client: TestClient, world: World, chat: int, worker: Worker
) -> None:
    # Nobody has texted the number: the deployment's name and contact.
    assert answer_of(text_in(client, "HELP")) == (
        f"{SENDER_NAME}: texts about your job applications. Contact: {HELP_CONTACT}. "
        "Reply STOP to opt out, START to opt back in."
    )
    text_out(world, chat, "Can you come on Tuesday?")
    drain(worker)
    assert answer_of(text_in(client, "ayuda")) == (
        "Acme Health: texts about your job applications from Tess Team. "
        "Contact: emp_team@example.com. Reply STOP to opt out, START to opt back in."
    )
    # A later texter's name, when someone else texts the number.
    text_out(world, chat, "Tess is away, I am your contact now.", who="emp_admin")
    drain(worker)
    assert "from Ada Admin. Contact: emp_admin@example.com." in str(
        answer_of(text_in(client, "info"))
    )


def test_help_to_a_shared_number_tells_nothing_about_the_other_candidate(
    client: TestClient, world: World, worker: Worker
) -> None:
    world.api.candidate("cand2", "Dan Candidate", phone=NUMBER, sms_consent=True)
    other = start(world["emp_team"], "application", application="app2")
    text_out(world, other, "Dan, your interview is at 10.")
    drain(worker)
    answer = str(answer_of(text_in(client, "Help")))
    assert "Tess Team" in answer and "emp_team@example.com" in answer
    for secret in ("Dan", "Carla", "cand", "Registered Nurse", "app2", "interview", NUMBER):
        assert secret not in answer


# --- the first text after an opt-in -------------------------------------------------------------


def test_the_first_text_after_an_opt_in_carries_the_intro_and_later_ones_do_not(
    client: TestClient,
    world: World,
    chat: int,
    worker: Worker,
    twilio: TwilioServer,
    clock: FrozenClock,
) -> None:
    text_out(world, chat, "Can you come on Tuesday?")
    text_out(world, chat, "At 10 please.")
    drain(worker)
    # Whichever goes first says who we are; the other waits for it (a second at a time) if it
    # would go meanwhile, so as not to overtake it.
    assert sent(twilio)[0].startswith(f"{INTRO}\n")
    clock.advance(seconds=1)
    drain(worker)
    assert introduced_once(sent(twilio), {"Can you come on Tuesday?", "At 10 please."})

    # Withdrawn and given again: the next text says it again, once.
    text_in(client, "STOP")
    text_in(client, "START")
    text_out(world, chat, "Welcome back.")
    text_out(world, chat, "See you Tuesday.")
    drain(worker)
    clock.advance(seconds=1)
    drain(worker)
    assert introduced_once(sent(twilio)[2:], {"Welcome back.", "See you Tuesday."})

    # Consent given again by the ATS after staff recorded it withdrawn: the same.
    body(world["emp_team"].put("/api/v1/candidates/cand/sms-consent", {"consent": False}), 200)
    world.api.candidate("cand", "Carla Candidate", sms_consent=True)
    text_out(world, chat, "Your offer is ready.")
    drain(worker)
    assert sent(twilio)[4:] == [f"{INTRO}\nYour offer is ready."]


def test_a_retried_first_text_keeps_its_intro_once(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    twilio.fail_next(2)  # two 500s: the text is retried
    text_out(world, chat, "Can you come on Tuesday?")
    drain(worker)
    assert sent(twilio) == []
    text_out(world, chat, "At 10 please.")  # queued while the first waits for its retry
    for _ in range(3):
        clock.advance(minutes=5)  # past the backoff, and past the intro's claim
        drain(worker)
    # Whichever went first carried it: the retried one gave it up when its attempt failed.
    assert introduced_once(sent(twilio), {"Can you come on Tuesday?", "At 10 please."})


def test_a_text_held_for_the_night_carries_the_intro_when_it_goes(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    """Decided when it goes, not when it was queued: both held till morning, one says it."""
    at(clock, datetime(2026, 1, 6, 6, 30, tzinfo=UTC))  # 22:30 in Los Angeles (the number's)
    text_out(world, chat, "See you tomorrow?")
    drain(worker)
    clock.advance(minutes=5)
    text_out(world, chat, "Bring your passport.")
    drain(worker)
    assert sent(twilio) == []
    at(clock, datetime(2026, 1, 6, 16, 0, tzinfo=UTC))  # 08:00 there
    drain(worker)
    clock.advance(seconds=1)
    drain(worker)
    assert introduced_once(sent(twilio), {"See you tomorrow?", "Bring your passport."})


def test_the_intro_is_on_the_notification_text_when_that_goes_first(
    world: World, chat: int, worker: Worker, twilio: TwilioServer, clock: FrozenClock
) -> None:
    body(world["cand"].patch("/api/v1/me", {"notifications": {"sms": True}}), 200)
    body(world["emp_team"].send(chat, "Thanks for applying!"), 201)
    drain(worker)  # the notification ladder starts the text's clock
    clock.advance(hours=1)
    drain(worker)
    (notice,) = sent(twilio)
    assert notice.startswith(f"{INTRO}\nTess Team sent you a message")
    text_out(world, chat, "Can you come on Tuesday?")
    drain(worker)
    assert sent(twilio)[1:] == ["Can you come on Tuesday?"]


# --- the audit log -----------------------------------------------------------------------------


def test_consent_changes_are_in_the_audit_log_without_the_number(
    client: TestClient, world: World, db: Database
) -> None:
    world.api.candidate("cand2", "Dan Candidate", phone=NUMBER, sms_consent=True)
    text_in(client, "stop texting me")
    out = audit(db, "sms.opted_out")
    assert sorted(e.subject_ref or "" for e in out) == ["cand", "cand2"]
    with db.read() as session:
        key = opt_out_key(session, NUMBER)
    for entry in out:
        assert (entry.actor_type, entry.actor_id, entry.actor_ref) == ("number", None, key)
        assert entry.subject_type == "candidate" and entry.details == {"by": "number"}

    # Both were opted in by the integration first (the world's upserts), then by START.
    opted_in = [(e.actor_type, e.subject_ref) for e in audit(db, "sms.opted_in")]
    assert sorted(opted_in) == [("integration", "cand"), ("integration", "cand2")]
    text_in(client, "START")
    opted_in = [(e.actor_type, e.subject_ref) for e in audit(db, "sms.opted_in")][2:]
    assert sorted(opted_in) == [("number", "cand"), ("number", "cand2")]
    # Staff, and the integration: named as such.
    body(world["emp_team"].put("/api/v1/candidates/cand/sms-consent", {"consent": False}), 200)
    world.api.candidate("cand", "Carla Candidate", sms_consent=True)
    staff_out = audit(db, "sms.opted_out")[-1]
    assert (staff_out.actor_type, staff_out.actor_ref, staff_out.subject_ref) == (
        "staff", "emp_team", "cand",
    )  # fmt: skip
    ats_in = audit(db, "sms.opted_in")[-1]
    assert (ats_in.actor_type, ats_in.subject_ref) == ("integration", "cand")
    # A number nobody has yet: one entry about no one.
    text_in(client, "STOP", number="+14155550177")
    assert audit(db, "sms.opted_out")[-1].subject_type is None
    with db.read() as session:
        dumped = " ".join(
            str(v) for row in session.execute(text("SELECT * FROM audit_log")) for v in row
        )
    for number in (NUMBER, NUMBER[1:], "+14155550177", "4155550177"):
        assert number not in dumped
    # A second opt-out changes nothing, and logs nothing.
    text_in(client, "STOP")
    before = len(audit(db, "sms.opted_out"))
    text_in(client, "Stop texting me")
    assert len(audit(db, "sms.opted_out")) == before


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


def introduced(db: Database) -> dict[str, bool]:
    """Whether each candidate's latest consent had its intro (plain SQL: any schema)."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT u.ext_id, c.intro_sent_at FROM sms_consent_changes c"
                " JOIN users u ON u.id = c.candidate_id"
                " WHERE c.id = (SELECT MAX(id) FROM sms_consent_changes"
                " WHERE candidate_id = c.candidate_id)"
            )
        ).all()
    return {ext_id: sent_at is not None for ext_id, sent_at in rows}


def test_the_migration_converts_plain_numbers_to_their_keyed_hash_and_back(
    world: World, db: Database, chat: int, worker: Worker
) -> None:
    """And it marks the consents that some text already followed as introduced."""
    world.api.candidate("cand9", "Nia Newcomer", phone="+14155550166", sms_consent=True)
    text_out(world, chat, "Can you come on Tuesday?")
    drain(worker)
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
        assert (introduced(db)["cand"], introduced(db)["cand9"]) == (True, False)

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
