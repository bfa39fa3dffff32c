"""The inbox's filters and search, and the candidate manager's filters, search and "Start chat".

Each test works as a recruiter of its own at Northwind Health with applicants of its own, so
it knows which rows must and must not be in each list whatever else the module's tests did.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    Applicant,
    Browsers,
    SignIn,
    WebServer,
    composer,
    inbox_row,
    message,
    shot,
)

pytestmark = BROWSER_TESTS


def choose(page: Page, name: str) -> None:
    """Click the filter ``name``: it becomes the current one."""
    filters = page.get_by_role("navigation", name="Filters")
    filters.get_by_role("link", name=name, exact=True).click()
    expect(filters.get_by_role("link", name=name, exact=True)).to_have_attribute(
        "aria-current", "page"
    )


def search(page: Page, label: str, text: str) -> None:
    page.get_by_label(label).fill(text)
    page.get_by_role("button", name="Search", exact=True).click()


def test_inbox_filters_and_search(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    recruiter = web.new_recruiter()
    unread, messaged, ended, empty = (web.new_applicant() for _ in range(4))
    c_unread = web.application_chat(unread, staff=recruiter)
    web.send(unread.ext_id, c_unread, "A question about the shifts.")
    c_messaged = web.application_chat(messaged, staff=recruiter)
    web.send(recruiter, c_messaged, "Thanks for applying.")
    c_ended = web.application_chat(ended, staff=recruiter)
    web.send(recruiter, c_ended, "We have filled the role, sorry.")
    web.call("POST", f"/api/v1/conversations/{c_ended}/end", token=web.token(recruiter))
    c_empty = web.application_chat(empty, staff=recruiter)
    everything = {c_unread, c_messaged, c_ended, c_empty}

    page = browsers.open()
    sign_in(page, recruiter, next="/inbox")

    def shown(*expected: int) -> None:
        for conv in everything:
            expect(inbox_row(page, conv)).to_have_count(1 if conv in expected else 0)

    shown(*everything)
    expect(inbox_row(page, c_unread).locator(".unread-count")).to_have_text("1")
    expect(inbox_row(page, c_ended)).to_contain_text("Ended")
    expect(inbox_row(page, c_messaged)).to_contain_text("Thanks for applying.")
    # A row's link is named by the conversation's title first.
    expect(
        inbox_row(page, c_unread).get_by_role("link", name=re.compile("^" + re.escape(unread.name)))
    ).to_have_attribute("href", f"/conversations/{c_unread}")
    shot(page, "inbox-all")

    choose(page, "Unread")
    expect(page).to_have_url(re.compile(r"filter=unread"))
    shown(c_unread)
    choose(page, "Messaged")
    shown(c_unread, c_messaged, c_ended)
    choose(page, "Ended")
    shown(c_ended)
    choose(page, "All")
    shown(*everything)

    # Search by the candidate's name; it keeps the filter it was made under.
    search(page, "Search conversations", unread.name)
    expect(page).to_have_url(re.compile(r"q="))
    shown(c_unread)
    expect(page.get_by_label("Search conversations")).to_have_value(unread.name)
    choose(page, "Unread")
    shown(c_unread)
    expect(page.get_by_label("Search conversations")).to_have_value(unread.name)
    choose(page, "Ended")
    shown()
    choose(page, "All")
    search(page, "Search conversations", "no such person zzqx")
    shown()
    expect(page.get_by_role("main")).to_contain_text("No conversations match")
    # And by the job's title.
    search(page, "Search conversations", "Patient Services Coordinator")
    shown(*everything)


def candidate_row(page: Page, applicant: Applicant) -> Locator:
    """The candidate manager's row for ``applicant`` (a list item naming them)."""
    return page.get_by_role("main").get_by_role("listitem").filter(has_text=applicant.name)


def test_candidate_manager_filters_search_and_start_chat(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    recruiter = web.new_recruiter()
    unread, messaged, fresh = (web.new_applicant() for _ in range(3))
    c_unread = web.application_chat(unread, staff=recruiter)
    web.send(unread.ext_id, c_unread, "Is the role still open?")
    c_messaged = web.application_chat(messaged, staff=recruiter)
    web.send(recruiter, c_messaged, "Hello there.")

    page = browsers.open()
    sign_in(page, recruiter, next="/candidates")
    for applicant in (unread, messaged, fresh):
        expect(candidate_row(page, applicant)).to_have_count(1)
    # Demo applicants to Northwind's jobs are there too.
    expect(page.get_by_role("main")).to_contain_text("Hannah Lee")
    shot(page, "candidate-manager-all")

    def shown(*expected: Applicant) -> None:
        for applicant in (unread, messaged, fresh):
            expect(candidate_row(page, applicant)).to_have_count(1 if applicant in expected else 0)

    choose(page, "Unread")
    expect(page).to_have_url(re.compile(r"messaging=unread"))
    shown(unread)
    choose(page, "Messaged")
    shown(unread, messaged)
    expect(page.get_by_role("main")).not_to_contain_text(fresh.name)

    # Search (by name, then by email).
    page.goto("/candidates")
    search(page, "Search candidates", fresh.name)
    shown(fresh)
    expect(page.get_by_role("main")).not_to_contain_text("Hannah Lee")
    search(page, "Search candidates", messaged.email)
    shown(messaged)

    # Start a chat with someone never messaged: it opens, and a message goes.
    search(page, "Search candidates", fresh.name)
    row = candidate_row(page, fresh)
    start = row.get_by_role("button", name="Start chat").or_(
        row.get_by_role("link", name="Start chat")
    )
    start.click()
    # The composer that starts it: the chat exists once the first message is sent.
    expect(page.get_by_role("heading", level=1)).to_contain_text(fresh.name)
    page.get_by_label("First message").fill("Hi! I'd love to tell you more about the role.")
    page.get_by_role("button", name="Send and start chat").click()
    expect(composer(page)).to_be_visible()
    expect(message(page, "love to tell you more")).to_contain_class("mine")
    # Now they are among the messaged.
    page.goto("/candidates?messaging=messaged")
    shown(unread, messaged, fresh)
