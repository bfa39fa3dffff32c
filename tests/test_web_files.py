"""Attachments on the pages: the thread draws images as thumbnails (sized, so nothing jumps)
and documents as cards (type in words, size, download link); a message of files alone has no
empty text; the live fragments draw them the same; a message deleted for everyone shows none;
the composer's file input works without our script (multipart form post, the same checks as
the API). On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.files_support import PDF, download, image_bytes, upload, uploaded
from tests.support import World, body, sent, start
from tests.web_support import ORIGIN, Browser, message_ids


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def bubble(html: str, message_id: int) -> str:
    start_at = html.index(f'data-message-id="{message_id}"')
    return html[start_at : html.index("</article>", start_at)]


def test_the_thread_shows_thumbnails_and_document_cards(
    tess: Browser, carla: Browser, world: World, chat: int
) -> None:
    cand = world["cand"]
    photo = uploaded(cand, chat, "permit.png", image_bytes("PNG", (800, 600)))
    cv = uploaded(cand, chat, "Carla CV <2025>.pdf", PDF)
    with_text = sent(cand.send(chat, "My CV and work permit", attachments=[cv["id"], photo["id"]]))
    only = uploaded(cand, chat, "second.png", image_bytes("PNG", (60, 120)))
    files_only = sent(cand.send(chat, "", attachments=[only["id"]]))

    for who in (tess, carla):
        html = who.page(f"/conversations/{chat}")
        first = bubble(html, with_text["id"])
        # The document: a card with the name (escaped), the type in words, the size, a link.
        assert (
            f'href="/api/v1/attachments/{cv["id"]}" download="Carla CV &lt;2025&gt;.pdf"' in first
        )
        card = re.search(r'<a class="att-card".*?</a>', first, re.S)
        assert card is not None
        words = " ".join(unescape(re.sub(r"<[^>]+>", " ", card.group(0))).split())
        assert "PDF ·" in words and "bytes" in words
        # The name in two parts, so that a long one is cut in the middle and ".pdf" stays.
        assert (
            '<span class="name-stem">Carla CV &lt;2025&gt;</span><span class="name-ext">.pdf</span>'
            in card.group(0)
        )
        # The image: its thumbnail, sized in proportion within 240 px, the full image linked.
        assert (
            f'<img src="/api/v1/attachments/{photo["id"]}/thumbnail" alt="permit.png" '
            'width="240" height="180"'
        ) in first
        assert f'href="/api/v1/attachments/{photo["id"]}" data-lightbox' in first
        # In the message's order: the CV first.
        assert first.index(f'attachment-id="{cv["id"]}"') < first.index(
            f'attachment-id="{photo["id"]}"'
        )
        # Files alone: no empty text paragraph, and marked so.
        alone = bubble(html, files_only["id"])
        assert '<p class="body">' not in alone
        assert re.search(
            rf'class="message [^"]*files-only[^"]*" data-message-id="{files_only["id"]}"', html
        )
        # A small image is drawn at its own size, never enlarged.
        assert 'width="60" height="120"' in alone
    # The live fragment (a message that arrives) draws the same.
    fragment = tess.client.get(
        f"/conversations/{chat}/messages.html", params={"after": with_text["id"] - 1}
    ).text
    assert message_ids(fragment) == [with_text["id"], files_only["id"]]
    assert f"/api/v1/attachments/{photo['id']}/thumbnail" in fragment
    # Tess downloads what Carla sent; the thumbnail is a JPEG.
    assert download(world["emp_team"], cv["id"]).content == PDF
    thumb = world["emp_team"].get(f"/api/v1/attachments/{photo['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

    # Deleted for everyone: the tombstone shows no files.
    gone = cand.delete(f"/api/v1/messages/{with_text['id']}", **{"for": "everyone"})
    assert gone.status_code == 204
    html = tess.page(f"/conversations/{chat}")
    dead = bubble(html, with_text["id"])
    assert "This message was deleted" in dead and "attachments" not in dead


def test_the_composer_has_an_attach_input_for_every_channel(
    tess: Browser, carla: Browser, chat: int
) -> None:
    for who in (tess, carla):
        html = who.page(f"/conversations/{chat}")
        assert 'enctype="multipart/form-data"' in html
        field = re.search(
            r'<input type="file" class="attach-input" name="file" multiple accept="([^"]+)"', html
        )
        assert field is not None
        accept = field.group(1).split(",")
        for wanted in (
            ".pdf",
            ".docx",
            ".doc",
            ".odt",
            ".rtf",
            ".txt",
            ".png",
            ".jpg",
            ".heic",
            "image/webp",
        ):
            assert wanted in accept
        assert "Attach files" in html
        # The limit, for the script to refuse a bigger file before it uploads a byte, in bytes
        # and in the words the chip uses ("Over the 10 MB limit").
        assert f'data-max-bytes="{10 * 1024 * 1024}" data-max-text="10 MB"' in html
    # Staff see the email and SMS channels in the same form as the input.
    html = tess.page(f"/conversations/{chat}")
    form = html[html.index('id="composer"') : html.index("</form>", html.index('id="composer"'))]
    assert 'value="email"' in form and 'name="file"' in form


def test_the_form_post_sends_files_without_our_script(
    tess: Browser, world: World, chat: int
) -> None:
    def post(files: list[tuple[str, tuple[str, bytes, str]]], text: str = "") -> int:
        r = tess.client.post(
            f"/conversations/{chat}/messages",
            data={"csrf": tess.csrf, "body": text, "channel": "app"},
            files=files,
            headers={"Origin": ORIGIN},
            follow_redirects=False,
        )
        status: int = r.status_code
        return status

    files = [
        ("file", ("offer.pdf", PDF, "application/pdf")),
        ("file", ("office.png", image_bytes("PNG"), "image/png")),
    ]
    assert post(files, "Your offer letter") == 303
    page = body(world["cand"].get(f"/api/v1/conversations/{chat}/messages"), 200)
    last = page["items"][-1]
    assert last["body"] == "Your offer letter"
    assert [(a["filename"], a["content_type"]) for a in last["attachments"]] == [
        ("offer.pdf", "application/pdf"),
        ("office.png", "image/png"),
    ]
    # No file chosen: a browser still sends the part, with an empty name and no bytes.
    boundary = "----jobchatboundary"
    parts = [
        ("csrf", None, tess.csrf),
        ("body", None, "Plain"),
        ("channel", None, "app"),
        ("file", "", ""),
    ]
    raw = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
            + (
                f'; filename="{filename}"\r\nContent-Type: application/octet-stream'
                if filename is not None
                else ""
            )
            + f"\r\n\r\n{value}\r\n"
            for name, filename, value in parts
        )
        + f"--{boundary}--\r\n"
    )
    r = tess.client.post(
        f"/conversations/{chat}/messages",
        content=raw.encode(),
        headers={"Origin": ORIGIN, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = body(world["cand"].get(f"/api/v1/conversations/{chat}/messages"), 200)
    assert page["items"][-1]["body"] == "Plain" and page["items"][-1]["attachments"] == []
    # Refused by content, as the API refuses it: an error page, nothing sent.
    count = len(page["items"])
    r = tess.client.post(
        f"/conversations/{chat}/messages",
        data={"csrf": tess.csrf, "body": "Look", "channel": "app"},
        files=[("file", ("cv.pdf", b"<html><script>x</script></html>", "application/pdf"))],
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert r.status_code == 415 and "cannot be sent" in r.text
    empty = tess.client.post(
        f"/conversations/{chat}/messages",
        data={"csrf": tess.csrf, "body": "Look", "channel": "app"},
        files=[("file", ("empty.txt", b"", "text/plain"))],
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert empty.status_code == 422
    page = body(world["cand"].get(f"/api/v1/conversations/{chat}/messages"), 200)
    assert len(page["items"]) == count
    # The API's own upload answers the same words for the same file.
    api = upload(world["emp_team"], chat, "cv.pdf", b"<html><script>x</script></html>")
    assert api.status_code == 415


def test_files_cannot_go_with_send_later(tess: Browser, world: World, chat: int) -> None:
    """As the API: a scheduled message takes no files yet, and says so (never drops them)."""
    r = tess.client.post(
        f"/conversations/{chat}/messages",
        data={"csrf": tess.csrf, "body": "Later", "channel": "app", "send_later": "tomorrow"},
        files=[("file", ("offer.pdf", PDF, "application/pdf"))],
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert r.status_code == 422 and "cannot be scheduled yet" in r.text
    assert body(world["emp_team"].get("/api/v1/scheduled-messages"), 200)["items"] == []
