"""The composer and the message list: email with its subject, text that looks like markup,
keyboard-only use, drafts, and paging back through a long conversation."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    composer,
    inbox_row,
    message,
    messages,
    pwned,
    shot,
    write,
)

pytestmark = BROWSER_TESTS

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
EVIL = f"Hi {SCRIPT} and {IMG} bye"


def message_count(web: WebServer, who: str, conv: int) -> int:
    page = web.call("GET", f"/api/v1/conversations/{conv}/messages?limit=100", token=web.token(who))
    return len(page["items"])


def test_email_needs_a_subject(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    page = browsers.open()
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    form = composer(page)
    channels = form.get_by_role("group", name="Send as")
    for name in ("In app", "Email"):
        expect(channels.get_by_role("radio", name=name)).to_be_visible()
    # This applicant gave no phone number nor consent: SMS is shown, but cannot be chosen.
    expect(channels.get_by_role("radio", name="SMS")).to_be_disabled()

    channels.get_by_role("radio", name="Email").check()
    subject = form.get_by_label("Subject")
    expect(subject).to_be_visible()
    form.get_by_label("Message", exact=True).fill("Please find the interview details below.")
    form.get_by_role("button", name="Send", exact=True).click()
    error = form.get_by_text(re.compile("subject", re.IGNORECASE)).and_(
        form.locator(".field-error, .form-error, [role=alert]")
    )
    expect(error.first).to_be_visible()
    expect(subject).to_have_attribute("aria-invalid", "true")
    shot(page, "email-subject-required")
    assert message_count(web, MARCUS, conv) == 0
    expect(messages(page)).to_have_count(0)
    # What was written is still there to send.
    expect(form.get_by_label("Message", exact=True)).to_have_value(
        "Please find the interview details below."
    )

    subject.fill("Your interview at Lakeview Clinic")
    form.get_by_role("button", name="Send", exact=True).click()
    sent = message(page, "Please find the interview details below.")
    expect(sent).to_be_visible()
    expect(sent).to_contain_text("Your interview at Lakeview Clinic")
    expect(sent).to_contain_text("Email")
    expect(error.first).to_be_hidden()
    items = web.call("GET", f"/api/v1/conversations/{conv}/messages", token=web.token(MARCUS))
    assert [(m["channel"], m["subject"]) for m in items["items"]] == [
        ("email", "Your interview at Lakeview Clinic")
    ]
    # The candidate sees it, marked as email, with its subject.
    candidate = browsers.open()
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    theirs = message(candidate, "Please find the interview details below.")
    expect(theirs).to_contain_text("Your interview at Lakeview Clinic")


def test_sms_shows_segments(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant(phone="+1 312 555 0111", sms_consent=True)
    conv = web.application_chat(applicant)
    page = browsers.open()
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    form = composer(page)
    form.get_by_role("group", name="Send as").get_by_role("radio", name="SMS").check()
    form.get_by_label("Message", exact=True).fill("x" * 200)
    expect(form).to_contain_text("2 segments")
    form.get_by_role("button", name="Send", exact=True).click()
    expect(message(page, "x" * 200)).to_contain_text("SMS")


def expect_inert(page: Page) -> None:
    """Nothing injected ran or was made into elements."""
    assert pwned(page) is None
    expect(page.locator("#messages script, main script")).to_have_count(0)
    expect(page.locator('img[src="x"]')).to_have_count(0)


def test_markup_in_messages_is_text(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    recruiter, candidate = browsers.open(), browsers.open()
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    # Typed in the page, drawn live on the other side.
    write(recruiter, EVIL)
    for page in (recruiter, candidate):
        shown = message(page, "bye")
        expect(shown).to_contain_text(SCRIPT)
        expect(shown).to_contain_text(IMG)
        expect_inert(page)
    # Sent through the API, drawn by the server on a fresh page.
    web.send(applicant.ext_id, conv, f"Re: {SCRIPT}{IMG}")
    expect(message(recruiter, "Re: ")).to_contain_text(SCRIPT + IMG)
    candidate.reload()
    expect(message(candidate, "Re: ")).to_contain_text(SCRIPT + IMG)
    for page in (recruiter, candidate):
        expect_inert(page)
    # The inbox preview.
    recruiter.goto("/inbox")
    expect(inbox_row(recruiter, conv)).to_contain_text(SCRIPT)
    expect_inert(recruiter)
    assert browsers.watch.dialogs == []


def test_markup_in_a_name_is_text(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Hello!")
    evil_name = f"Eve {SCRIPT}{IMG}"
    # The ATS renames the candidate, keeping the rest of the record.
    renamed = web.call(
        "PUT",
        f"/api/v1/candidates/{applicant.ext_id}",
        json={"name": evil_name, "email": applicant.email},
    )
    assert renamed["name"] == evil_name

    recruiter, candidate = browsers.open(), browsers.open()
    sign_in(recruiter, MARCUS, next="/inbox")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    # Live: the candidate writes while the recruiter's inbox is open.
    write(candidate, "Thanks!")
    row = inbox_row(recruiter, conv)
    expect(row).to_contain_text("Thanks!")
    expect(row).to_contain_text(evil_name)
    expect_inert(recruiter)

    recruiter.goto(f"/conversations/{conv}")
    expect(recruiter.get_by_role("heading", level=1)).to_contain_text(evil_name)
    expect(message(recruiter, "Thanks!")).to_contain_text(evil_name)
    expect_inert(recruiter)
    recruiter.goto("/candidates?q=Eve")
    expect(recruiter.get_by_role("main")).to_contain_text(evil_name)
    expect_inert(recruiter)
    recruiter.goto(f"/candidates/{applicant.ext_id}")
    expect(recruiter.get_by_role("heading", level=1)).to_contain_text(evil_name)
    expect_inert(recruiter)
    # Their own header.
    expect(candidate.locator("header")).to_contain_text(evil_name)
    candidate.goto("/settings")
    expect(candidate.locator("header")).to_contain_text(evil_name)
    expect_inert(candidate)
    assert browsers.watch.dialogs == []


def test_keyboard_only(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(applicant.ext_id, conv, "Hello, is the role still open?")
    page = browsers.open()
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    box = composer(page).get_by_label("Message", exact=True)
    expect(box).to_be_visible()
    for _ in range(80):
        if box.evaluate("e => e === document.activeElement"):
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("the composer cannot be reached with Tab")
    page.keyboard.type("Yes it is! When can you talk?")
    page.keyboard.press("Enter")
    expect(message(page, "When can you talk?")).to_contain_class("mine")
    expect(box).to_have_value("")
    expect(box).to_be_focused()
    # Shift+Enter is a new line, not a send.
    page.keyboard.type("Line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(box).to_have_value("Line one\nline two")
    expect(messages(page)).to_have_count(2)
    # Tab onwards to the Send button, and Enter on it.
    send = composer(page).get_by_role("button", name="Send", exact=True)
    for _ in range(10):
        if send.evaluate("e => e === document.activeElement"):
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("Send cannot be reached with Tab from the message box")
    page.keyboard.press("Enter")
    expect(messages(page)).to_have_count(3)
    expect(messages(page).last).to_contain_text("line two")


def test_phone_pages_do_not_scroll_sideways(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(
        MARCUS,
        conv,
        "A long link: https://careers.northwindhealth.example/jobs/patient-services-coordinator"
        "-lakeview-clinic/apply?source=jobchat&campaign=spring-hiring-2026-very-long-parameter",
    )
    web.send(MARCUS, conv, "W" * 120)
    recruiter, candidate = browsers.open("phone"), browsers.open("phone")
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    for page in (recruiter, candidate):
        expect(message(page, "W" * 120)).to_be_visible()
        assert_fits(page)
    shot(recruiter, "recruiter-conversation-phone")
    for path in ("/inbox", "/settings", "/portal"):
        candidate.goto(path)
        expect(candidate.get_by_role("main")).to_be_visible()
        assert_fits(candidate)


def test_draft_is_kept(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(applicant.ext_id, conv, "Hi there")
    page = browsers.open()
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    box = composer(page).get_by_label("Message", exact=True)
    box.press_sequentially("Half a thought about the sched")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile("^Inbox")
    ).click()
    expect(page).to_have_url(re.compile("/inbox"))
    inbox_row(page, conv).get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/conversations/{conv}$"))
    expect(composer(page).get_by_label("Message", exact=True)).to_have_value(
        "Half a thought about the sched"
    )
    # Another conversation has its own (empty) draft.
    other = web.application_chat(web.new_applicant())
    page.goto(f"/conversations/{other}")
    expect(composer(page).get_by_label("Message", exact=True)).to_have_value("")
    # Sent, it is gone.
    page.goto(f"/conversations/{conv}")
    composer(page).get_by_role("button", name="Send", exact=True).click()
    expect(message(page, "Half a thought about the sched")).to_be_visible()
    page.reload()
    expect(composer(page).get_by_label("Message", exact=True)).to_have_value("")


def test_older_messages_load_when_scrolling_up(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    marcus, candidate = web.sender(MARCUS), web.sender(applicant.ext_id)
    for n in range(1, 81):
        web.send(marcus if n % 3 else candidate, conv, f"Message number {n:02d}")
    page = browsers.open()
    sign_in(page, applicant.ext_id, next=f"/conversations/{conv}")
    expect(message(page, "Message number 80")).to_be_visible()
    # Not all at once.
    expect(message(page, "Message number 01")).to_have_count(0)
    shown = messages(page).count()
    assert shown < 80

    scroller = page.locator("#scroller")
    for _ in range(10):
        if message(page, "Message number 01").count():
            break
        # Scroll up as a person would, with the wheel over the messages.
        scroller.hover()
        page.mouse.wheel(0, -20_000)
        expect(messages(page).nth(shown)).to_be_attached()
        shown = messages(page).count()
    expect(messages(page)).to_have_count(80)
    texts = messages(page).locator(".body").all_inner_texts()
    assert texts == [f"Message number {n:02d}" for n in range(1, 81)]
    # One separator per day, whatever the page boundaries.
    days = page.locator("#messages li.day-separator").evaluate_all(
        "els => els.map(e => e.dataset.day || e.textContent)"
    )
    assert len(days) == len(set(days))
