"""Control characters in one-line fields: refused at the door (422 naming the field, through the
API and the pages' forms), and folded to spaces in the emails of anyone whose stored name or
subject holds one already, so that nobody silently stops reaching people by email."""

from __future__ import annotations

from email.utils import parseaddr

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.directory.models import Organization, User
from jobchat.messages.models import Message
from tests.mail_support import SmtpSink, drain, sink, smtp_settings, worker_for
from tests.support import Api, World, assert_error, body, sent, start
from tests.web_support import Browser

# CR, LF, CRLF, NUL, TAB, ESC, DEL, a C1 control (NEL) and the Unicode line/paragraph separators.
CONTROLS = ["\r", "\n", "\r\n", "\x00", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", CONTROLS, ids=repr)
def test_names_with_control_characters_are_refused_and_nothing_is_written(
    api: Api, char: str
) -> None:
    integration = api.integration
    bad = f"Acme{char}Bcc: someone@example.com"

    r = integration.put("/api/v1/organizations/acme", {"name": bad, "kind": "employer"})
    assert_error(r, 422, "invalid", fields={"name"})
    # Nothing half-written: the first good PUT creates it.
    assert (
        integration.put(
            "/api/v1/organizations/acme", {"name": "Acme", "kind": "employer"}
        ).status_code
        == 201
    )

    staff = {"name": bad, "email": "tess@example.com", "organization": "acme", "role": "member"}
    assert_error(integration.put("/api/v1/users/tess", staff), 422, "invalid", fields={"name"})
    assert integration.put("/api/v1/users/tess", staff | {"name": "Tess"}).status_code == 201

    candidate = {"name": bad, "email": "carla@example.org"}
    r = integration.put("/api/v1/candidates/carla", candidate)
    assert_error(r, 422, "invalid", fields={"name"})
    r = integration.put("/api/v1/candidates/carla", candidate | {"name": "Carla"})
    assert r.status_code == 201

    job = {"title": f"Nurse{char}Night shift", "employer": "acme"}
    assert_error(integration.put("/api/v1/jobs/job1", job), 422, "invalid", fields={"title"})


def test_line_breaks_around_a_name_are_trimmed_like_other_whitespace(api: Api) -> None:
    stored = api.org("acme", "\r\n Acme Health \n", "employer")
    assert stored["name"] == "Acme Health"


def test_an_email_address_with_a_control_character_is_refused(api: Api) -> None:
    api.org("acme", "Acme", "employer")
    r = api.integration.put(
        "/api/v1/users/tess",
        {"name": "Tess", "email": "tess\x01@example.com", "organization": "acme", "role": "admin"},
    )
    assert_error(r, 422, "invalid", fields={"email"})


@pytest.mark.parametrize("char", ["\r\n", "\n", "\x00", "\t", "\u2028"], ids=repr)
def test_a_subject_with_control_characters_is_refused_by_the_api_and_stores_nothing(
    world: World, char: str
) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    r = world["emp_team"].send(
        chat, "Hello", channel="email", subject=f"Interview{char}Bcc: someone@example.com"
    )
    assert_error(r, 422, "invalid", fields={"subject"})
    assert body(world["cand"].messages(chat), 200)["items"] == []
    ok = world["emp_team"].send(chat, "Hello", channel="email", subject="Interview")
    assert sent(ok)["subject"] == "Interview"


def test_a_subject_with_a_line_break_is_refused_by_the_composer_form(
    client: TestClient, api: Api, world: World
) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    tess = Browser.signed_in(client, api, "emp_team")
    r = tess.form(
        f"/conversations/{chat}/messages",
        {"body": "Offer", "channel": "email", "subject": "Your offer\r\nBcc: x@example.com"},
    )
    assert r.status_code == 422
    assert "Subject: must be one line of text" in r.text
    assert body(world["cand"].messages(chat), 200)["items"] == []
    # Our script posts the same composer to the API: the field is named for it to mark.
    r = tess.api(
        "POST",
        f"/api/v1/conversations/{chat}/messages",
        {"body": "Offer", "channel": "email", "subject": "Your offer\nBcc: x@example.com"},
    )
    assert_error(r, 422, "invalid", fields={"subject"})


# --- emails of people whose stored names already hold control characters -------------------------


__all__ = ["sink"]  # the SMTP sink fixture, from tests/mail_support.py


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return smtp_settings(settings, sink, notify_delay_seconds=60)


def _store_names(db: Database, *, staff: str, org: str, candidate: str) -> None:
    """Names as a database from before the refusal may hold them: written directly."""
    with db.write() as session:
        session.execute(update(User).where(User.ext_id == "emp_team").values(name=staff))
        session.execute(update(Organization).where(Organization.ext_id == "acme").values(name=org))
        session.execute(update(User).where(User.ext_id == "cand").values(name=candidate))


def test_an_email_message_from_a_sender_whose_stored_name_has_a_line_break_still_goes_out(
    world: World, client: TestClient, db: Database, sink: SmtpSink
) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    _store_names(
        db,
        staff="Tess\r\nBcc: victim@example.com",
        org="Acme\nHealth",
        candidate="Carla\u2028Candidate\r",
    )
    message = sent(
        world["emp_team"].send(chat, "Can you do Tuesday?", channel="email", subject="x")
    )
    with db.write() as session:
        session.execute(
            update(Message)
            .where(Message.id == message["id"])
            .values(subject="Interview\r\nBcc: victim@example.com")
        )

    drain(worker_for(client.app))  # type: ignore[arg-type]

    (mail,) = sink.received
    assert mail.rcpt_tos == ["cand@example.org"]  # nobody was added by a header
    email = mail.message
    assert parseaddr(email["From"]) == ("Tess Bcc: victim@example.com", "hiring@example.com")
    assert parseaddr(email["To"]) == ("Carla Candidate", "cand@example.org")
    assert email["Subject"] == "Interview Bcc: victim@example.com"
    assert email["Bcc"] is None
    assert "Tess Bcc: victim@example.com (Acme Health) sent you this message" in mail.text()
    items = body(world["emp_team"].messages(chat), 200)["items"]
    assert items[0]["deliveries"][0]["status"] == "sent"


def test_a_notification_about_such_a_sender_still_goes_out(
    world: World, client: TestClient, db: Database, sink: SmtpSink
) -> None:
    from jobchat.clock import FrozenClock

    clock: FrozenClock = client.app.state.jobchat.clock  # type: ignore[attr-defined]
    chat = start(world["emp_team"], "application", application="app1")
    _store_names(db, staff="Tess\nTeam", org="Acme\r\nHealth", candidate="Carla\r\nCandidate")
    sent(world["emp_team"].send(chat, "Thanks for applying!"))
    clock.advance(seconds=61)

    drain(worker_for(client.app))  # type: ignore[arg-type]

    (mail,) = sink.to("cand@example.org")
    email = mail.message
    assert parseaddr(email["To"]) == ("Carla Candidate", "cand@example.org")
    assert email["Subject"].startswith("1 unread message: ")
    assert "\n" not in email["Subject"] and "\r" not in email["Subject"]
    assert "Thanks for applying!" in mail.text()
