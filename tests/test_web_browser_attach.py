"""Attachments in a browser: files dropped on the thread (a real DataTransfer carrying a File,
dispatched as dragenter / dragover / drop) and pasted into the message box (a ClipboardEvent
carrying a PNG) upload at once and show as chips with their state; a refused file says why on
its chip, and can be removed; Send works with files alone; the recipient sees the thumbnail
and the card and downloads the file; axe finds nothing with chips in the composer."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    axe,
    axe_report,
    composer,
    message,
)
from tests.files_support import PDF, image_bytes

pytestmark = BROWSER_TESTS

# A File (name, type, base64 bytes) made in the page, in a DataTransfer.
_TRANSFER_JS = """(files) => {
  const transfer = new DataTransfer();
  for (const [name, type, data] of files) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, { type }));
  }
  return transfer;
}"""

_PASTE_JS = """([field, transfer]) => {
  const init = { clipboardData: transfer, bubbles: true, cancelable: true };
  const event = new ClipboardEvent("paste", init);
  field.dispatchEvent(event);
  return event.defaultPrevented;
}"""


def _files(files: list[tuple[str, str, bytes]]) -> list[list[str]]:
    return [[name, kind, base64.b64encode(data).decode()] for name, kind, data in files]


def drop_files(page: Page, target: Locator, files: list[tuple[str, str, bytes]]) -> None:
    """Drag ``files`` over ``target`` and drop them, as the browser's events do."""
    transfer = page.evaluate_handle(_TRANSFER_JS, _files(files))
    target.dispatch_event("dragenter", {"dataTransfer": transfer})
    target.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(page.locator("#thread")).to_have_class(re.compile(r"\bdragging\b"))
    target.dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.locator("#thread")).not_to_have_class(re.compile(r"\bdragging\b"))


def paste_file(page: Page, field: Locator, name: str, kind: str, data: bytes) -> bool:
    transfer = page.evaluate_handle(_TRANSFER_JS, _files([(name, kind, data)]))
    prevented: bool = page.evaluate(_PASTE_JS, [field.element_handle(), transfer])
    return prevented


def chip(page: Page, name: str) -> Locator:
    return (
        page.get_by_role("list", name="Files to send").get_by_role("listitem").filter(has_text=name)
    )


def fetch_as(web: WebServer, token: str, path: str) -> httpx.Response:
    response: httpx.Response = web.http.get(path, headers={"Authorization": f"Bearer {token}"})
    return response


PHOTO = image_bytes("PNG", (640, 480))


