"""Search in a browser: Ctrl+K in the header, the results page, a result opening its
conversation at that message however old (highlighted, in view, newer ones loading on
scrolling down); on a phone the header's icon opens the search page; axe finds nothing on the
results page in either theme."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    OMAR,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    assert_in_viewport,
    axe,
    axe_report,
    message_by_id,
    messages,
)

pytestmark = BROWSER_TESTS


def test_search_from_the_header_opens_the_conversation_at_the_message(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    word = f"pineapple{uuid.uuid4().hex[:6]}"
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    marcus, them = web.sender(MARCUS), web.sender(applicant.ext_id)
    web.send(marcus, conv, "Thanks for applying! When could you talk?")
    old = web.send(them, conv, f"Any day but Monday; my {word} shift runs late.")
    for n in range(70):
        web.send(marcus if n % 2 else them, conv, f"Message {n:02d} about the rota.")

    page = browsers.open("desktop", bypass_csp=True)
    sign_in(page, MARCUS, next="/inbox")
    page.keyboard.press("Control+k")
    field = page.get_by_role("searchbox", name="Search messages")
    expect(field).to_be_focused()
    field.fill(word)
    field.press("Enter")
    page.wait_for_url("**/search?q=*")
    result = page.get_by_role("list", name="Results").get_by_role("listitem")
    expect(result).to_have_count(1)
    expect(result.locator("mark")).to_have_text(word)
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        found = axe(page)
        assert not found, f"{theme}:\n{axe_report(found)}"
    result.get_by_role("link").click()
    page.wait_for_url(f"**/conversations/{conv}?at={old['id']}")
    target = message_by_id(page, old["id"])
    # Highlighted for a moment, then like the others.
    expect(target).to_have_class(re.compile(r"\bfound\b"))
    assert_in_viewport(page, target.locator(".bubble"))
    # 70 newer messages: half a page after it is drawn, the rest comes on scrolling down.
    drawn = messages(page).count()
    assert drawn < 72
    page.locator("#scroller").evaluate("(s) => { s.scrollTop = s.scrollHeight; }")
    expect(messages(page)).to_have_count(72)
    expect(page.locator(".load-newer")).to_have_count(0)
    expect(messages(page).last).to_contain_text("Message 69")


def test_on_a_phone_search_is_one_step_from_the_inbox(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    """Four tabs leave no room for a fifth control in a phone's top bar: the inbox's own search
    leads on to the messages (and the account menu has the page); a candidate's three tabs
    leave room for the header's icon."""
    page: Page = browsers.open("phone-390x844")
    sign_in(page, MARCUS, next="/inbox")
    expect(page.locator(".topsearch")).to_be_hidden()
    page.get_by_role("searchbox", name="Search conversations").fill("Friday")
    page.get_by_role("searchbox", name="Search conversations").press("Enter")
    page.get_by_role("link", name="Search messages for “Friday”").click()
    page.wait_for_url("**/search?q=Friday")
    expect(page.get_by_role("list", name="Results").get_by_role("listitem").first).to_be_visible()
    assert_fits(page)

    candidate = browsers.open("phone-390x844")
    sign_in(candidate, OMAR, next="/portal")
    candidate.get_by_role("link", name="Search messages").click()
    candidate.wait_for_url("**/search")
    field = candidate.get_by_role("main").get_by_role("searchbox", name="Search messages")
    expect(field).to_be_focused()
    expect(candidate.get_by_text("Search every conversation you are in")).to_be_visible()
    assert_fits(candidate)
