"""Starting chats from the pages alone (never the API), as the demo's people, on a phone
(390 x 844, touch) and a desktop (1280 x 800): the case chat from a candidate's profile and from
a job, a partner chat from a job's page, an agency user's candidates, the SMS choice that says
why it is unavailable, and settings' inline error. Boxes are measured: the start composer and
its controls inside the viewport, every target at least 44 x 44 px.

The test's own applicants (``web.new_applicant``) keep what it expects independent of the other
modules' tests.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, ViewportSize, expect

from jobchat.demo import QA, TBB
from tests.browser_support import (
    BROWSER_TESTS,
    LAYLA,
    MARCUS,
    RACHEL,
    TOM,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    composer,
    message,
    shot,
)

pytestmark = BROWSER_TESTS

PHONE = ViewportSize(width=390, height=844)
SMALL_PHONE = ViewportSize(width=375, height=667)
TARGET = 44  # CSS px, both ways


def assert_target(page: Page, control: Locator) -> None:
    """The control is inside the viewport horizontally and at least 44 x 44 px."""
    control.scroll_into_view_if_needed()
    box = control.bounding_box()
    assert box is not None, control
    viewport = page.viewport_size
    assert viewport is not None
    label = control.inner_text() or control.get_attribute("aria-label") or str(control)
    assert box["height"] >= TARGET and box["width"] >= TARGET, (label, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5, (label, box)


def assert_composer_fits(page: Page) -> None:
    """The start composer's card and its controls lie inside the viewport's width, and each
    control is a full-sized target."""
    viewport = page.viewport_size
    assert viewport is not None
    card = page.locator(".start-composer")
    box = card.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    assert_target(page, page.get_by_label("First message"))
    assert_target(page, page.get_by_role("button", name="Send and start chat"))
    assert_target(page, page.get_by_role("link", name="Cancel"))
    assert_fits(page)


def assert_chat_fits_the_screen(page: Page) -> None:
    """The open chat's composer (field and Send) lies inside the viewport with the page not
    scrolled and not scrollable, and its history is no sliver."""
    viewport = page.viewport_size
    assert viewport is not None
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.scrollingElement.scrollHeight") <= viewport["height"]
    for part in (composer(page).locator("textarea"), composer(page).locator("button.send")):
        box = part.bounding_box()
        assert box is not None, part
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (part, box)
    history = page.locator("#thread .scroller").bounding_box()
    assert history is not None and history["height"] >= 250, history


def send_first_message(page: Page, text: str) -> None:
    page.get_by_label("First message").fill(text)
    page.get_by_role("button", name="Send and start chat").click()
    expect(composer(page)).to_be_visible()
    expect(message(page, text)).to_contain_class("mine")


def test_a_case_chat_from_the_profile_on_a_phone_and_from_the_job_on_a_desktop(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    first = web.new_applicant(source_partner=TBB)
    second = web.new_applicant(source_partner=TBB)

    # Marcus, on his phone: candidate list → profile → "Start chat" on the case chat.
    phone = browsers.open("phone")
    phone.set_viewport_size(PHONE)
    sign_in(phone, MARCUS, next="/candidates")
    phone.get_by_label("Search candidates").fill(first.name)
    phone.get_by_role("button", name="Search", exact=True).click()
    phone.get_by_role("link", name=first.name).click()
    chats = phone.get_by_role("list", name=f"Chats with {first.name}")
    case = chats.get_by_role("listitem").filter(has_text="Case chat")
    start = case.get_by_role("link", name="Start chat")
    assert_target(phone, start)
    assert_fits(phone)
    shot(phone, "flows-profile-phone")
    start.click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text(first.name)
    people = phone.get_by_role("list", name="Who will be in it")
    expect(people).to_contain_text("Layla Haddad")  # TBB's caseworker joins the case
    expect(people).to_contain_text("Marcus Bell (you)")
    assert_composer_fits(phone)
    shot(phone, "flows-start-composer-phone")
    phone.emulate_media(color_scheme="dark")
    shot(phone, "flows-start-composer-phone-dark")
    phone.emulate_media(color_scheme="light")
    # An empty message stays on the composer with the problem beside the field.
    phone.get_by_label("First message").fill("   ")
    phone.get_by_role("button", name="Send and start chat").click()
    expect(phone.get_by_label("First message")).to_have_attribute("aria-invalid", "true")
    expect(phone.locator("#body-error")).to_contain_text("must not be empty")
    send_first_message(phone, "Welcome: this is your case chat with TBB.")
    # The profile now opens it instead of offering to start it.
    phone.goto(f"/candidates/{first.ext_id}")
    expect(
        phone.get_by_role("list", name=f"Chats with {first.name}").get_by_role("listitem")
    ).to_contain_text(["Case chat"])
    expect(phone.locator("#thread")).to_contain_text("Welcome: this is your case chat")

    # Layla (TBB), on a desktop: the case chat about her other candidate, from the profile.
    desk = browsers.open()
    sign_in(desk, LAYLA, next=f"/candidates/{second.ext_id}")
    start = desk.get_by_role("list", name=f"Chats with {second.name}").get_by_role(
        "link", name="Start chat"
    )
    expect(start.first).to_be_visible()
    start.first.click()
    expect(desk.get_by_role("list", name="Who will be in it")).to_contain_text(second.name)
    assert_composer_fits(desk)
    shot(desk, "flows-start-composer-desktop")
    send_first_message(desk, "Hello from TBB, we are here to help.")


def test_job_chats_partner_and_relocation_on_a_desktop(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    page = browsers.open()
    sign_in(page, TOM, next=f"/jobs/{QA}?tab=chats")
    chats = page.get_by_role("list", name="Job chats")
    # Nobody on the QA job has accepted an offer: the relocation chat says so, no button.
    relocation = chats.locator('li[data-slot="relocation"]')
    expect(relocation).to_contain_text("Opens once a candidate accepts an offer")
    expect(relocation.get_by_role("link", name=re.compile("Start chat"))).to_have_count(0)
    assert_fits(page)
    shot(page, "flows-job-chats-desktop")
    # The group chat with every partner: started from the page with its first message.
    group = chats.locator('li[data-slot="partners"]')
    start = group.get_by_role("link", name=re.compile("Start chat"))
    if start.count():
        assert_target(page, start)
        start.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Job partners")
        assert_composer_fits(page)
        send_first_message(page, "Hello both: the QA role opens next month.")
        page.goto(f"/jobs/{QA}?tab=chats")
    expect(chats.locator('li[data-slot="partners"] a.row-link')).to_be_visible()

    # Opened on the job page, the chat fits the desktop's screen: the composer in view without
    # scrolling the page, the history given the height the header leaves.
    chats.locator('li[data-slot="partners"] a.row-link').click()
    expect(page).to_have_url(re.compile(r"[?&]open=\d+"))
    assert_chat_fits_the_screen(page)
    shot(page, "flows-job-chat-open-desktop")

    # The overview offers each case chat (candidate, source partner, employer).
    page.goto(f"/jobs/{QA}?tab=overview")
    case = page.locator("td.case-chat a", has_text="Start chat")
    if case.count():
        case.first.click()
        expect(page.locator(".start-kind")).to_have_text("New case chat")
        assert_composer_fits(page)
        send_first_message(page, "Opening the case chat from the job.")

    # The overview, on a phone: each case a card, its chat button a full target.
    phone = browsers.open("phone")
    phone.set_viewport_size(PHONE)
    sign_in(phone, TOM, next=f"/jobs/{QA}?tab=overview")
    button = phone.locator("td.case-chat a").first
    assert_target(phone, button)
    assert_fits(phone)
    shot(phone, "flows-job-overview-phone")
    phone.set_viewport_size(SMALL_PHONE)
    assert_target(phone, button)
    assert_fits(phone)


def test_an_agency_user_reaches_their_candidates_and_threads(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    page = browsers.open("phone")
    page.set_viewport_size(PHONE)
    sign_in(page, RACHEL, next="/candidates")
    rows = page.get_by_role("list", name="Candidates").locator("li.candidate-row")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 1
    messaging = rows.first.get_by_role("link", name="Agency messaging")
    assert_target(page, messaging)
    assert_fits(page)
    shot(page, "flows-agency-candidates-phone")
    page.set_viewport_size(SMALL_PHONE)
    assert_target(page, messaging)
    assert_fits(page)
    messaging.click()
    expect(page.get_by_role("navigation", name="Candidate")).to_contain_text("Agency messaging")
    expect(page.locator(".agency-threads, .empty-state").first).to_be_visible()
    assert_fits(page)


def test_the_sms_choice_says_why_and_settings_errors_inline(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    quiet = web.new_applicant(phone="+13125550147", sms_consent=False)
    page = browsers.open("phone")
    page.set_viewport_size(PHONE)
    sign_in(page, MARCUS, next=f"/candidates/{quiet.ext_id}")
    page.get_by_role("list", name=f"Chats with {quiet.name}").get_by_role(
        "link", name="Start chat"
    ).first.click()
    sms = page.get_by_role("radio", name="SMS")
    expect(sms).to_be_disabled()
    expect(page.locator("#channel-sms-why")).to_have_text(
        f"Not available: {quiet.name} has not agreed to receive texts."
    )
    assert sms.get_attribute("aria-describedby") == "channel-sms-why"
    assert_target(page, page.locator("label[for=channel-email]"))
    assert_composer_fits(page)
    shot(page, "flows-sms-reason-phone")
    page.set_viewport_size(SMALL_PHONE)
    assert_composer_fits(page)

    page.goto("/settings")
    zone = page.get_by_label("Time zone")
    zone.fill("Mars/Olympus")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
    expect(zone).to_have_attribute("aria-invalid", "true")
    expect(zone).to_have_value("Mars/Olympus")
    expect(page.locator("#timezone-error")).to_contain_text("Mars/Olympus” is not")
    assert_target(page, page.get_by_role("button", name="Save settings"))
    assert_target(page, page.locator("label[for=email_notifications]"))
    assert_fits(page)
    shot(page, "flows-settings-error-phone")
