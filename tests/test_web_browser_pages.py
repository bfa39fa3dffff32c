"""Signing in, and each demo persona's main pages on a desktop and on a phone: the key content is
there, the phone-width page does not scroll sideways, and a screenshot is kept (the README's
pictures: JOBCHAT_DOCS_SCREENSHOTS=1 refreshes docs/screenshots/)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    HANNAH,
    LAYLA,
    MARCUS,
    OMAR,
    RACHEL,
    SWE_JOB,
    TOM,
    Browsers,
    Device,
    SignIn,
    WebServer,
    assert_fits,
    message,
    shot,
)

pytestmark = BROWSER_TESTS


def nav_links(page: Page, names: list[str]) -> None:
    nav = page.get_by_role("navigation", name="Main")
    for name in names:
        expect(nav.get_by_role("link", name=re.compile(f"^{name}\\b"))).to_be_visible()


STAFF_NAV = ["Inbox", "Candidates", "Jobs", "Settings"]
CANDIDATE_NAV = ["Jobs", "Inbox", "Settings"]


def conversations_list(page: Page, *titles: tuple[str, str]) -> None:
    """The inbox: filters, search, and rows whose links are named by what they show, in order:
    who, then (after the time) the kind and the context."""
    filters = page.get_by_role("navigation", name="Filters")
    for name in ("All", "Unread", "Messaged", "Ended"):
        expect(filters.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(filters.get_by_role("link", name="All", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_label("Search conversations")).to_be_visible()
    rows = page.get_by_role("list", name="Conversations")
    for who, about in titles:
        shown = re.compile(f"^{re.escape(who)} .+? {re.escape(about)}")
        link = rows.get_by_role("link", name=shown)
        expect(link.first).to_be_visible()


def tab(page: Page, name: str) -> None:
    """The profile's tab ``name`` is the current one."""
    expect(
        page.get_by_role("link", name=re.compile(f"^{name}")).and_(
            page.locator("[aria-current=page]")
        )
    ).to_be_visible()


def recruiter_inbox(page: Page) -> None:
    nav_links(page, STAFF_NAV)
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
    conversations_list(
        page,
        ("Rachel Kim", "Agency Maria Gonzalez · Registered Nurse — Intensive Care Unit"),
        ("Rachel Kim", "Private Maria Gonzalez · Registered Nurse — Intensive Care Unit"),
        ("Hannah Lee", "Application Patient Services Coordinator — Lakeview Clinic"),
    )


def candidate_manager(page: Page) -> None:
    nav_links(page, STAFF_NAV)
    expect(page.get_by_label("Search candidates")).to_be_visible()
    filters = page.get_by_role("navigation", name="Filters")
    for name in ("Unread", "Messaged"):
        expect(filters.get_by_role("link", name=name, exact=True)).to_be_visible()
    for name in ("Hannah Lee", "Derek Thompson", "Maria Gonzalez", "James Whitaker"):
        expect(page.get_by_role("main").get_by_text(name, exact=True).first).to_be_visible()
    # Iress's candidates are not Northwind's to message.
    expect(page.get_by_role("main")).not_to_contain_text("Omar Al-Sayed")


def profile_messages(page: Page) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hannah Lee")
    # (No agency submitted her application: no "Agency messaging" tab.)
    for name in ("Messages", "Communications"):
        expect(page.get_by_role("link", name=re.compile(f"^{name}")).first).to_be_visible()
    tab(page, "Messages")
    expect(message(page, "Let's do Friday at 9:30am Central.")).to_be_visible()
    expect(page.locator("#composer")).to_be_visible()


def profile_communications(page: Page) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hannah Lee")
    tab(page, "Communications")
    # The whole history, the SMS reminder included, marked as SMS.
    main = page.get_by_role("main")
    expect(main.get_by_text("a reminder of our phone screen").first).to_be_visible()
    expect(main.get_by_text("Thanks for applying for the Patient Services").first).to_be_visible()
    expect(main.get_by_text("SMS", exact=True).first).to_be_visible()


