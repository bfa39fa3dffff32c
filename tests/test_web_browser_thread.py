"""The conversation view in a browser, measured: at 375 x 667 and 390 x 844 (touch) and
1280 x 800 the header is one compact line, the composer sits inside the viewport with the
newest message just above it, the last message's menu opens inside the viewport, targets are
44 px; what cannot be undone asks first, "Delete for me" can be undone, the end and reopen lines
arrive live, and the connection banner says how the socket is doing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import FloatRect, Locator, Page, Request, WebSocketRoute, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    TOUCH_PX,
    Browsers,
    Device,
    SignIn,
    WebServer,
    assert_fits,
    box,
    composer,
    ended_notice,
    message,
    message_by_id,
    messages,
    options_button,
    shot,
    usable_composer,
    write,
)

pytestmark = BROWSER_TESTS

# The sizes the column is measured at, by the names the assertions and screenshots use.
SIZES: dict[str, Device] = {
    "375x667": "phone-375x667",
    "390x844": "phone-390x844",
    "1280x800": "desktop",
}


def open_sized(browsers: Browsers, size: str) -> Page:
    return browsers.open(SIZES[size])


def assert_inside(page: Page, rect: FloatRect, what: str) -> None:
    view = page.viewport_size
    assert view is not None
    assert rect["x"] >= -0.5 and rect["y"] >= -0.5, (what, rect)
    assert rect["x"] + rect["width"] <= view["width"] + 0.5, (what, rect, view)
    assert rect["y"] + rect["height"] <= view["height"] + 0.5, (what, rect, view)


def assert_target(rect: FloatRect, what: str) -> None:
    assert rect["width"] >= TOUCH_PX - 0.5 and rect["height"] >= TOUCH_PX - 0.5, (what, rect)


def busy_chat(web: WebServer) -> tuple[Any, int]:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    marcus, them = web.sender(MARCUS), web.sender(applicant.ext_id)
    for n in range(1, 13):
        web.send(
            marcus if n % 2 else them, conv, f"Message {n:02d}: about Thursday's screening call."
        )
    return applicant, conv


def test_the_column_fits_each_screen(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    _applicant, conv = busy_chat(web)
    for size in SIZES:
        page = open_sized(browsers, size)
        sign_in(page, MARCUS, next=f"/conversations/{conv}")
        view = page.viewport_size
        assert view is not None
        newest = message(page, "Message 12")
        expect(newest).to_be_visible()
        head = box(page.locator(".thread-head"))
        assert head["height"] <= 64, (size, head)
        # One line: back arrow, title, members and more actions side by side, each a target.
        for name in ("Back to inbox", "More actions"):
            target = box(page.get_by_label(name, exact=True))
            assert_target(target, name)
            assert abs(target["y"] + target["height"] / 2 - (head["y"] + head["height"] / 2)) < 4
        assert_target(box(page.locator(".members-menu summary")), "members")
        title = page.get_by_role("heading", level=1)
        assert title.evaluate("e => e.scrollWidth > e.clientWidth") or box(title)["height"] < 40

        # The composer is on screen without scrolling, the newest message just above it.
        form = box(composer(page))
        assert_inside(page, form, f"composer at {size}")
        last = box(newest.locator(".bubble"))
        assert last["y"] + last["height"] <= form["y"] + 0.5, (size, last, form)
        assert form["y"] - (last["y"] + last["height"]) < 48, (size, last, form)
        assert page.evaluate("window.scrollY") == 0
        assert_fits(page)

        # Focusing the message box keeps all of it in view (and the page does not move).
        composer(page).get_by_label("Message", exact=True).focus()
        assert_inside(page, box(composer(page)), f"focused composer at {size}")
        assert_target(box(composer(page).get_by_role("button", name="Send")), "Send")

        # The last message's menu opens inside the viewport, its items 44 px tall.
        button = options_button(newest)
        assert_target(box(button), "Message options")
        button.click()
        menu = newest.locator(".menu-items")
        expect(menu).to_be_visible()
        assert_inside(page, box(menu), f"last message's menu at {size}")
        for item in menu.get_by_role("button").all():
            assert box(item)["height"] >= TOUCH_PX - 0.5
        # Nothing else covers it: what is under its middle is the menu.
        rect = box(menu)
        covered = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('.menu-items') !== null",
            [rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2],
        )
        assert covered, size
        # Escape closes it and gives focus back to its button.
        page.keyboard.press("Escape")
        expect(menu).to_be_hidden()
        expect(button).to_be_focused()
        # A click elsewhere closes it too.
        button.click()
        expect(menu).to_be_visible()
        page.locator(".thread-title").click()
        expect(menu).to_be_hidden()

        # The members: a disclosure listing everyone, inside the viewport.
        page.locator(".members-menu summary").click()
        members = page.get_by_role("list", name="Members")
        expect(members).to_be_visible()
        expect(members.locator(f'.member[data-member="{MARCUS}"]')).to_be_visible()
        assert_inside(page, box(page.locator(".members-menu .head-panel")), f"members {size}")
        page.keyboard.press("Escape")
        expect(members).to_be_hidden()

        if size != "375x667":
            name = "thread-phone" if size == "390x844" else "thread-desktop"
            shot(page, f"{name}-light")
            page.emulate_media(color_scheme="dark")
            shot(page, f"{name}-dark")
        page.context.close()
        browsers.contexts.remove(page.context)


def confirm_dialog(page: Page) -> Locator:
    return page.get_by_role("dialog")


def test_what_cannot_be_undone_asks_first_and_the_lines_arrive_live(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Thanks for applying!")
    recruiter, candidate = browsers.open(), open_sized(browsers, "390x844")
    sign_in(recruiter, MARCUS, next=f"/conversations/{conv}")
    sign_in(candidate, applicant.ext_id, next=f"/conversations/{conv}")
    write(recruiter, "Oops, wrong conversation.")
    expect(message(candidate, "wrong conversation")).to_be_visible()
    sent = message_by_id(
        recruiter,
        int(message(recruiter, "wrong conversation").get_attribute("data-message-id") or 0),
    )

    # Delete for everyone: asked first; Cancel keeps it, and focus goes back to the menu.
    options_button(sent).click()
    sent.get_by_role("button", name="Delete for everyone").click()
    dialog = confirm_dialog(recruiter)
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete this message for everyone?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(options_button(sent)).to_be_focused()
    expect(sent).to_contain_text("wrong conversation")
    options_button(sent).click()
    sent.get_by_role("button", name="Delete for everyone").click()
    dialog.get_by_role("button", name="Delete for everyone").click()
    expect(sent).to_contain_text("This message was deleted")
    expect(message(candidate, "This message was deleted")).to_be_visible()

    # End: from the header's menu, asked first.
    expect(candidate.get_by_label("More actions", exact=True)).to_have_count(0)
    recruiter.get_by_label("More actions", exact=True).click()
    recruiter.get_by_role("button", name="End conversation").click()
    expect(dialog).to_contain_text("End this conversation?")
    assert_inside(recruiter, box(dialog), "the dialog")
    shot(recruiter, "thread-end-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(recruiter.get_by_label("More actions", exact=True)).to_be_focused()
    expect(ended_notice(recruiter)).to_be_hidden()
    recruiter.get_by_label("More actions", exact=True).click()
    recruiter.get_by_role("button", name="End conversation").click()
    dialog.get_by_role("button", name="End conversation").click()
    expect(ended_notice(recruiter)).to_be_visible()
    ended = "Marcus Bell ended the conversation"
    for page in (recruiter, candidate):
        expect(page.locator("#messages li.activity").last).to_contain_text(ended)
    expect(ended_notice(candidate)).to_be_visible()
    expect(usable_composer(candidate)).to_have_count(0)

    # A new message reopens it: the line comes before the message, live on the other side.
    write(recruiter, "One more question, if you have a minute.")
    for page in (recruiter, candidate):
        newest = page.locator("#messages > li").last
        expect(newest).to_contain_text("One more question")
        expect(page.locator("#messages > li").nth(-2)).to_contain_text(
            "Reopened by Marcus Bell's new message"
        )
        expect(page.locator("#messages li.activity")).to_have_count(2)
    expect(usable_composer(candidate)).to_have_count(1)
    shot(candidate, "thread-reopened-phone")
    # Drawn the same after a reload, once each.
    candidate.reload()
    expect(candidate.locator("#messages li.activity")).to_have_count(2)


def test_delete_for_me_can_be_undone(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    first = web.send(MARCUS, conv, "Your interview is at 10:00 on Tuesday.")
    second = web.send(MARCUS, conv, "Please bring your license.")
    page = open_sized(browsers, "375x667")
    deletes: list[str] = []

    def record(request: Request) -> None:
        if request.method == "DELETE":
            deletes.append(request.url)

    page.on("request", record)
    page.clock.install()
    sign_in(page, applicant.ext_id, next=f"/conversations/{conv}")
    item = message_by_id(page, first["id"])
    expect(item).to_be_visible()

    options_button(item).click()
    item.get_by_role("button", name="Delete for me").click()
    expect(message_by_id(page, first["id"])).to_have_count(0)
    toast = page.locator("#undo-toast")
    expect(toast).to_be_visible()
    undo = toast.get_by_role("button", name="Undo")
    assert_target(box(undo), "Undo")
    assert_inside(page, box(toast), "the undo toast")
    expect(undo).to_be_focused()
    shot(page, "thread-undo-phone")
    undo.click()
    expect(toast).to_be_hidden()
    # Back in its place, and focus on its menu button.
    expect(messages(page).first).to_have_attribute("data-message-id", str(first["id"]))
    expect(options_button(message_by_id(page, first["id"]))).to_be_focused()
    page.clock.run_for(8_000)
    assert deletes == []

    # Not undone: sent once, when the undo is no longer offered.
    options_button(item).click()
    item.get_by_role("button", name="Delete for me").click()
    page.clock.run_for(3_000)
    assert deletes == []
    page.clock.run_for(4_000)
    expect(toast).to_be_hidden()
    page.wait_for_timeout(300)  # (the request itself is not on the page's clock)
    assert [re.sub(r"^.*/api", "/api", u) for u in deletes] == [
        f"/api/v1/messages/{first['id']}?for=me"
    ]

    # Leaving the page while the undo is offered sends it then (a keepalive request, which
    # the page's request events do not show: the server's answer is the proof).
    other = message_by_id(page, second["id"])
    options_button(other).click()
    other.get_by_role("button", name="Delete for me").click()
    expect(toast).to_be_visible()
    page.goto("/inbox")
    token = web.token(applicant.ext_id)
    history = web.call("GET", f"/api/v1/conversations/{conv}/messages", token=token)
    for _ in range(50):
        if not history["items"]:
            break
        page.wait_for_timeout(100)
        history = web.call("GET", f"/api/v1/conversations/{conv}/messages", token=token)
    assert history["items"] == []


def wait_until(condition: Callable[[], bool], page: Page, what: str, tick: int = 0) -> None:
    """Poll ``condition``, moving the page's clock on by ``tick`` ms each time: the socket's
    events come in real time, its retries on the page's clock."""
    for _ in range(100):
        if condition():
            return
        if tick:
            page.clock.run_for(tick)
        page.wait_for_timeout(50)
    raise AssertionError(f"never happened: {what}")


