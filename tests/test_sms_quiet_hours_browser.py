"""The hold line in Chromium: a text held for the candidate's night reads as such in the
recruiter's thread, on a 390 x 844 phone and a 1280 x 800 desktop, in the light and the dark
theme, without scrolling sideways (screenshots in test-artifacts/screenshots/)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    Browsers,
    Device,
    SignIn,
    WebServer,
    assert_fits,
    message,
    shot,
)

pytestmark = BROWSER_TESTS

HELD_TEXT = "Are you free for a call tomorrow morning?"
SETTLED_JS = """() => Promise.all(document.getAnimations()
  .filter((a) => a instanceof CSSTransition)
  .map((a) => a.finished.catch(() => null)))"""


def night_zone(now: datetime) -> str:
    """A zone where it is about 02:00 now (the server runs on the real clock): an hour either
    way is still the night of the default window. Never Marcus's own offset (Chicago), or the
    line would say "Sam's time and yours", as it rightly does then: 03:00 instead."""
    marcus = now.astimezone(ZoneInfo("America/Chicago")).utcoffset()
    offset = (2 - now.hour) % 24
    if offset > 14:  # the zones run from UTC-12 to UTC+14
        offset -= 24
    if marcus is not None and timedelta(hours=offset) == marcus:
        offset += 1
    # POSIX signs in the Etc names: Etc/GMT-5 is five hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def held_text_chat(web: WebServer) -> int:
    """Marcus's chat with a new applicant who takes texts and for whom it is night: his text
    is held for their morning. Its conversation's id."""
    applicant = web.new_applicant(
        "Sam Rivera",
        phone="+14155550177",
        sms_consent=True,
        timezone=night_zone(datetime.now(UTC)),
    )
    conv = web.application_chat(applicant)
    sent = web.send(MARCUS, conv, HELD_TEXT, channel="sms")
    assert [d["status"] for d in sent["deliveries"]] == ["held"], sent
    return conv


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("device", ["phone-390x844", "desktop"])
def test_the_thread_says_when_a_held_text_goes_out(
    web: WebServer,
    browsers: Browsers,
    sign_in: SignIn,
    device: Device,
    theme: Literal["light", "dark"],
) -> None:
    conv = held_text_chat(web)
    page = browsers.open(device)
    page.emulate_media(color_scheme=theme)
    sign_in(page, MARCUS, f"/conversations/{conv}")
    item = message(page, HELD_TEXT)
    held = item.locator(".delivery-held")
    expect(held).to_be_visible()
    expect(held).to_have_text(
        re.compile(
            r"^SMS held for quiet hours until \w{3} 08:00 Sam's time \(\w{3} \d\d:\d\d yours\)$"
        )
    )
    # The whole date, in the recruiter's zone, on hover and for assistive technology.
    expect(held.locator("time")).to_have_attribute("title", re.compile(r"\d{4}, \d\d:\d\d"))
    item.scroll_into_view_if_needed()
    page.evaluate(SETTLED_JS)
    assert_fits(page)
    shot(page, f"sms-held-{device}-{theme}", full_page=False)
