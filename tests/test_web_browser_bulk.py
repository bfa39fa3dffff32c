"""Bulk messages in Chromium: select candidates in the candidate manager, choose a template,
preview it, confirm, and watch the progress page reach done (and survive a reload). Screenshots
of every bulk page, phone and desktop, light and dark, go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    Applicant,
    Browsers,
    Device,
    SignIn,
    WebServer,
    assert_fits,
    shot,
)

pytestmark = BROWSER_TESTS

SIZES: tuple[Device, ...] = ("phone-390x844", "desktop")


def saved_template(web: WebServer, name: str, body: str) -> None:
    """A template of Marcus's, written into the server's database (the templates API is another
    package's; here a template is only something to choose)."""
    database = Path(os.readlink(f"/proc/{web.process.pid}/cwd")) / "jobchat.db"
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(database) as conn:
        (marcus, org) = conn.execute(
            "SELECT id, organization_id FROM users WHERE ext_id = ?", (MARCUS,)
        ).fetchone()
        conn.execute(
            "INSERT INTO templates (organization_id, author_id, name, body, subject, shared,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, NULL, 0, ?, ?)",
            (org, marcus, name, body, now, now),
        )


def applicants(web: WebServer, tag: str) -> list[Applicant]:
    return [web.new_applicant(f"{first} Bulk{tag}") for first in ("Ana", "Ben", "Cleo")]


def select_all(page: Page, tag: str) -> None:
    page.goto(f"/candidates?q=Bulk{tag}")
    bar = page.get_by_role("form", name="Message selected candidates")
    expect(page.locator("input.bulk-check")).to_have_count(3)
    page.get_by_label("Select all on this page").check()
    expect(bar.get_by_text("3 selected")).to_be_visible()


def test_select_choose_a_template_confirm_and_watch_it_finish(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    tag = uuid.uuid4().hex[:6]
    people = applicants(web, tag)
    saved_template(web, f"Interview invite {tag}", "Hi {{candidate.first_name}}, are you free?")
    page = browsers.open("phone-390x844")
    sign_in(page, MARCUS, next=f"/candidates?q=Bulk{tag}")
    # One by one: the bar counts.
    page.get_by_label(re.compile(f"^Select {people[0].name} \\(Patient Services")).check()
    bar = page.get_by_role("form", name="Message selected candidates")
    expect(bar.get_by_text("1 selected")).to_be_visible()
    select_all(page, tag)
    bar.get_by_role("button", name="Message 3").click()

    expect(page.get_by_role("heading", name="Message 3 candidates")).to_be_visible()
    page.get_by_label("Template", exact=True).select_option(label=f"Interview invite {tag}")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator(".bulk-preview")
    expect(preview).to_contain_text(f"Preview for {people[0].name}")
    expect(preview).to_contain_text("Hi Ana, are you free?")
    assert_fits(page)
    page.get_by_role("button", name="Send to 3").click()

    expect(page.get_by_role("status")).to_have_text("Done: 3 sent.", timeout=15_000)
    expect(page.locator(".bulk-counts")).to_contain_text("3")
    page.reload()
    expect(page.get_by_role("status")).to_have_text("Done: 3 sent.")
    for person in people:
        token = web.token(person.ext_id)
        items = web.call("GET", "/api/v1/conversations", token=token)["items"]
        assert [c["last_message"]["body"] for c in items] == [
            f"Hi {person.name.split()[0]}, are you free?"
        ]


def test_screenshots_of_the_bulk_pages(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    tag = uuid.uuid4().hex[:6]
    people = applicants(web, tag)
    # Two who take texts, and one who never agreed to: the composer names them as skipped.
    for person, consent in zip(people, (True, False, True), strict=True):
        web.call(
            "PUT",
            f"/api/v1/candidates/{person.ext_id}",
            json={
                "name": person.name,
                "email": person.email,
                "phone": "+14155550100",
                "sms_consent": consent,
            },
        )
    refs = "&".join(f"application={p.application}" for p in people)
    bulk = web.call(
        "POST",
        "/api/v1/bulk-messages",
        token=web.token(MARCUS),
        json={
            "applications": [p.application for p in people] + ["app-nobody"],
            "body": "Hi {{candidate.first_name}}, thanks for applying.",
            "channel": "app",
        },
    )
    for device in SIZES:
        page = browsers.open(device)
        sign_in(page, MARCUS, next=f"/candidates?q=Bulk{tag}")
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            select_all(page, tag)
            assert_fits(page)
            shot(page, f"bulk-select-{device}-{theme}", full_page=False)
            page.goto(f"/bulk/new?{refs}&channel=sms&body=Hi+%7B%7Bcandidate.first_name%7D%7D")
            expect(page.locator(".bulk-skips")).to_contain_text("has not agreed to receive texts")
            assert_fits(page)
            shot(page, f"bulk-compose-{device}-{theme}")
            page.goto(f"/bulk/{bulk['id']}")
            expect(page.get_by_role("status")).to_have_text(
                "Done: 3 sent, 1 skipped.", timeout=15_000
            )
            assert_fits(page)
            shot(page, f"bulk-progress-{device}-{theme}")
