"""A message's files in the email to the candidate, on the wire (the suite's SMTP server on
loopback): each a proper part with its name and stored bytes, or, beyond the size setting, a
link that signs the candidate in and downloads it."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from tests.mail_support import SmtpSink, drain, sink, smtp_settings, worker_for
from tests.support import World, body
from tests.test_mail_attachments_support import (
    download,
    follow_link,
    jpeg,
    pdf,
    upload,
    with_storage,
)

__all__ = ["sink"]  # the SMTP sink fixture, from tests/mail_support.py

CANDIDATE = "cand@example.org"
LINK = re.compile(r"http://testserver/login/\S+\?next=/api/v1/attachments/(\d+)")


@pytest.fixture
def email_limit() -> int:
    """JOBCHAT_MAX_EMAIL_ATTACHMENT_BYTES (a test parametrizes it to change it)."""
    return 10 * 1024 * 1024


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, tmp_path: Path, email_limit: int) -> Settings:
    return with_storage(
        smtp_settings(settings, sink), tmp_path, max_email_attachment_bytes=email_limit
    )


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


def send_files(world: World, chat: int, ids: list[int], text: str = "Here are the papers.") -> int:
    sent = world["emp_team"].send(
        chat, text, channel="email", subject="Your offer", attachments=ids
    )
    return int(body(sent, 201)["id"])


def attachments_of(mail: EmailMessage) -> list[tuple[str | None, str, str | None, bytes]]:
    """(filename, content type, disposition, bytes) of each attachment part."""
    found = []
    for part in mail.iter_attachments():
        assert isinstance(part, EmailMessage)
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        found.append(
            (part.get_filename(), part.get_content_type(), part.get_content_disposition(), data)
        )
    return found


def test_an_email_carries_the_files_as_parts_with_their_names_and_stored_bytes(
    world: World, client: TestClient, sink: SmtpSink, chat: int
) -> None:
    team = world["emp_team"]
    cv = upload(team, chat, "Lebenslauf Müller.pdf", pdf(), "application/pdf")
    photo = upload(team, chat, "photo.jpg", jpeg(), "image/jpeg")
    notes = upload(team, chat, "notes.txt", "Grüße aus Berlin\n".encode(), "text/plain")
    send_files(world, chat, [cv, photo, notes])

    drain(worker_for(client.app))  # type: ignore[arg-type]

    (delivered,) = sink.to(CANDIDATE)
    mail = delivered.message
    assert mail.get_content_type() == "multipart/mixed"
    assert attachments_of(mail) == [
        ("Lebenslauf Müller.pdf", "application/pdf", "attachment", download(team, cv)),
        ("photo.jpg", "image/jpeg", "attachment", download(team, photo)),
        ("notes.txt", "text/plain", "attachment", "Grüße aus Berlin\n".encode()),
    ]
    (text_part,) = [p for p in mail.iter_attachments() if p.get_content_type() == "text/plain"]
    assert text_part.get_content_charset() == "utf-8"
    # The candidate downloads the very same bytes.
    assert download(world["cand"], cv) == attachments_of(mail)[0][3]
    # A name that is not ASCII is written RFC 2231-encoded.
    assert b"filename*=utf-8''Lebenslauf%20M%C3%BCller.pdf" in delivered.raw
    # Both alternatives name the files, and the text is still there.
    text, html = delivered.text(), delivered.html()
    assert "Here are the papers." in text
    assert "Lebenslauf Müller.pdf" in text and "photo.jpg" in text
    assert "Lebenslauf Müller.pdf" in html and "photo.jpg" in html
    assert "login/" not in text  # attached: no links


@pytest.mark.parametrize("email_limit", [600])
def test_files_beyond_the_size_setting_go_as_links_that_sign_the_candidate_in(
    world: World, client: TestClient, sink: SmtpSink, chat: int
) -> None:
    team = world["emp_team"]
    cv = upload(team, chat, "cv.pdf", pdf("x" * 400), "application/pdf")
    photo = upload(team, chat, "photo.jpg", jpeg(), "image/jpeg")
    send_files(world, chat, [cv, photo])

    drain(worker_for(client.app))  # type: ignore[arg-type]

    (delivered,) = sink.to(CANDIDATE)
    mail = delivered.message
    assert attachments_of(mail) == []  # none inside: all or none
    text, html = delivered.text(), delivered.html()
    links = {int(m.group(1)): m.group(0) for m in LINK.finditer(text)}
    assert set(links) == {cv, photo}
    assert "cv.pdf" in text and "photo.jpg" in text and "72 hours" in text
    for link in links.values():
        assert link.replace("&", "&amp;") in html

    # Followed in a browser that is not signed in: signed in as the candidate, the file comes.
    response = follow_link(client, links[cv])
    assert response.status_code == 200
    assert response.content == download(team, cv)
    assert response.headers["content-disposition"].startswith("attachment")
    # Each link is a one-time sign-in: the other still works on its own.
    assert follow_link(client, links[photo]).content == download(team, photo)
    # And used up, it does not sign anyone else in.
    assert follow_link(client, links[cv]).status_code == 404


def test_a_message_of_only_files_makes_a_sensible_email(
    world: World, client: TestClient, sink: SmtpSink, chat: int
) -> None:
    team = world["emp_team"]
    cv = upload(team, chat, "contract.pdf", pdf(), "application/pdf")
    send_files(world, chat, [cv], text="")

    drain(worker_for(client.app))  # type: ignore[arg-type]

    (delivered,) = sink.to(CANDIDATE)
    text = delivered.text()
    assert text.startswith("Attached:\n- contract.pdf (")
    assert [name for name, *_ in attachments_of(delivered.message)] == ["contract.pdf"]
    assert "contract.pdf" in delivered.html()


def test_a_retried_email_with_files_goes_once_with_its_files(
    world: World, client: TestClient, sink: SmtpSink, chat: int, clock: FrozenClock
) -> None:
    team = world["emp_team"]
    cv = upload(team, chat, "cv.pdf", pdf(), "application/pdf")
    message_id = send_files(world, chat, [cv])
    worker = worker_for(client.app)  # type: ignore[arg-type]
    sink.busy = True
    drain(worker)
    assert sink.to(CANDIDATE) == []
    sink.busy = False
    # The retry is due after the backoff: move the clock on.
    clock.advance(hours=1)
    drain(worker)
    drain(worker)

    (delivered,) = sink.to(CANDIDATE)
    assert [name for name, *_ in attachments_of(delivered.message)] == ["cv.pdf"]
    items = body(team.messages(chat), 200)["items"]
    (message,) = [m for m in items if m["id"] == message_id]
    assert message["deliveries"][0]["status"] == "sent"
    assert [a["id"] for a in message["attachments"]] == [cv]


def test_an_unread_message_of_only_files_is_previewed_by_their_names(
    world: World, client: TestClient, sink: SmtpSink, chat: int, clock: FrozenClock
) -> None:
    team = world["emp_team"]
    cv = upload(team, chat, "contract.pdf", pdf(), "application/pdf")
    body(team.send(chat, "", attachments=[cv]), 201)  # in the app: the candidate is told
    clock.advance(seconds=121)
    drain(worker_for(client.app))  # type: ignore[arg-type]

    (notification,) = sink.to(CANDIDATE)
    assert "[File: contract.pdf]" in notification.text()
    assert attachments_of(notification.message) == []  # a notification carries no files
