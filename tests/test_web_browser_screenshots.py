"""The README's screenshots: the main pages as the demo personas see them, on a 390 x 844 phone
and a 1280 x 800 desktop, in the light and the dark theme (the screen as it opens, not the whole
page). They go to test-artifacts/screenshots/ on every run and, with JOBCHAT_DOCS_SCREENSHOTS=1,
to docs/screenshots/<page>-<phone|desktop>-<light|dark>.png, the names the README uses:

    JOBCHAT_DOCS_SCREENSHOTS=1 .venv/bin/pytest -q tests/test_web_browser_screenshots.py

Each page is checked before it is taken: what it is about is on the screen, it does not
scroll sideways, and the browser reported no errors.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    OMAR,
    SWE_JOB,
    TOM,
    Browsers,
    Device,
    SignIn,
    WebServer,
    assert_fits,
    composer,
    message,
    shot,
)
from tests.files_support import PDF

pytestmark = BROWSER_TESTS

SIZES: dict[str, Device] = {"phone": "phone-390x844", "desktop": "desktop"}
THEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")
# Wait for the theme's colours to settle (a colour transition would be caught half-way).
SETTLED_JS = """() => Promise.all(document.getAnimations()
  .filter((a) => a instanceof CSSTransition)
  .map((a) => a.finished.catch(() => null)))"""


@dataclass(frozen=True)
class Screen:
    """A README picture: its file name's start, who looks, where (``{conv}``: their
    conversation of ``kind``), and what must be on the screen."""

    name: str
    who: str
    path: str
    shows: str
    kind: str = ""
    # A part further down the page to show at the top of the picture (CSS selector).
    scroll: str = ""
    # What the person does first, once the page shows what it is about (opens a picker...).
    open: Callable[[Page], None] | None = None


def choose_template(name: str, filled: str) -> Callable[[Page], None]:
    """Choose ``name`` in the composer's picker (its "Templates" button), so the message box
    holds it filled in for this conversation (starting with ``filled``), then open the picker
    again: one picture of both."""

    def choose(page: Page) -> None:
        form = composer(page)
        picker = form.get_by_role("listbox", name="Templates")
        form.get_by_role("button", name="Templates").click()
        picker.get_by_role("option", name=name).click()
        expect(form.get_by_label("Message", exact=True)).to_have_value(re.compile(f"^{filled}"))
        form.get_by_role("button", name="Templates").click()
        expect(picker).to_be_visible()

    return choose


# A bulk message to three of Northwind Health's applicants (Hannah, Derek and Maria), written
# with merge fields: the composer previews it filled in for the first.
BULK_DRAFT = urlencode(
    [("application", a) for a in ("app-psc-hannah", "app-psc-derek", "app-icu-maria")]
    + [
        (
            "body",
            "Hi {{candidate.first_name | there}}, thank you for applying for {{job.title}}! "
            "We are holding short video calls next week to get to know our applicants: reply "
            "here with a day and time that suit you.\n\n"
            "{{sender.first_name}}, {{sender.organization}}",
        )
    ]
)

SCREENS = [
    Screen("inbox", MARCUS, "/inbox", "Hannah Lee"),
    Screen(
        "conversation",
        MARCUS,
        "/conversations/{conv}",
        "Let's do Friday at 9:30am Central.",
        kind="application",
    ),
    Screen("candidates", MARCUS, "/candidates", "Derek Thompson"),
    Screen("candidate-profile", MARCUS, "/candidates/cand-hannah?tab=messages", "Hannah Lee"),
    Screen(
        "job-chats",
        TOM,
        f"/jobs/{SWE_JOB}?tab=chats&open={{conv}}",
        "serviced apartment in Southbank",
        kind="job_relocation",
    ),
    Screen("candidate-portal", OMAR, "/portal", "Senior Software Engineer"),
    Screen(
        "candidate-conversation",
        OMAR,
        "/conversations/{conv}",
        "My visa application was lodged this morning!",
        kind="job_relocation",
    ),
    Screen("settings", OMAR, "/settings", "Quiet hours", scroll="#notifications-title"),
    Screen("offline", OMAR, "/offline", "You\u2019re offline"),
    Screen("templates", TOM, "/templates", "Interview invitation"),
    Screen(
        "template-picker",
        TOM,
        "/conversations/{conv}",
        "Confirmed for Wednesday.",
        kind="case",
        open=choose_template("Checking in", "Hi Yonas, just checking in"),
    ),
    Screen("scheduled", MARCUS, "/scheduled", "Hi Hannah, Marcus Bell here"),
    Screen(
        "bulk-compose",
        MARCUS,
        f"/bulk/new?{BULK_DRAFT}",
        "Hi Hannah, thank you for applying for Patient Services Coordinator",
        scroll="label[for=bulk-subject]",
    ),
]


def subject(page: Page, screen: Screen) -> Locator:
    if screen.kind:
        return message(page, screen.shows)
    return page.get_by_role("main").get_by_text(screen.shows).first


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
def test_readme_screenshot(
    web: WebServer, browsers: Browsers, sign_in: SignIn, screen: Screen, size: str
) -> None:
    page = browsers.open(SIZES[size])
    conv = web.conversation_of(screen.who, screen.kind) if screen.kind else 0
    sign_in(page, screen.who, next=screen.path.format(conv=conv))
    expect(subject(page, screen)).to_be_visible()
    if screen.open is not None:
        screen.open(page)
    if screen.scroll:
        # Just below the sticky top bar.
        page.locator(screen.scroll).evaluate(
            "(e) => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY - 72)"
        )
    assert_fits(page)
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        page.evaluate(SETTLED_JS)
        shot(page, f"{screen.name}-{size}-{theme}", docs=True, full_page=False)
        # The picture is of the theme its name says (a page the dark theme does not reach
        # would show light colours under a "-dark" name).
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        light = sum(int(v) for v in re.findall(r"\d+", background)[:3]) > 3 * 128
        assert light == (theme == "light"), f"{theme} theme; the body is {background}"


# --- attachments and search (issue 18) --------------------------------------------------------


def permit_photo() -> bytes:
    """A phone photo of a document, drawn: a card with a photo box and lines of text."""
    image = Image.new("RGB", (1200, 900), (92, 110, 128))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((120, 110, 1080, 790), radius=36, fill=(236, 240, 232))
    draw.rectangle((120, 110, 1080, 220), fill=(36, 87, 197))
    draw.rounded_rectangle((180, 280, 440, 600), radius=12, fill=(196, 206, 220))
    draw.ellipse((250, 320, 370, 440), fill=(150, 160, 176))
    draw.rounded_rectangle((220, 450, 400, 600), radius=60, fill=(150, 160, 176))
    for n, width in enumerate((520, 440, 480, 360, 300)):
        top = 300 + n * 70
        draw.rounded_rectangle((500, top, 500 + width, top + 28), radius=14, fill=(120, 130, 146))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def upload_as(web: WebServer, token: str, conv: int, name: str, data: bytes, kind: str) -> int:
    response = web.http.post(
        f"/api/v1/conversations/{conv}/attachments",
        files={"file": (name, data, kind)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    found: int = response.json()["id"]
    return found


def themed_shots(page: Page, name: str) -> None:
    assert_fits(page)
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        page.evaluate(SETTLED_JS)
        shot(page, f"{name}-{theme}", docs=True, full_page=False)


@pytest.fixture(scope="module")
def amara(web: WebServer) -> int:
    """A chat in which the candidate sent a photo of her permit and her CV (one for both
    sizes, so the search finds each message once)."""
    applicant = web.new_applicant("Amara Okafor")
    conv = web.application_chat(applicant)
    them = web.sender(applicant.ext_id)
    ask = "Thanks for applying, Amara! Could you send your CV and a photo of your work permit?"
    web.send(web.sender(MARCUS), conv, ask)
    cv = upload_as(web, them.token, conv, "Amara Okafor CV.pdf", PDF, "application/pdf")
    photo = upload_as(web, them.token, conv, "work-permit.jpg", permit_photo(), "image/jpeg")
    web.send(them, conv, "Here they are. The permit is valid until 2028.", attachments=[photo, cv])
    return conv


@pytest.mark.parametrize("size", SIZES)
def test_attachment_and_search_screenshots(
    amara: int, browsers: Browsers, sign_in: SignIn, size: str
) -> None:
    """The thread with a photo and a CV, the composer with two files, the search results."""
    conv = amara
    page = browsers.open(SIZES[size])
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    expect(message(page, "The permit is valid").locator(".att-image img")).to_be_visible()
    page.locator("#messages li.message .att-image img").last.evaluate("(img) => img.decode()")
    themed_shots(page, f"thread-attachments-{size}")

    # Two files in the composer: a photo and a PDF, both uploaded.
    form = composer(page)
    files: list[FilePayload] = [
        {"name": "Offer letter.pdf", "mimeType": "application/pdf", "buffer": PDF},
        {"name": "office-map.jpg", "mimeType": "image/jpeg", "buffer": permit_photo()},
    ]
    form.locator("input[type=file]").set_input_files(files=files)
    chips = page.get_by_role("list", name="Files to send").get_by_role("listitem")
    expect(chips.filter(has_text="Ready")).to_have_count(2)
    form.get_by_label("Message", exact=True).fill("Great, thank you! Here is your offer letter.")
    themed_shots(page, f"composer-attachments-{size}")

    page.goto("/search?q=permit")
    expect(page.get_by_role("list", name="Results").get_by_role("listitem").first).to_be_visible()
    themed_shots(page, f"search-{size}")