def profile_agency(page: Page) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text("Maria Gonzalez")
    for name in ("Messages", "Communications", "Agency messaging"):
        expect(page.get_by_role("link", name=re.compile(f"^{name}")).first).to_be_visible()
    tab(page, "Agency messaging")
    main = page.get_by_role("main")
    expect(main).to_contain_text("Rachel Kim")
    expect(main).to_contain_text("Both of Maria's references came back glowing")
    # Marcus's private thread with Rachel is his to see as well.
    expect(main).to_contain_text(re.compile("private", re.IGNORECASE))


def job_chats(page: Page) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text("Senior Software Engineer")
    tab(page, "Job Chats")
    main = page.get_by_role("main")
    # The chat with one partner, the group chat with all of them, the relocation chat.
    for name in ("Talent Beyond Boundaries", "all partners", "relocation"):
        link = main.get_by_role("link", name=re.compile(name, re.IGNORECASE))
        expect(link.first).to_be_visible()


def partner_inbox(page: Page) -> None:
    nav_links(page, STAFF_NAV)
    conversations_list(
        page,
        ("Farida Noori", "Direct Talent Beyond Boundaries"),
        ("Omar Al-Sayed", "Direct Talent Beyond Boundaries"),
        ("Iress and new hires", "Relocation Senior Software Engineer — Melbourne (visa sponsored)"),
        (
            "Iress and partners",
            "Job partners Senior Software Engineer — Melbourne (visa sponsored)",
        ),
    )


def agency_inbox(page: Page) -> None:
    nav_links(page, STAFF_NAV)
    conversations_list(
        page,
        ("Hiring team", "Agency Maria Gonzalez · Registered Nurse — Intensive Care Unit"),
        ("Marcus Bell", "Private Maria Gonzalez · Registered Nurse — Intensive Care Unit"),
    )
    # Aisha's private thread with Owen is not Rachel's.
    expect(page.get_by_role("main")).not_to_contain_text("James Whitaker")


def candidate_portal(page: Page) -> None:
    nav_links(page, CANDIDATE_NAV)
    main = page.get_by_role("main")
    # Jobs tab: his application and its chats, and his source partner's chat.
    expect(main).to_contain_text("Senior Software Engineer — Melbourne (visa sponsored)")
    expect(main.get_by_role("link", name=re.compile("relocation", re.I)).first).to_be_visible()
    expect(
        main.get_by_role("link", name=re.compile("Talent Beyond Boundaries")).first
    ).to_be_visible()
    # Nothing of the staff's side.
    expect(main).not_to_contain_text("all partners")


