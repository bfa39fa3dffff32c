"""Two people, two browsers, one conversation: what one does, the other sees without reloading.

Each test makes its own applicant to Northwind Health's Patient Services Coordinator job, so
the conversations and unread counts it looks at are its own.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    Browsers,
    SignIn,
    WebServer,
    badge,
    delete,
    ended_notice,
    inbox_row,
    message,
    message_by_id,
    messages,
    options_button,
    shot,
    usable_composer,
    write,
)

pytestmark = BROWSER_TESTS


def unread_messages(web: WebServer, who: str) -> int:
    count: int = web.call("GET", "/api/v1/unread", token=web.token(who))["messages"]
    return count


def expect_badge(page: Page, count: int) -> None:
    if count:
        expect(badge(page)).to_be_visible()
        expect(badge(page)).to_have_text(str(count))
        expect(badge(page)).to_have_attribute("aria-label", f"{count} unread messages")
    else:
        expect(badge(page)).to_be_hidden()


def test_recruiter_and_candidate_see_each_other_live(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant("Nora Quinn")  # (its screenshots are the README's)
    conv = web.application_chat(applicant)
    recruiter, candidate = browsers.open(), browsers.open("phone")
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    expect(recruiter.get_by_role("heading", level=1)).to_contain_text(applicant.name)
    expect(usable_composer(candidate)).to_have_count(1)

    write(recruiter, "Hi! Are you free for a phone screen on Thursday?")
    expect(message(recruiter, "free for a phone screen")).to_contain_class("mine")
    theirs = message(candidate, "free for a phone screen")
    expect(theirs).to_be_visible()
    expect(theirs).to_contain_class("theirs")
    expect(theirs).to_contain_text("Marcus Bell")
    expect(theirs.locator("time[datetime]")).to_have_count(1)

    write(candidate, "Thursday works, any time after 2pm.")
    expect(message(candidate, "any time after 2pm")).to_contain_class("mine")
    expect(message(recruiter, "any time after 2pm")).to_contain_class("theirs")
    expect(message(recruiter, "any time after 2pm")).to_contain_text(applicant.name)
    shot(recruiter, "live-recruiter-conversation")
    shot(candidate, "live-candidate-conversation-phone")
    # Nobody reloaded: each page has exactly the two messages, once each.
    expect(messages(recruiter)).to_have_count(2)
    expect(messages(candidate)).to_have_count(2)


def test_badge_and_inbox_row_update_live(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Welcome to Northwind Health!")
    recruiter, candidate = browsers.open(), browsers.open()
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    # The candidate reads it, then goes to their portal.
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    expect(message(candidate, "Welcome to Northwind Health")).to_be_visible()
    # Read (this is their only conversation): the badge empties.
    expect_badge(candidate, 0)
    candidate.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(candidate).to_have_url(f"{web.base}/portal")
    before = unread_messages(web, applicant.ext_id)
    expect_badge(candidate, before)

    write(recruiter, "Could you send your references?")
    expect_badge(candidate, before + 1)
    shot(candidate, "live-badge-portal")

    # On the inbox, the conversation's row counts its unread messages as they arrive.
    candidate.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox").click()
    row = inbox_row(candidate, conv)
    expect(row.locator(".unread-count")).to_have_text("1")
    write(recruiter, "Two would be ideal.")
    expect(row.locator(".unread-count")).to_have_text("2")
    expect(row).to_contain_text("Two would be ideal.")
    expect_badge(candidate, before + 2)
    # It moved to the top: the most recent activity first.
    expect(candidate.locator("li.conversation-row").first).to_have_attribute(
        "data-conversation", str(conv)
    )

    # Reading it clears the row and the badge.
    row.get_by_role("link").click()
    expect(message(candidate, "Two would be ideal.")).to_be_visible()
    candidate.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox").click()
    expect(inbox_row(candidate, conv).locator(".unread-count")).to_have_count(0)
    expect_badge(candidate, before)


def test_typing_indicator(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    recruiter, candidate = browsers.open(), browsers.open()
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    expect(usable_composer(candidate)).to_have_count(1)
    typing = candidate.locator("#typing")
    expect(typing).to_have_attribute("aria-live", "polite")
    expect(typing).not_to_contain_text("is typing")

    recruiter.get_by_label("Message", exact=True).press_sequentially("Let me check the calend")
    expect(typing).to_contain_text("Marcus Bell is typing")
    # ...and the other way round.
    candidate.get_by_label("Message", exact=True).press_sequentially("Great, thank")
    expect(recruiter.locator("#typing")).to_contain_text(f"{applicant.name} is typing")
    # Sending ends it.
    recruiter.get_by_role("button", name="Send", exact=True).click()
    expect(message(candidate, "Let me check the calend")).to_be_visible()
    expect(typing).not_to_contain_text("is typing")


def test_presence_shows_who_has_the_conversation_open(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    """The members line marks who is online: asked when the page connects, then kept current
    as people come and go."""
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    recruiter = browsers.open()
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    them = recruiter.locator(f'.member[data-member="{applicant.ext_id}"]')
    expect(them).not_to_have_class("member online")

    candidate = browsers.open("phone")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    expect(them).to_have_class("member online")
    expect(them).to_contain_text("(online)")
    # The candidate's page, opened later, asks and learns the recruiter is there.
    expect(candidate.locator(f'.member[data-member="{MARCUS}"]')).to_have_class("member online")

    candidate.close()
    expect(them).not_to_have_class("member online")
    expect(them).not_to_contain_text("(online)")


def test_ending_and_reopening_a_conversation(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Thanks for applying!")
    recruiter, candidate = browsers.open(), browsers.open("phone")
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    expect(ended_notice(candidate)).to_be_hidden()
    expect(usable_composer(candidate)).to_have_count(1)
    # Ending is for staff.
    expect(candidate.get_by_role("button", name="End conversation")).to_have_count(0)

    # In the header's "More actions" menu, and asked first (tests/test_web_browser_thread.py
    # tries Cancel).
    recruiter.get_by_label("More actions", exact=True).click()
    recruiter.get_by_role("button", name="End conversation").click()
    recruiter.get_by_role("dialog").get_by_role("button", name="End conversation").click()
    expect(ended_notice(recruiter)).to_be_visible()
    # (The button may post a form: be sure the recruiter's page is the one after it.)
    recruiter.reload()
    expect(ended_notice(recruiter)).to_be_visible()
    expect(recruiter.get_by_role("button", name="End conversation")).to_be_hidden()
    # The candidate sees it end without reloading, and can no longer write.
    expect(ended_notice(candidate)).to_be_visible()
    expect(usable_composer(candidate)).to_have_count(0)
    shot(candidate, "ended-candidate-phone")
    candidate.reload()
    expect(ended_notice(candidate)).to_be_visible()
    expect(usable_composer(candidate)).to_have_count(0)
    conversation = web.call("GET", f"/api/v1/conversations/{conv}", token=web.token(MARCUS))
    assert conversation["status"] == "ended"

    # The recruiter writes again: it is open again, for both.
    write(recruiter, "One more question, if you have a minute.")
    expect(message(candidate, "One more question")).to_be_visible()
    expect(ended_notice(candidate)).to_be_hidden()
    expect(usable_composer(candidate)).to_have_count(1)
    expect(ended_notice(recruiter)).to_be_hidden()
    recruiter.get_by_label("More actions", exact=True).click()
    expect(recruiter.get_by_role("button", name="End conversation")).to_be_visible()
    recruiter.keyboard.press("Escape")
    write(candidate, "Of course.")
    expect(message(recruiter, "Of course.")).to_be_visible()


def test_delete_for_me_hides_it_for_me_only(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    sent = web.send(MARCUS, conv, "Your interview is at 10:00 on Tuesday.")
    web.send(MARCUS, conv, "Please bring your license.")
    recruiter, candidate = browsers.open(), browsers.open()
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    item = message_by_id(candidate, sent["id"])
    expect(item).to_be_visible()
    # The recruiter's message: no "Delete for everyone" for the candidate.
    options_button(item).click()
    expect(item.get_by_role("button", name="Delete for me")).to_be_visible()
    expect(item.get_by_role("button", name="Delete for everyone")).to_have_count(0)
    options_button(item).click()

    delete(candidate, item, "Delete for me")
    expect(message_by_id(candidate, sent["id"])).to_have_count(0)
    expect(message(candidate, "Please bring your license.")).to_be_visible()
    # It is sent when the undo is no longer offered, or when the page is left (this reload).
    candidate.reload()
    expect(message(candidate, "Please bring your license.")).to_be_visible()
    expect(message_by_id(candidate, sent["id"])).to_have_count(0)
    # The recruiter still has it, as it was.
    expect(message_by_id(recruiter, sent["id"])).to_contain_text("Your interview is at 10:00")
    recruiter.reload()
    expect(message_by_id(recruiter, sent["id"])).to_contain_text("Your interview is at 10:00")


def test_delete_for_everyone_live(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Hello!")
    recruiter, candidate = browsers.open(), browsers.open()
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    write(recruiter, "Oops, this was meant for somebody else.")
    sent = message(recruiter, "meant for somebody else")
    expect(sent).to_be_visible()
    expect(message(candidate, "meant for somebody else")).to_be_visible()
    message_id = sent.get_attribute("data-message-id")
    assert message_id is not None

    delete(recruiter, sent, "Delete for everyone")
    recruiter.get_by_role("dialog").get_by_role("button", name="Delete for everyone").click()
    for page in (recruiter, candidate):
        gone = message_by_id(page, int(message_id))
        expect(gone).to_contain_text("This message was deleted")
        expect(gone).not_to_contain_text("meant for somebody else")
        expect(page.locator("#messages")).not_to_contain_text("meant for somebody else")
    candidate.reload()
    expect(message_by_id(candidate, int(message_id))).to_contain_text("This message was deleted")
    expect(candidate.locator("#messages")).not_to_contain_text("meant for somebody else")


def test_message_options_is_a_button(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    """The conventions: a button named "Message options" (a <summary> is no button to the
    accessibility tree, so role-based tools and some screen readers cannot find it)."""
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    sent = web.send(MARCUS, conv, "Hello!")
    page = browsers.open()
    sign_in(page, applicant.ext_id, next=f"/conversations/{conv}")
    item = message_by_id(page, sent["id"])
    expect(item.get_by_role("button", name="Message options")).to_have_count(1)
