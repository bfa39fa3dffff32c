"""An inbound email reply's files, over SMTP to the server's own listener: they become the
message's attachments under the upload's rules (type by content, size, image metadata gone),
each one refused is named in the thread, and no file is stored for a mail that is not
posted, nor twice for a mail delivered twice."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from tests.mail_support import Delivered, SmtpSink, drain, free_port, sink, smtp_settings
from tests.support import World, body
from tests.test_mail_attachments_support import (
    download,
    has_gps,
    jpeg,
    pdf,
    png_with_gps,
    stored_objects,
    with_storage,
)
from tests.test_mail_inbound import reply_to, smtp_send, thread, worker

__all__ = ["sink", "worker"]  # fixtures from tests/mail_support.py and test_mail_inbound.py

LIMIT = 64 * 1024  # JOBCHAT_MAX_ATTACHMENT_BYTES here
CANDIDATE = "cand@example.org"
SECRET = "inbound-secret"


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, tmp_path: Path) -> Settings:
    return with_storage(
        smtp_settings(settings, sink, inbound_smtp_port=free_port(), inbound_email_secret=SECRET),
        tmp_path,
        max_attachment_bytes=LIMIT,
    )


@pytest.fixture
def chat(world: World) -> int:
    return int(body(world["emp_team"].start("application", application="app1"), 201)["id"])


@pytest.fixture
def invitation(world: World, chat: int, worker: Worker, sink: SmtpSink) -> Delivered:
    body(
        world["emp_team"].send(chat, "Please send your CV.", channel="email", subject="CV"),
        201,
    )
    drain(worker)
    (mail,) = sink.to(CANDIDATE)
    return mail


def attach(reply: EmailMessage, filename: str, data: bytes, content_type: str) -> None:
    maintype, _, subtype = content_type.partition("/")
    reply.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)


def last(world: World, chat: int) -> dict[str, Any]:
    return thread(world, chat)[-1]


def test_a_replys_files_land_in_the_thread_and_refused_ones_are_named(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    tmp_path: Path,
) -> None:
    reply = reply_to(invitation, "Here is my CV and my permit.")
    attach(reply, "CV Müller.pdf", pdf(), "application/pdf")
    attach(reply, "permit.png", png_with_gps(), "image/png")
    attach(reply, "setup.exe", b"MZ\x90\x00" + bytes(300), "application/octet-stream")
    attach(reply, "cover.pdf", b"<html><script>alert(1)</script></html>", "application/pdf")
    attach(reply, "scan.pdf", pdf("x" * LIMIT), "application/pdf")
    attach(reply, "empty.txt", b"", "text/plain")
    smtp_send(settings, reply)

    message = last(world, chat)
    assert message["author"]["id"] == "cand"
    assert [(a["filename"], a["content_type"]) for a in message["attachments"]] == [
        ("CV Müller.pdf", "application/pdf"),
        ("permit.png", "image/png"),
    ]
    assert message["body"] == (
        "Here is my CV and my permit.\n\n"
        "[Not attached: setup.exe — this type of file is not accepted]\n"
        "[Not attached: cover.pdf — this type of file is not accepted]\n"
        "[Not attached: scan.pdf — larger than the limit of 64 KB]"
    )
    team = world["emp_team"]
    cv, permit = (a["id"] for a in message["attachments"])
    assert download(team, cv) == pdf()
    stored_png = download(team, permit)
    assert not has_gps(stored_png)  # stored without its position
    assert has_gps(png_with_gps())  # (which the original had)
    # The candidate sees their own files too.
    assert download(world["cand"], cv) == pdf()
    # The two files taken, and the image's thumbnail: nothing of the refused ones.
    assert len(stored_objects(tmp_path)) == 3


def test_a_reply_of_only_a_file_lands_as_a_message(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    reply = reply_to(invitation, "")
    reply.set_content("")  # no text at all, no quote either
    attach(reply, "cv.pdf", pdf(), "application/pdf")
    smtp_send(settings, reply)

    message = last(world, chat)
    assert message["author"]["id"] == "cand"
    assert message["body"] == ""
    assert [a["filename"] for a in message["attachments"]] == ["cv.pdf"]


def test_a_reply_of_only_a_refused_file_is_still_seen(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    reply = reply_to(invitation, "")
    reply.set_content("")
    attach(reply, "run.exe", b"MZ\x90\x00" + bytes(300), "application/octet-stream")
    smtp_send(settings, reply)

    message = last(world, chat)
    assert message["author"]["id"] == "cand"
    assert message["body"] == "[Not attached: run.exe — this type of file is not accepted]"
    assert message["attachments"] == []


def test_a_mail_delivered_twice_stores_its_files_once(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    tmp_path: Path,
) -> None:
    reply = reply_to(invitation, "My CV.")
    attach(reply, "cv.pdf", pdf(), "application/pdf")
    smtp_send(settings, reply)
    objects = stored_objects(tmp_path)
    assert len(objects) == 1
    smtp_send(settings, reply)

    assert [m["body"] for m in thread(world, chat)].count("My CV.") == 1
    assert stored_objects(tmp_path) == objects


def test_files_of_a_mail_that_is_not_posted_are_not_kept(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    tmp_path: Path,
) -> None:
    spoofed = reply_to(invitation, "Trust me.", sender="Mallory <mallory@example.net>")
    attach(spoofed, "cv.pdf", pdf(), "application/pdf")
    smtp_send(settings, spoofed)
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    closed = reply_to(invitation, "Still interested!")
    attach(closed, "cv.pdf", pdf(), "application/pdf")
    smtp_send(settings, closed)

    assert [m["body"] for m in thread(world, chat)] == ["Please send your CV."]
    assert stored_objects(tmp_path) == []


def test_more_than_ten_files_keep_ten_and_name_the_rest(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    reply = reply_to(invitation, "All my certificates.")
    for number in range(1, 13):
        attach(reply, f"cert-{number}.pdf", pdf(f"certificate {number}"), "application/pdf")
    smtp_send(settings, reply)

    message = last(world, chat)
    assert [a["filename"] for a in message["attachments"]] == [
        f"cert-{n}.pdf" for n in range(1, 11)
    ]
    assert message["body"].endswith(
        "[Not attached: cert-11.pdf — a message takes at most 10 files]\n"
        "[Not attached: cert-12.pdf — a message takes at most 10 files]"
    )


def test_a_mail_whose_files_cannot_be_stored_is_not_taken_and_can_come_again(
    world: World,
    client: TestClient,
    settings: Settings,
    chat: int,
    invitation: Delivered,
    tmp_path: Path,
) -> None:
    reply = reply_to(invitation, "My CV.")
    attach(reply, "cv.pdf", pdf(), "application/pdf")
    headers = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"}
    folder = tmp_path / "files"
    aside = tmp_path / "files-aside"
    if folder.exists():
        folder.rename(aside)
    folder.write_bytes(b"")  # a file where the folder should be: the storage cannot be used

    down = client.post("/api/v1/inbound/email", content=reply.as_bytes(), headers=headers)
    assert body(down, 503)["error"]["code"] == "storage_unavailable"
    assert [m["body"] for m in thread(world, chat)] == ["Please send your CV."]

    folder.unlink()
    if aside.exists():
        aside.rename(folder)
    again = client.post("/api/v1/inbound/email", content=reply.as_bytes(), headers=headers)
    assert body(again, 200)["outcome"] == "posted"  # not taken for a duplicate
    assert [a["filename"] for a in last(world, chat)["attachments"]] == ["cv.pdf"]


def test_a_photo_a_phone_puts_inline_in_the_html_is_a_file_too(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    """As iOS Mail sends a photo: inline, named, referred to by the HTML body."""
    reply = reply_to(invitation, "My permit:")
    reply.add_alternative(
        '<div>My permit:</div><img src="cid:photo-1@phone.example">', subtype="html"
    )
    html = reply.get_body(("html",))
    assert isinstance(html, EmailMessage)
    html.add_related(
        jpeg("green"),
        maintype="image",
        subtype="jpeg",
        cid="<photo-1@phone.example>",
        filename="IMG_0042.jpeg",
        disposition="inline",
    )
    smtp_send(settings, reply)

    message = last(world, chat)
    assert message["body"] == "My permit:"
    assert [(a["filename"], a["content_type"]) for a in message["attachments"]] == [
        ("IMG_0042.jpeg", "image/jpeg")
    ]


def test_a_single_part_reply_that_is_only_a_file_lands_as_a_message(
    world: World, client: TestClient, settings: Settings, chat: int, invitation: Delivered
) -> None:
    # Not multipart at all: the mail's one body is the PDF (some scanners and scripts send so).
    reply = reply_to(invitation, "")
    reply.set_content(pdf(), maintype="application", subtype="pdf", filename="scan.pdf")
    assert not reply.is_multipart()
    smtp_send(settings, reply)

    message = last(world, chat)
    assert message["author"]["id"] == "cand"
    assert [a["filename"] for a in message["attachments"]] == ["scan.pdf"]