def settings(page: Page) -> None:
    expect(page.get_by_label("Time zone")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("America/Chicago")
    expect(page.get_by_role("checkbox", name="Email notifications")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_be_visible()


def test_staff_sign_in_lands_in_the_inbox(browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open()
    sign_in(page, MARCUS)
    expect(page).to_have_url(re.compile(r"/inbox$"))
    nav_links(page, STAFF_NAV)
    expect(page.get_by_role("list", name="Conversations")).to_be_visible()
    # Sign out is in the account menu.
    page.locator(".whoami summary", has_text="Account: Marcus Bell").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_candidate_sign_in_lands_in_the_portal(browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open("phone")
    sign_in(page, HANNAH)
    expect(page).to_have_url(re.compile(r"/portal$"))
    nav_links(page, CANDIDATE_NAV)


@pytest.mark.parametrize(("who", "path"), [(MARCUS, "/settings"), (HANNAH, "/inbox?filter=unread")])
def test_sign_in_takes_you_to_next(
    browsers: Browsers, sign_in: SignIn, who: str, path: str
) -> None:
    page = browsers.open()
    sign_in(page, who, next=path)
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def test_sign_out(browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open()
    sign_in(page, MARCUS)
    page.locator(".whoami summary", has_text="Account: Marcus Bell").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    page.goto("/inbox")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)


@pytest.mark.parametrize("who", [MARCUS, HANNAH])
def test_phone_header_shows_every_link(browsers: Browsers, sign_in: SignIn, who: str) -> None:
    """At 375 px the main navigation's links are all on the screen (none cut off at the edge
    of a strip that scrolls sideways)."""
    page = browsers.open("phone")
    sign_in(page, who)
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(links.first).to_be_visible()
    for link in links.all():
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, (
            f"{link.inner_text()!r} is cut off at 375 px: {box}"
        )


@dataclass(frozen=True)
class Screen:
    name: str
    who: str
    path: str
    check: Callable[[Page], None]


SCREENS = [
    Screen("recruiter-inbox", MARCUS, "/inbox", recruiter_inbox),
    Screen("candidate-manager", MARCUS, "/candidates", candidate_manager),
    Screen("candidate-profile-messages", MARCUS, "/candidates/cand-hannah", profile_messages),
    Screen(
        "candidate-profile-communications",
        MARCUS,
        "/candidates/cand-hannah?tab=communications",
        profile_communications,
    ),
    Screen("candidate-profile-agency", MARCUS, "/candidates/cand-maria?tab=agency", profile_agency),
    Screen("job-chats", TOM, f"/jobs/{SWE_JOB}?tab=chats", job_chats),
    Screen("source-partner-inbox", LAYLA, "/inbox", partner_inbox),
    Screen("agency-inbox", RACHEL, "/inbox", agency_inbox),
    Screen("candidate-portal", OMAR, "/portal", candidate_portal),
    Screen("settings", MARCUS, "/settings", settings),
]


@pytest.mark.parametrize("device", ["desktop", "phone"])
@pytest.mark.parametrize("screen", SCREENS, ids=[s.name for s in SCREENS])
def test_main_pages(browsers: Browsers, sign_in: SignIn, screen: Screen, device: Device) -> None:
    page = browsers.open(device)
    sign_in(page, screen.who, next=screen.path)
    expect(page.get_by_role("main")).to_be_visible()
    screen.check(page)
    assert_fits(page)
    name = f"{screen.name}-{device}"
    shot(page, name)


def test_the_jobs_list_leads_to_the_job_chats(browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open()
    sign_in(page, TOM, next="/jobs")
    page.get_by_role("link", name=re.compile("^Senior Software Engineer")).first.click()
    expect(page).to_have_url(re.compile(f"/jobs/{SWE_JOB}"))
    page.get_by_role("link", name=re.compile("^Job Chats")).click()
    job_chats(page)
    # A chat opens from there.
    page.get_by_role("main").get_by_role("link", name=re.compile("relocation", re.I)).first.click()
    expect(message(page, "serviced apartment in Southbank")).to_be_visible()


def test_candidate_opens_a_chat_from_the_portal(browsers: Browsers, sign_in: SignIn) -> None:
    page = browsers.open("phone")
    sign_in(page, OMAR)
    expect(page).to_have_url(re.compile("/portal$"))
    main = page.get_by_role("main")
    main.get_by_role("link", name=re.compile("relocation", re.I)).first.click()
    expect(message(page, "My visa application was lodged this morning!")).to_contain_class("mine")
    assert_fits(page)
    shot(page, "candidate-relocation-chat-phone")


def test_settings_time_zone_and_notifications(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    recruiter = web.new_recruiter()
    applicant = web.new_applicant()
    conv = web.application_chat(applicant, staff=recruiter)
    sent = web.send(recruiter, conv, "Hello from Chicago.")
    page = browsers.open()
    sign_in(page, recruiter, next="/settings")
    zone = page.get_by_label("Time zone")
    expect(zone).to_have_value("America/Chicago")
    if zone.evaluate("e => e.tagName") == "SELECT":
        zone.select_option("Asia/Tokyo")
    else:
        zone.fill("Asia/Tokyo")
    notifications = page.get_by_role("checkbox", name="Email notifications")
    expect(notifications).to_be_checked()
    notifications.uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="saved")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Tokyo")
    expect(page.get_by_role("checkbox", name="Email notifications")).not_to_be_checked()
    me = web.call("GET", "/api/v1/me", token=web.token(recruiter))
    assert (me["timezone"], me["email_notifications"]) == ("Asia/Tokyo", False)

    # Times are shown in it.
    page.goto(f"/conversations/{conv}")
    stamp = message(page, "Hello from Chicago.").locator("time")
    expect(stamp).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    created = datetime.fromisoformat(sent["created_at"].replace("Z", "+00:00"))
    tokyo = created.astimezone(ZoneInfo("Asia/Tokyo"))
    clock_24 = tokyo.strftime("%H:%M")
    clock_12 = f"{tokyo.hour % 12 or 12}:{tokyo.minute:02d}"
    expect(stamp).to_have_text(re.compile(rf"\b({clock_24}|{clock_12})\b"))
