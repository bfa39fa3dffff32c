"""The composer's templates in Chromium: "/" in an empty message opens the picker, the
keyboard chooses, the preview marks what has no value (and a send that still has it is held
back), the text is edited and sent into the thread; the "Templates" button on a phone; and the
templates page (click-to-insert, confirm before deleting), screenshotted at both sizes and in
both themes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from playwright.sync_api import Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    SWE_JOB,
    TOM,
    Browsers,
    SignIn,
    WebServer,
    assert_fits,
    assert_in_viewport,
    axe,
    axe_report,
    composer,
    message,
    shot,
    small_targets,
)

pytestmark = BROWSER_TESTS

THEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")

# Where the helper's screenshots go as well (the lead looks at them); unset: only the usual.
SHOTS = os.environ.get("JOBCHAT_TEMPLATE_SHOTS")


def snap(page: Page, name: str) -> None:
    path = shot(page, f"templates-{name}")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        Path(SHOTS, path.name).write_bytes(path.read_bytes())


def both_themes(page: Page, name: str) -> None:
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        snap(page, f"{name}-{theme}")
    page.emulate_media(color_scheme="light")


def new_template(web: WebServer, who: str, name: str, body: str, **extra: Any) -> dict[str, Any]:
    made: dict[str, Any] = web.call(
        "POST",
        "/api/v1/templates",
        token=web.token(who),
        json={"name": name, "body": body, **extra},
    )
    return made


def count(web: WebServer, who: str, conv: int) -> int:
    page = web.call("GET", f"/api/v1/conversations/{conv}/messages?limit=100", token=web.token(who))
    return len(page["items"])


def test_slash_opens_the_picker_and_the_keyboard_chooses_edits_and_sends(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    rec = web.new_recruiter("Robin Vale")
    applicant = web.new_applicant("Zora Quinn")
    conv = web.application_chat(applicant, staff=rec)
    new_template(
        web, rec, "Interview slot", "Can you do Tuesday, {{candidate.first_name | there}}?"
    )
    thanks = new_template(
        web,
        rec,
        "Thanks for applying",
        "Hi {{candidate.first_name}}, thanks for applying for {{job.title}}!",
    )
    expected = web.call(
        "POST",
        f"/api/v1/templates/{thanks['id']}/preview",
        token=web.token(rec),
        json={"conversation": conv},
    )["body"]
    assert expected.startswith("Hi Zora, thanks for applying for ")

    page = browsers.open()
    sign_in(page, rec, next=f"/conversations/{conv}")
    form = composer(page)
    box = form.get_by_label("Message", exact=True)
    box.focus()
    page.keyboard.press("/")
    search = form.get_by_role("combobox", name="Search templates")
    expect(search).to_be_focused()
    listbox = form.get_by_role("listbox", name="Templates")
    expect(listbox.get_by_role("option")).to_have_count(2)
    expect(box).to_have_value("")  # the slash was not typed
    # Sorted by name: "Interview slot" first, chosen; arrows move, the search narrows.
    expect(listbox.get_by_role("option", name="Interview slot")).to_have_attribute(
        "aria-selected", "true"
    )
    page.keyboard.press("ArrowDown")
    expect(listbox.get_by_role("option", name="Thanks for applying")).to_have_attribute(
        "aria-selected", "true"
    )
    page.keyboard.press("ArrowDown")  # wraps round
    expect(listbox.get_by_role("option", name="Interview slot")).to_have_attribute(
        "aria-selected", "true"
    )
    page.keyboard.type("thanks")
    expect(listbox.get_by_role("option")).to_have_count(1)
    snap(page, "picker-desktop")
    page.keyboard.press("Enter")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value(expected)
    expect(box).to_be_focused()
    preview = page.locator(".tpl-preview")
    expect(preview).to_be_visible()
    expect(preview.locator(".tpl-missing")).to_be_hidden()
    # Nothing missing: a one-line note, not the text a second time above the message box.
    expect(preview).to_have_text(
        re.compile("“Thanks for applying” filled in for Zora — edit, then send.")
    )
    expect(preview.locator(".tpl-preview-body")).to_be_hidden()
    assert count(web, rec, conv) == 0  # chosen, not sent
    # Edit, then the normal Send.
    box.press("End")
    page.keyboard.type(" See you soon.")
    form.get_by_role("button", name="Send", exact=True).click()
    expect(message(page, expected + " See you soon.")).to_be_visible()
    expect(box).to_have_value("")
    expect(preview).to_be_hidden()
    assert count(web, rec, conv) == 1

    # Escape closes the picker and gives the message box back; "/" in text is just a slash.
    box.focus()
    page.keyboard.press("/")
    expect(listbox).to_be_visible()
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_be_focused()
    page.keyboard.type("a/b")
    expect(box).to_have_value("a/b")
    expect(listbox).to_be_hidden()


def test_a_missing_value_is_marked_and_not_sent(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    conv = web.start(TOM, "job_partners", job=SWE_JOB)
    new_template(
        web, TOM, "Hello partners", "Hi {{candidate.first_name}}, {{sender.first_name}} here."
    )
    before = count(web, TOM, conv)
    page = browsers.open()
    sign_in(page, TOM, next=f"/conversations/{conv}")
    form = composer(page)
    form.get_by_role("button", name="Templates").click()
    listbox = form.get_by_role("listbox", name="Templates")
    listbox.get_by_role("option", name="Hello partners").click()
    preview = page.locator(".tpl-preview")
    mark = preview.locator("mark.tpl-missing-mark")
    expect(mark).to_have_text("{{candidate.first_name}}")
    note = preview.locator(".tpl-missing")
    expect(note).to_contain_text("first name")
    box = form.get_by_label("Message", exact=True)
    expect(box).to_have_value(re.compile(r"^Hi \{\{candidate\.first_name\}\}, \w+ here\.$"))
    snap(page, "missing-desktop")
    # Sending it as it is would write "{{candidate.first_name}}" to people: held back.
    form.get_by_role("button", name="Send", exact=True).click()
    expect(note).to_contain_text("Replace the marked text before sending")
    assert count(web, TOM, conv) == before
    # Replacing the marked text (selected for typing over) lets it go.
    page.keyboard.type("everyone")
    expect(note).to_be_hidden()
    form.get_by_role("button", name="Send", exact=True).click()
    expect(message(page, "Hi everyone,")).to_be_visible()
    assert count(web, TOM, conv) == before + 1


def test_the_templates_button_on_a_phone(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    rec = web.new_recruiter("Robin Phone")
    applicant = web.new_applicant("Yuki Tan")
    conv = web.application_chat(applicant, staff=rec)
    new_template(web, rec, "Quick hello", "Hello {{candidate.first_name}}!")
    page = browsers.open("phone-390x844")
    sign_in(page, rec, next=f"/conversations/{conv}")
    form = composer(page)
    button = form.get_by_role("button", name="Templates")
    assert_in_viewport(page, button)
    button.tap()
    listbox = form.get_by_role("listbox", name="Templates")
    option = listbox.get_by_role("option", name="Quick hello")
    assert_in_viewport(page, option)
    assert_in_viewport(page, form.get_by_role("link", name="Manage templates"))
    assert_fits(page)
    assert small_targets(page) == []
    # The list stays over the history, inside the conversation's column: the chat's header
    # (and its back button) still shows.
    panel = form.get_by_role("dialog", name="Choose a template").bounding_box()
    history = page.locator("#scroller").bounding_box()
    column = form.bounding_box()
    assert panel and history and column
    assert panel["y"] >= history["y"] - 1
    assert (
        panel["x"] >= column["x"]
        and panel["x"] + panel["width"] <= column["x"] + column["width"] + 1
    )
    assert_in_viewport(page, page.get_by_role("link", name="Back to inbox"))
    snap(page, "picker-phone")
    option.tap()
    box = form.get_by_label("Message", exact=True)
    expect(box).to_have_value("Hello Yuki!")
    # Undo gives back what the message box held before (here: nothing).
    form.get_by_role("button", name="Undo template").tap()
    expect(box).to_have_value("")
    expect(page.locator(".tpl-preview")).to_be_hidden()
    form.get_by_role("button", name="Templates").tap()
    listbox.get_by_role("option", name="Quick hello").tap()
    expect(box).to_have_value("Hello Yuki!")
    assert_fits(page)
    both_themes(page, "chosen-phone")
    form.get_by_role("button", name="Send", exact=True).tap()
    expect(message(page, "Hello Yuki!")).to_be_visible()


def test_the_start_composer_renders_for_what_the_chat_will_be_about(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    rec = web.new_recruiter("Robin Start")
    applicant = web.new_applicant("Xavi Stone")
    new_template(
        web, rec, "First hello", "Hi {{candidate.first_name}}, about {{application.stage}}."
    )
    page = browsers.open()
    sign_in(
        page, rec, next=f"/conversations/new?kind=application&application={applicant.application}"
    )
    form = page.locator("#start-form")
    body = form.get_by_label("First message")
    body.focus()
    page.keyboard.press("/")
    expect(form.get_by_role("option", name="First hello")).to_have_attribute(
        "aria-selected", "true"
    )
    page.keyboard.press("Enter")
    expect(body).to_have_value("Hi Xavi, about applied.")
    snap(page, "start-desktop")
    form.get_by_role("button", name="Send and start chat").click()
    expect(message(page, "Hi Xavi, about applied.")).to_be_visible()


def test_the_templates_page(web: WebServer, browsers: Browsers, sign_in: SignIn) -> None:
    rec = web.new_recruiter("Robin Page")
    for device in ("desktop", "phone-390x844"):
        page = browsers.open(device)
        sign_in(page, rec, next="/templates")
        if device == "desktop":
            expect(page.get_by_text("No templates yet")).to_be_visible()
            both_themes(page, "empty-desktop")
            page.get_by_role("link", name="Write your first template").click()
            page.get_by_label("Name", exact=True).fill("Interview invitation")
            body = page.get_by_label("Message", exact=True)
            body.fill("Hi ")
            page.get_by_role("button", name="{{candidate.first_name}}").click()
            page.keyboard.type(", can you do Tuesday for the ")
            page.get_by_role("button", name="{{job.title}}").click()
            page.keyboard.type(" interview?")
            expect(body).to_have_value(
                "Hi {{candidate.first_name}}, can you do Tuesday for the {{job.title}} interview?"
            )
            page.get_by_label("Share with").check()
            page.get_by_role("button", name="Save template").click()
            expect(page.get_by_text("The template is saved.")).to_be_visible()
            # A mistake is shown at its field.
            page.get_by_role("link", name="New template").click()
            page.get_by_label("Name", exact=True).fill("Broken")
            page.get_by_label("Message", exact=True).fill("Dear {{candidate.nickname}}")
            page.get_by_role("button", name="Save template").click()
            expect(page.locator("#template-body-error")).to_contain_text("{{candidate.nickname}}")
            both_themes(page, "error-desktop")
            page.get_by_label("Message", exact=True).fill("Dear {{candidate.name}}")
            page.get_by_role("button", name="Save template").click()
            expect(page.get_by_text("The template is saved.")).to_be_visible()
            both_themes(page, "list-desktop")
            page.get_by_role("link", name="Broken").click()
            both_themes(page, "edit-desktop")
            # Deleting asks first; Cancel keeps it.
            page.get_by_role("button", name="Delete template").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text("Delete “Broken”?")
            snap(page, "delete-confirm-desktop")
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_be_hidden()
            page.get_by_role("button", name="Delete template").click()
            dialog.get_by_role("button", name="Delete").click()
            expect(page.get_by_text("The template is deleted.")).to_be_visible()
            expect(page.get_by_role("link", name="Broken")).to_have_count(0)
            page.goto("/settings")
            expect(page.get_by_role("link", name="Manage templates")).to_be_visible()
            both_themes(page, "settings-desktop")
        else:
            expect(page.get_by_role("link", name="Interview invitation")).to_be_visible()
            assert_fits(page)
            assert small_targets(page) == []
            both_themes(page, "list-phone")
            page.get_by_role("link", name="Interview invitation").click()
            expect(page.get_by_label("Name", exact=True)).to_have_value("Interview invitation")
            assert_fits(page)
            assert small_targets(page) == []
            both_themes(page, "edit-phone")
            page.goto("/templates/new")
            both_themes(page, "new-phone")
            page.goto("/settings")
            both_themes(page, "settings-phone")
            page.get_by_role("link", name="Manage templates").click()
            expect(page).to_have_url(f"{web.base}/templates")


def test_axe_with_the_picker_and_a_preview_open(
    web: WebServer, browsers: Browsers, sign_in: SignIn
) -> None:
    conv = web.start(TOM, "job_partners", job=SWE_JOB)
    new_template(web, TOM, "Axe check", "Hi {{candidate.first_name}} from {{sender.name}}")
    for device in ("desktop", "phone-390x844"):
        page = browsers.open(device, bypass_csp=True)
        sign_in(page, TOM, next=f"/conversations/{conv}")
        form = composer(page)
        form.get_by_role("button", name="Templates").click()
        option = form.get_by_role("option", name="Axe check")
        expect(option).to_be_visible()
        for theme in THEMES:
            page.emulate_media(color_scheme=theme)
            found = axe(page)
            assert not found, axe_report(found)
        option.click()
        expect(page.locator("mark.tpl-missing-mark")).to_be_visible()
        for theme in THEMES:
            page.emulate_media(color_scheme=theme)
            found = axe(page)
            assert not found, axe_report(found)
        if device != "desktop":
            assert small_targets(page) == []
