"""Scheduled send in Chromium: "Send later" in the composer (a preset and a picked time, shown
in the viewer's own zone), the scheduled message under the thread for its author alone,
cancelling it there, its redraw when the thread's live updates come, and the /scheduled page
(edit, cancel with a confirmation) on a phone and a desktop, light and dark."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    composer,
    messages,
    shot,
)

pytestmark = BROWSER_TESTS

LIST = "/api/v1/scheduled-messages"


def mine(web: WebServer, conv: int, **params: str) -> list[dict[str, Any]]:
    """Marcus's scheduled messages in ``conv`` (the server is shared by the module's tests)."""
    query = "&".join(f"{k}={v}" for k, v in {"limit": "500", **params}.items())
    items = web.call("GET", f"{LIST}?{query}", token=web.token(MARCUS))["items"]
    return [s for s in items if s["conversation"] == conv]


def zone_of(web: WebServer) -> ZoneInfo:
    return ZoneInfo(web.call("GET", "/api/v1/me", token=web.token(MARCUS))["timezone"])


def strip(page: Page) -> Any:
    return page.get_by_role("list", name="Your scheduled messages")


def send_later(page: Page) -> Any:
    return composer(page).get_by_role("button", name="Schedule", exact=True)


def test_send_later_from_the_composer_shows_it_scheduled_and_cancel_takes_it_back(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    page = browsers.open()
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    form = composer(page)
    form.get_by_label("Message", exact=True).fill("Good morning! Are you free for a call today?")
    send_later(page).click()
    panel = form.get_by_role("group", name="Send later")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("radio", name=re.compile("^Monday 08:00"))).to_be_visible()
    shot(page, "schedule-composer-menu-desktop", full_page=False)
    panel.get_by_role("radio", name=re.compile("^Tomorrow 08:00")).check()
    expect(panel).to_be_hidden()
    chosen = form.locator("[data-schedule-chosen]")
    expect(chosen).to_contain_text(re.compile(r"Will be sent \w{3} \d{1,2} \w{3}, 08:00"))
    form.get_by_role("button", name="Send later", exact=True).click()

    item = strip(page).get_by_role("listitem")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(re.compile(r"Scheduled for \w{3} \d{1,2} \w{3}, 08:00"))
    expect(item).to_contain_text("Are you free for a call today?")
    expect(form.get_by_label("Message", exact=True)).to_have_value("")
    expect(form.get_by_role("button", name="Send", exact=True)).to_be_visible()
    expect(messages(page)).to_have_count(0)
    [scheduled] = mine(web, conv, status="scheduled")
    local = datetime.fromisoformat(scheduled["send_at"]).astimezone(zone_of(web))
    assert (local.hour, local.minute) == (8, 0)
    assert local.date() == (datetime.now(UTC).astimezone(zone_of(web)) + timedelta(days=1)).date()
    assert_fits(page)
    shot(page, "schedule-thread-desktop")
    page.emulate_media(color_scheme="dark")
    shot(page, "schedule-thread-desktop-dark")
    page.emulate_media(color_scheme="light")

    # The candidate sees nothing of it.
    candidate = browsers.open("phone-390x844")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    expect(candidate.locator("#composer")).to_be_visible()
    expect(candidate.locator(".scheduled-item")).to_have_count(0)

    # Cancel asks first; "Keep it" keeps it.
    item.get_by_role("button", name="Cancel").click()
    dialog = page.get_by_role("dialog", name="Cancel this scheduled message?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    expect(item).to_have_count(1)
    item.get_by_role("button", name="Cancel").click()
    dialog.get_by_role("button", name="Cancel message").click()
    expect(item).to_have_count(0)
    assert [s["status"] for s in mine(web, conv)] == ["cancelled"]


def test_a_picked_time_and_the_redraw_when_the_thread_moves_on(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    page = browsers.open("phone-390x844")
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    form = composer(page)
    form.get_by_label("Message", exact=True).fill("Your offer letter is attached.")
    send_later(page).click()
    panel = form.get_by_role("group", name="Send later")
    panel.get_by_role("radio", name="Pick a date and time").check()
    day = (datetime.now(UTC).astimezone(zone_of(web)) + timedelta(days=3)).date()
    panel.get_by_label("Date and time to send").fill(f"{day.isoformat()}T14:30")
    shot(page, "schedule-composer-custom-phone", full_page=False)
    page.emulate_media(color_scheme="dark")
    shot(page, "schedule-composer-custom-phone-dark", full_page=False)
    page.emulate_media(color_scheme="light")
    expect(form.locator("[data-schedule-chosen]")).to_contain_text(f"{day.day} ")
    expect(form.locator("[data-schedule-chosen]")).to_contain_text("14:30")
    assert_fits(page)
    page.keyboard.press("Escape")
    form.get_by_role("button", name="Send later", exact=True).click()
    item = strip(page).get_by_role("listitem")
    expect(item).to_contain_text("14:30")
    [scheduled] = mine(web, conv, status="scheduled")
    local = datetime.fromisoformat(scheduled["send_at"]).astimezone(zone_of(web))
    assert (local.date(), local.hour, local.minute) == (day, 14, 30)
    shot(page, "schedule-thread-phone", full_page=False)
    assert_fits(page)

    # Cancelled elsewhere: the next live update of the thread redraws the list.
    web.call("DELETE", f"{LIST}/{scheduled['id']}", token=web.token(MARCUS))
    web.send(applicant.ext_id, conv, "Thank you!")
    expect(messages(page)).to_have_count(1)
    expect(item).to_have_count(0)


def test_the_scheduled_page_edits_and_cancels(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    for text, ahead in (("Reminder: interview tomorrow", 1), ("How did the interview go?", 2)):
        web.send(MARCUS, conv, text, send_at=(soon + timedelta(days=ahead)).isoformat())
    for device in ("desktop", "phone-390x844"):
        page = browsers.open(device)
        sign_in(page, MARCUS, next="/inbox")
        shot(page, f"schedule-inbox-link-{device}", full_page=False)
        page.get_by_role("link", name="Scheduled", exact=True).click()
        expect(page.get_by_role("heading", name="Scheduled messages", level=1)).to_be_visible()
        expect(page.locator(".scheduled-card").filter(has_text=applicant.name)).to_have_count(2)
        assert_fits(page)
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            shot(page, f"schedule-page-{device}-{theme}")
        page.emulate_media(color_scheme="light")

    card = page.locator(".scheduled-card").filter(has_text="Reminder: interview tomorrow")
    card.get_by_role("button", name="Edit").click()
    day = (datetime.now(UTC).astimezone(zone_of(web)) + timedelta(days=4)).date()
    card.get_by_label("Send at").fill(f"{day.isoformat()}T09:15")
    card.get_by_label("Message").fill("Reminder: your interview is on Friday.")
    shot(page, "schedule-page-edit-phone")
    card.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Your changes are saved.")).to_be_visible()
    edited = next(s for s in mine(web, conv) if s["body"].startswith("Reminder"))
    assert edited["body"] == "Reminder: your interview is on Friday."
    local = datetime.fromisoformat(edited["send_at"]).astimezone(zone_of(web))
    assert (local.date(), local.hour, local.minute) == (day, 9, 15)

    card = page.locator(".scheduled-card").filter(has_text="How did the interview go?")
    card.get_by_role("button", name="Cancel message").click()
    dialog = page.get_by_role("dialog", name="Cancel this message?")
    expect(dialog).to_be_visible()
    shot(page, "schedule-page-confirm-phone", full_page=False)
    dialog.get_by_role("button", name="Cancel message").click()
    expect(page.get_by_text("The message was cancelled: it will not be sent.")).to_be_visible()
    statuses = {s["body"]: s["status"] for s in mine(web, conv)}
    assert statuses["How did the interview go?"] == "cancelled"
    page.get_by_role("link", name="Cancelled", exact=True).click()
    expect(page.locator(".scheduled-card").filter(has_text=applicant.name)).to_have_count(1)
    shot(page, "schedule-page-cancelled-phone")
