"""The look in a real browser: the frame on a phone (one row, targets a thumb can hit, the
selected tab and the badge visible), the inbox's chips and rows, the dark theme and reduced
motion actually applied, and the keyboard shortcuts doing what the help says (never while
typing)."""

from __future__ import annotations

import itertools
import re

import pytest
from playwright.sync_api import FloatRect, Locator, Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    HANNAH,
    MARCUS,
    OMAR,
    TOUCH_PX,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    box,
    shot,
)

pytestmark = BROWSER_TESTS

PHONES = [(375, 667), (390, 844)]


def assert_target(locator: Locator, width: int, what: str) -> FloatRect:
    """At least 44x44 CSS px and wholly inside the viewport's width."""
    b = box(locator)
    assert b["width"] >= TOUCH_PX and b["height"] >= TOUCH_PX, (
        f"{what} is {b['width']}x{b['height']}"
    )
    assert b["x"] >= 0 and b["x"] + b["width"] <= width, f"{what} is cut off at {width} px: {b}"
    return b


def assert_frame(page: Page, width: int) -> None:
    """One row: brand, every navigation link, the account menu; the current tab marked."""
    topbar = box(page.locator("header.topbar"))
    assert topbar["height"] <= 64, f"the top bar is {topbar['height']} px tall at {width} px"
    brand = assert_target(page.locator(".topbar .brand"), width, "the brand")
    menu = assert_target(page.locator(".whoami summary"), width, "the account menu")
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    tops = {round(box(link)["y"]) for link in links.all()}
    assert len(tops) == 1, f"the navigation wraps into {len(tops)} rows at {width} px"
    boxes = [assert_target(link, width, f"nav link {link.inner_text()!r}") for link in links.all()]
    # Left to right without overlapping: brand, the links, the menu.
    edges = [brand, *boxes, menu]
    for left, right in itertools.pairwise(edges):
        assert left["x"] + left["width"] <= right["x"] + 0.5, (left, right)
    current = page.locator(".mainnav a[aria-current='page']")
    expect(current).to_have_count(1)
    other = page.locator(".mainnav a:not([aria-current])").first
    colour = "e => getComputedStyle(e).color"
    assert current.evaluate(colour) != other.evaluate(colour), "the current tab is not marked"


@pytest.mark.parametrize(("width", "height"), PHONES, ids=[f"{w}x{h}" for w, h in PHONES])
def test_phone_inbox_frame_chips_and_rows(
    browsers: Browsers, sign_in: SignIn, width: int, height: int
) -> None:
    page = browsers.open("phone")
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, MARCUS, next="/inbox")
    expect(page.get_by_role("list", name="Conversations")).to_be_visible()
    assert_frame(page, width)
    # The unread badge shows on the Inbox tab, inside the screen.
    badge = page.locator("#unread-badge")
    expect(badge).to_be_visible()
    b = box(badge)
    assert b["x"] + b["width"] <= width and b["y"] >= 0
    chips = page.get_by_role("navigation", name="Filters").get_by_role("link").all()
    tops = {
        round(assert_target(chip, width, f"filter {chip.inner_text()!r}")["y"]) for chip in chips
    }
    assert len(tops) == 1, f"the filter chips wrap at {width} px"
    rows = page.locator("#inbox .row-link")
    assert rows.count() >= 3
    texts = []
    for row in rows.all():
        assert_target(row, width, "an inbox row")
        who = row.locator(".row-who")
        kind = row.locator(".kind-chip")
        expect(who).to_be_visible()
        expect(kind).to_be_visible()
        expect(row.locator(".avatar")).to_be_visible()
        texts.append((who.inner_text(), kind.inner_text()))
    # What a person sees tells the rows apart (who and kind are never cut to the same text).
    assert len(set(texts)) == len(texts), texts
    assert_fits(page)
    shot(page, f"look-inbox-{width}x{height}")