def test_drop_and_paste_upload_then_send_files_the_recipient_sees(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Could you send your CV and a copy of your permit?")

    page = browsers.open("desktop", bypass_csp=True)
    sign_in(page, applicant.ext_id, next=f"/conversations/{conv}")
    expect(message(page, "Could you send your CV")).to_be_visible()
    form = composer(page)
    send = form.get_by_role("button", name="Send", exact=True)

    # Dropped on the history: uploads at once, a chip with its name, size and state.
    drop_files(page, page.locator("#scroller"), [("CV Jane.pdf", "application/pdf", PDF)])
    cv = chip(page, "CV Jane.pdf")
    expect(cv).to_contain_text("Ready")
    expect(cv).to_contain_text("bytes")
    # Pasted into the message box: an image, previewed from the file itself.
    field = form.get_by_label("Message", exact=True)
    before = datetime.now(ZoneInfo("America/Chicago"))  # the test browsers' zone
    assert paste_file(page, field, "image.png", "image/png", PHOTO)
    after = datetime.now(ZoneInfo("America/Chicago"))
    photo = chip(page, "Pasted image")
    # Named with the time on the person's clock (not UTC).
    hours = "|".join(re.escape(f"{t:%Y-%m-%d %H}") for t in (before, after))
    expect(photo.locator(".chip-name")).to_have_text(
        re.compile(rf"^Pasted image ({hours})\.\d\d\.\d\d\.png$")
    )
    expect(photo).to_contain_text("Ready")
    expect(photo.locator("img")).to_have_attribute("src", re.compile("^blob:"))
    # A refused file (a page named .pdf): a short reason on the chip, the full one as the
    # buttons' description, no Retry (the same file would be refused again): only Remove.
    refused: FilePayload = {"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"<html>"}
    form.locator("input[type=file]").set_input_files(files=[refused])
    bad = chip(page, "notes.pdf")
    expect(bad.locator(".chip-note")).to_have_text("Not a real PDF")
    remove_bad = bad.get_by_role("button", name="Remove notes.pdf")
    expect(remove_bad).to_have_accessible_description(
        "This isn\u2019t a real PDF: its contents are another kind of file."
    )
    expect(bad.get_by_role("button", name="Retry notes.pdf")).to_be_hidden()
    expect(form.locator("[data-attach-status]")).to_have_text(
        "1 file could not be attached; 2 files ready."
    )
    # Over the limit: refused at once, in the limit's own words, without a request.
    uploads: list[str] = []
    page.on(
        "request",
        lambda r: uploads.append(r.url) if r.method == "POST" and "/attachments" in r.url else None,
    )
    big: FilePayload = {
        "name": "scan of a very long document name that will not fit on the chip.pdf",
        "mimeType": "application/pdf",
        "buffer": PDF + b" " * (10 * 1024 * 1024),
    }
    form.locator("input[type=file]").set_input_files(files=[big])
    huge = chip(page, "scan of a very long")
    expect(huge.locator(".chip-note")).to_have_text("Over the 10 MB limit")
    expect(huge.locator(".name-ext")).to_have_text(".pdf")
    expect(huge.get_by_role("button", name=re.compile("^Retry"))).to_be_hidden()
    assert uploads == []
    # Sending waits until nothing is wrong with the files.
    send.click()
    expect(form.locator(".form-error")).to_contain_text("did not upload")
    found = axe(page)
    assert not found, axe_report(found)
    assert_fits(page)
    # Removing one failed file leaves the complaint (another is still there); the last
    # clears it.
    remove_bad.click()
    expect(bad).to_have_count(0)
    expect(form.locator(".form-error")).to_contain_text("did not upload")
    huge.get_by_role("button", name=re.compile("^Remove")).click()
    expect(huge).to_have_count(0)
    expect(form.locator(".form-error")).to_be_hidden()

    # Files alone: the text is not required.
    send.click()
    sent = page.locator("#messages li.message.mine").last
    expect(sent.locator(".att-card")).to_contain_text("CV Jane.pdf")
    expect(sent.locator(".att-image img")).to_be_visible()
    expect(sent.locator("p.body")).to_have_count(0)
    expect(page.get_by_role("list", name="Files to send").get_by_role("listitem")).to_have_count(0)

    # Marcus: the thumbnail (a real image, sized before it loads) and the card, live.
    other = browsers.open("desktop")
    sign_in(other, MARCUS, next=f"/conversations/{conv}")
    theirs = other.locator("#messages li.message.theirs").last
    image = theirs.locator(".att-image img")
    expect(image).to_be_visible()
    # Sized before it loads, so visible can come first: wait for the pixels themselves.
    other.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    assert image.get_attribute("width") == "240" and image.get_attribute("height") == "180"
    expect(theirs.locator(".att-card")).to_contain_text("PDF")
    # The lightbox shows the image itself; Escape closes it.
    image.click()
    box = other.get_by_role("dialog", name="Pasted image")
    expect(box).to_be_visible()
    other.keyboard.press("Escape")
    expect(box).to_be_hidden()
    # The file, downloaded as him: the bytes the candidate sent.
    ids = [
        int(i)
        for i in theirs.locator("[data-attachment-id]").evaluate_all(
            "(els) => els.map((e) => e.dataset.attachmentId)"
        )
    ]
    token = web.token(MARCUS)
    got = fetch_as(web, token, f"/api/v1/attachments/{ids[0]}")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment")
    # Arrives live too: the candidate sends one more while Marcus looks.
    drop_files(page, composer(page), [("Reference.pdf", "application/pdf", PDF)])
    expect(chip(page, "Reference.pdf")).to_contain_text("Ready")
    field.fill("And a reference")
    send.click()
    expect(message(other, "And a reference").locator(".att-card")).to_contain_text("Reference.pdf")