def step(page: Page, banner: Locator, ms: int) -> str | None:
    """Move the page's clock on by ``ms``; the banner's state then."""
    page.clock.run_for(ms)
    return banner.get_attribute("data-state")


def test_the_connection_banner_follows_the_socket(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Hello!")
    page = open_sized(browsers, "390x844")
    up = [True]
    sockets: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        # Up: through to the server. Down: accepted and dropped at once, as a restarting
        # server or a proxy in the way would.
        if up[0]:
            ws.connect_to_server()
            sockets.append(ws)
        else:
            ws.close(code=1011)

    page.route_web_socket(re.compile(r"/api/v1/events"), route)
    page.clock.install()
    sign_in(page, applicant.ext_id, next=f"/conversations/{conv}")
    expect(message(page, "Hello!")).to_be_visible()
    draft = composer(page).get_by_label("Message", exact=True)
    draft.fill("A draft that outlives the outage")
    banner = page.locator("#connection")
    page.clock.run_for(2_000)
    expect(banner).to_be_hidden()

    # A blip: dropped and back within the grace period, nothing is shown.
    sockets[-1].close(code=1012)
    wait_until(lambda: len(sockets) == 2, page, "the first retry", tick=100)
    page.wait_for_timeout(500)  # (real time: the handshake and the first frame)
    page.clock.run_for(1_500)  # past the grace period
    expect(banner).to_be_hidden()

    # Down for longer: "Reconnecting…" after the grace period, then an error.
    up[0] = False
    sockets[-1].close(code=1012)
    page.clock.run_for(2_500)
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Reconnecting…")
    expect(banner).to_have_attribute("data-state", "reconnecting")
    assert_inside(page, box(composer(page)), "the composer under the banner")
    # Each retry waits for the last one's (real) failure: the page's clock moves in steps.
    wait_until(lambda: step(page, banner, 5_000) == "failed", page, "the error state")
    expect(banner).to_contain_text("reach jobchat")
    shot(page, "thread-offline-phone")

    # Back: said briefly, then gone; the draft is still there.
    up[0] = True
    # (In steps shorter than the 2.5 s the message stays.)
    wait_until(lambda: step(page, banner, 1_000) == "restored", page, "connected again")
    expect(banner).to_have_text("Connected again")
    page.clock.run_for(3_000)
    expect(banner).to_be_hidden()
    expect(draft).to_have_value("A draft that outlives the outage")
    # And live again: what the recruiter writes arrives.
    web.send(MARCUS, conv, "Are you there?")
    expect(message(page, "Are you there?")).to_be_visible()


def test_focus_follows_what_the_keyboard_asked_for(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    marcus = web.sender(MARCUS)
    for n in range(1, 56):
        web.send(marcus, conv, f"Note {n:02d}")
    # All read: the page opens at the newest (not at a "New messages" line near the top).
    web.call("POST", f"/api/v1/conversations/{conv}/read", token=web.token(applicant.ext_id))
    page = open_sized(browsers, "390x844")
    sign_in(page, applicant.ext_id, next=f"/conversations/{conv}")
    expect(message(page, "Note 55")).to_be_visible()
    expect(messages(page)).to_have_count(50)

    # Older messages asked for from the keyboard: focus goes to the first that came.
    older = page.get_by_role("button", name="Load older messages")
    older.focus()
    page.keyboard.press("Enter")
    expect(messages(page)).to_have_count(55)
    first = messages(page).first
    expect(first).to_contain_text("Note 01")
    expect(first).to_be_focused()
    assert_inside(page, box(first), "the first older message")

    # After sending, focus stays in the composer (the keyboard stays open on a phone).
    write(page, "Thanks, all read.")
    expect(message(page, "Thanks, all read.")).to_be_visible()
    expect(composer(page).get_by_label("Message", exact=True)).to_be_focused()
    assert_inside(page, box(composer(page)), "the composer after sending")


def test_an_unavailable_sms_says_why_in_the_composer(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    """At 390 x 844 (touch): a candidate who gave no consent to texts (nor a number) keeps the
    SMS choice in view,
    disabled, described by its reason; the reason and the choices fit on screen and the composer
    stays inside the viewport; email, which works, can still be chosen."""
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    web.send(MARCUS, conv, "Hello, a note about your application.")
    page = open_sized(browsers, "390x844")
    sign_in(page, MARCUS, next=f"/conversations/{conv}")
    form = composer(page)
    sms = form.get_by_role("radio", name="SMS")
    expect(sms).to_be_disabled()
    expect(sms).to_have_accessible_description(
        f"SMS not available: {applicant.name} has not agreed to receive texts."
    )
    why = form.locator(".channel-why")
    expect(why).to_be_visible()
    assert_inside(page, box(why), "the reason")
    assert_inside(page, box(form), "composer")
    for name in ("In app", "Email", "SMS"):
        label = form.locator("label.channel-option", has_text=name)
        assert box(label)["height"] >= TOUCH_PX - 0.5, name
        assert_inside(page, box(label), name)
    assert_fits(page)
    # The channels that work are still chosen as before: email shows its subject line.
    expect(form.get_by_role("radio", name="In app")).to_be_checked()
    form.locator("label.channel-option", has_text="Email").click()
    expect(form.get_by_role("radio", name="Email")).to_be_checked()
    expect(form.get_by_label("Subject")).to_be_visible()
    assert_inside(page, box(form), "composer with a subject")
    shot(page, "thread-sms-reason-phone-light", full_page=False)
    page.emulate_media(color_scheme="dark")
    shot(page, "thread-sms-reason-phone-dark", full_page=False)