def test_candidate_phone_frame_and_the_account_menu(browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open("phone")
    page.set_viewport_size({"width": 375, "height": 667})
    sign_in(page, OMAR, next="/portal")
    assert_frame(page, 375)
    sign_out = page.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_hidden()
    page.locator(".whoami summary", has_text="Account: Omar Al-Sayed").click()
    expect(sign_out).to_be_visible()
    assert_target(sign_out, 375, "Sign out")
    panel = box(page.locator(".whoami-panel"))
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 375
    assert_fits(page)


def test_dark_theme_and_reduced_motion_are_applied(browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open()
    sign_in(page, MARCUS, next="/inbox")
    row = page.locator("#inbox .row-link").first
    expect(row).to_be_visible()
    # Desktop: the same frame in one row, and the list at the shared reading width.
    assert_frame(page, 1280)
    main = box(page.locator("main"))
    assert main["width"] == 960 and abs(main["x"] - (1280 - 960) / 2) <= 1, main

    def looks() -> dict[str, str]:
        result: dict[str, str] = page.evaluate(
            """() => ({
                body: getComputedStyle(document.body).backgroundColor,
                ink: getComputedStyle(document.body).color,
                card: getComputedStyle(document.querySelector('#inbox ul')).backgroundColor,
                scheme: getComputedStyle(document.documentElement).colorScheme,
            })"""
        )
        return result

    # (One feature per call: Chromium restyles after only one of two given together.)
    page.emulate_media(color_scheme="light")
    light = looks()
    assert light["body"] == "rgb(245, 247, 250)"
    assert row.evaluate("e => getComputedStyle(e).transitionDuration") == "0.15s"
    shot(page, "look-inbox-desktop-light")
    page.emulate_media(color_scheme="dark")
    page.emulate_media(reduced_motion="reduce")
    # Chromium restyles for a new media feature on its next frame.
    page.wait_for_function(
        "() => getComputedStyle(document.body).backgroundColor === 'rgb(15, 20, 29)'"
    )
    dark = looks()
    assert dark["ink"] != light["ink"] and dark["card"] != light["card"]
    assert light["scheme"] == dark["scheme"] == "light dark"
    # Reduced motion: transitions (and animations) are over at once.
    assert row.evaluate("e => parseFloat(getComputedStyle(e).transitionDuration)") < 0.001
    shot(page, "look-inbox-desktop-dark")


def test_keyboard_shortcuts(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open()
    sign_in(page, MARCUS, next="/inbox")
    rows = page.locator("#inbox .row-link")
    expect(rows.first).to_be_visible()
    focused = "() => document.activeElement && document.activeElement.getAttribute('href')"
    href = [rows.nth(i).get_attribute("href") for i in range(3)]

    # j / k and Alt+arrows move through the list; only the current row is in the tab order.
    page.keyboard.press("j")
    assert page.evaluate(focused) == href[0]
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate(focused) == href[2]
    page.keyboard.press("k")
    assert page.evaluate(focused) == href[1]
    page.keyboard.press("Alt+ArrowUp")
    assert page.evaluate(focused) == href[0]
    page.keyboard.press("Alt+ArrowDown")
    assert page.evaluate(focused) == href[1]
    assert rows.evaluate_all("rs => rs.map(r => r.tabIndex)")[:3] == [-1, 0, -1]
    # Ctrl or Meta with the key is the browser's, not ours.
    page.keyboard.press("Control+j")
    assert page.evaluate(focused) == href[1]

    # A live redraw of the list (a new message moves its row to the top) keeps the focus on
    # the same conversation.
    row_of = "() => document.activeElement.closest('[data-conversation]').dataset.conversation"
    before = page.evaluate(row_of)
    hannah = page.locator("#inbox li").filter(has=page.locator(".row-who", has_text="Hannah Lee"))
    web.send(HANNAH, int(hannah.get_attribute("data-conversation") or 0), "Friday works!")
    expect(hannah.locator(".row-preview")).to_contain_text("Friday works!")
    assert page.evaluate(row_of) == before

    # "/" goes to the search, and while typing there no shortcut fires.
    page.keyboard.press("/")
    search = page.get_by_label("Search conversations")
    expect(search).to_be_focused()
    page.keyboard.type("gij?")
    expect(search).to_have_value("gij?")
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.locator("#shortcuts")).to_be_hidden()
    search.fill("")
    search.blur()

    # "?" shows the list of shortcuts in a modal dialog; Escape closes it.
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    d = box(dialog)
    assert d["x"] >= 0 and d["x"] + d["width"] <= 1280 and d["y"] >= 0
    page.keyboard.press("j")  # the list behind the dialog stays put
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Enter opens the focused conversation; "c" puts the cursor in its composer.
    rows.nth(1).focus()
    target = rows.nth(1).get_attribute("href") or ""
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(target) + "$"))
    composer = page.locator("#composer textarea")
    expect(composer).to_be_visible()
    expect(composer).not_to_be_focused()
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("c")
    expect(composer).to_be_focused()
    page.keyboard.type("g")  # typed into the composer, not a shortcut
    expect(composer).to_have_value(re.compile("g$"))
    composer.fill("")
    composer.blur()

    # "g" then a letter goes places.
    for key, path in (("c", "/candidates"), ("j", "/jobs"), ("i", "/inbox")):
        page.keyboard.press("g")
        page.keyboard.press(key)
        expect(page).to_have_url(re.compile(f"{path}$"))
        page.wait_for_load_state()  # keys.js (deferred) is listening again
