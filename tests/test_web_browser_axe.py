"""Every page of the app, as each demo persona sees it, checked by axe-core (its default rules:
WCAG 2.0/2.1/2.2 A and AA and best practices) on a 375 x 667 phone and a 1280 x 800 desktop,
in the light and the dark theme, with zero violations allowed; and every control on those pages
at least 44 x 44 px on the phone.

Cost: one server for the module, one browser context per persona and size (signed in once, its
one page reused for every visit), axe run twice per page load (light, then dark, switched with
``emulate_media`` without reloading). The contexts bypass our Content-Security-Policy, for axe's
inline script alone (tests/browser_support.py: axe); the other browser tests keep it on and
fail on any CSP violation, so nothing the policy would block goes unnoticed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    DEVICES,
    HANNAH,
    LAYLA,
    MARCUS,
    OMAR,
    RACHEL,
    SWE_JOB,
    TOM,
    AxeViolation,
    Browsers,
    Device,
    WebServer,
    assert_in_viewport,
    assert_touch_target,
    axe,
    axe_report,
    box,
    message,
    options_button,
    small_targets,
)
from tests.test_sms_quiet_hours_browser import held_text_chat

pytestmark = BROWSER_TESTS

Theme = Literal["light", "dark"]
THEMES: tuple[Theme, ...] = ("light", "dark")
PHONE: Device = "phone-375x667"
SIZES: tuple[Device, ...] = (PHONE, "desktop")

# The demo's jobs and applications the pages below are about (jobchat/demo.py).
ICU_JOB = "nw-icu-rn"
DEREK_APPLICATION = "app-psc-derek"  # nobody has talked to Derek yet: the composer is empty
AHMED_APPLICATION = "app-swe-ahmed"  # no case chat about Ahmed yet


@dataclass(frozen=True)
class Visit:
    """A page: its name in test ids, who looks at it (None: signed out), its path (``{name}``
    is a conversation of ``Audit.conversations``) and the status it answers with."""

    name: str
    who: str | None
    path: str
    status: int = 200


PAGES = [
    # Signed out.
    Visit("home-signed-out", None, "/"),
    Visit("sign-in-link-spent", None, "/login/jcl_not-a-real-link", 404),
    Visit("not-found-signed-out", None, "/no-such-page", 404),
    Visit("offline", None, "/offline"),
    # A recruiter (Northwind Health).
    Visit("recruiter-inbox", MARCUS, "/inbox"),
    Visit("recruiter-inbox-unread", MARCUS, "/inbox?filter=unread"),
    Visit("recruiter-inbox-no-match", MARCUS, "/inbox?q=zzzz-nobody"),
    Visit("recruiter-application-chat", MARCUS, "/conversations/{application}"),
    Visit("recruiter-agency-thread", MARCUS, "/conversations/{agency}"),
    Visit("recruiter-ended-chat", MARCUS, "/conversations/{ended}"),
    Visit("recruiter-closed-job-chat", MARCUS, "/conversations/{closed_job}"),
    # Opened from a notification about a message deleted since.
    Visit("recruiter-notified-deleted", MARCUS, "/conversations/{notified_deleted}"),
    # A text held for the candidate's night, with the line saying when it goes.
    Visit("recruiter-held-text", MARCUS, "/conversations/{held_text}"),
    Visit("recruiter-candidates", MARCUS, "/candidates"),
    Visit("recruiter-profile-messages", MARCUS, "/candidates/cand-hannah?tab=messages"),
    Visit("recruiter-profile-communications", MARCUS, "/candidates/cand-hannah?tab=communications"),
    Visit("recruiter-profile-agency", MARCUS, "/candidates/cand-maria?tab=agency"),
    Visit("recruiter-jobs", MARCUS, "/jobs"),
    Visit("recruiter-job-overview", MARCUS, f"/jobs/{ICU_JOB}?tab=overview"),
    Visit(
        "recruiter-new-chat",
        MARCUS,
        f"/conversations/new?kind=application&application={DEREK_APPLICATION}",
    ),
    Visit("recruiter-settings", MARCUS, "/settings"),
    Visit("recruiter-templates", MARCUS, "/templates"),
    Visit("recruiter-template-new", MARCUS, "/templates/new"),
    Visit("recruiter-scheduled", MARCUS, "/scheduled"),
    Visit("recruiter-scheduled-edit", MARCUS, "/scheduled?edit={scheduled_id}"),
    Visit("recruiter-scheduled-cancelled", MARCUS, "/scheduled?status=cancelled"),
    Visit("recruiter-scheduled-chat", MARCUS, "/conversations/{scheduled}"),
    Visit(
        "recruiter-bulk-compose",
        MARCUS,
        f"/bulk/new?application={DEREK_APPLICATION}&application=app-psc-lucia&channel=sms",
    ),
    Visit("recruiter-bulk-progress", MARCUS, "/bulk/{bulk}"),
    Visit("recruiter-not-found", MARCUS, "/conversations/987654", 404),
    # A recruiter on an employer's team with partners (Iress).
    Visit("team-case-chat", TOM, "/conversations/{case}"),
    Visit("team-job-chats", TOM, f"/jobs/{SWE_JOB}?tab=chats"),
    Visit("team-job-chat-open", TOM, f"/jobs/{SWE_JOB}?tab=chats&open={{relocation}}"),
    Visit(
        "team-new-case-chat", TOM, f"/conversations/new?kind=case&application={AHMED_APPLICATION}"
    ),
    # A source partner's caseworker.
    Visit("caseworker-inbox", LAYLA, "/inbox"),
    Visit("caseworker-partner-chat", LAYLA, "/conversations/{job_partner}"),
    Visit("caseworker-all-partners-chat", LAYLA, "/conversations/{job_partners}"),
    Visit("caseworker-relocation-chat", LAYLA, "/conversations/{relocation}"),
    Visit("caseworker-candidate-chat", LAYLA, "/conversations/{candidate_partner}"),
    Visit("caseworker-candidates", LAYLA, "/candidates"),
    Visit("caseworker-jobs", LAYLA, "/jobs"),
    # An external agency's user.
    Visit("agency-inbox", RACHEL, "/inbox"),
    Visit("agency-thread", RACHEL, "/conversations/{agency}"),
    Visit("agency-private-thread", RACHEL, "/conversations/{agency_private}"),
    Visit("agency-candidates", RACHEL, "/candidates"),
    Visit("agency-profile", RACHEL, "/candidates/cand-maria?tab=agency"),
    # Candidates.
    Visit("candidate-portal", OMAR, "/portal"),
    Visit("candidate-relocation-chat", OMAR, "/conversations/{relocation}"),
    Visit("candidate-partner-chat", OMAR, "/conversations/{candidate_partner_omar}"),
    Visit("candidate-inbox", OMAR, "/inbox"),
    Visit("candidate-settings", OMAR, "/settings"),
    Visit("candidate-application-chat", HANNAH, "/conversations/{application}"),
]

# Which of each person's conversations a page name stands for: (who, kind, ended).
CONVERSATIONS = {
    "application": (MARCUS, "application", False),
    "agency": (MARCUS, "agency", False),
    "agency_private": (RACHEL, "agency_private", False),
    "ended": (MARCUS, "application", True),
    "case": (TOM, "case", False),
    "job_partner": (LAYLA, "job_partner", False),
    "job_partners": (LAYLA, "job_partners", False),
    "relocation": (LAYLA, "job_relocation", False),
    "candidate_partner": (LAYLA, "candidate_partner", False),
    "candidate_partner_omar": (OMAR, "candidate_partner", False),
}

# Wait for the theme's colours to settle: a transition on a colour would show axe a blend.
SETTLED_JS = """() => Promise.all(document.getAnimations()
  .filter((a) => a instanceof CSSTransition)
  .map((a) => a.finished.catch(() => null)))"""


@dataclass
class Audit:
    """The module's browser: a context per (person, size), signed in once, each with the one
    page every visit of theirs reuses; and the conversations the pages name."""

    web: WebServer
    browsers: Browsers
    conversations: dict[str, int | str] = field(default_factory=dict)
    pages: dict[tuple[str | None, Device], Page] = field(default_factory=dict)
    # small_targets of each page on the phone, taken while axe's visit has it open (one page
    # load fewer per page); a page not measured yet is visited for it.
    targets: dict[str, list[str]] = field(default_factory=dict)

    def page(self, who: str | None, device: Device) -> Page:
        key = (who, device)
        if key not in self.pages:
            page = self.browsers.open(device, bypass_csp=True)
            if who is not None:
                page.goto(self.web.login_link(who))
            self.pages[key] = page
        return self.pages[key]

    def visit(self, visit: Visit, device: Device) -> Page:
        page = self.page(visit.who, device)
        page.emulate_media(color_scheme="light")
        path = visit.path.format(**self.conversations)
        response = page.goto(path)
        assert response is not None
        assert response.status == visit.status, (
            f"GET {path} as {visit.who or 'nobody'}: {response.status}, not {visit.status}"
        )
        self.assert_no_problems()
        return page

    def assert_no_problems(self) -> None:
        """JavaScript and console errors, 5xx answers (fail the test that saw them)."""
        problems = list(self.browsers.watch.problems)
        self.browsers.watch.problems.clear()
        assert not problems, "the browser reported problems:\n" + "\n".join(problems)

    def small_targets(self, visit: Visit) -> tuple[str, list[str]]:
        """(the page's URL, its controls under 44 x 44 px on the phone)."""
        if visit.name not in self.targets:
            self.measure_targets(visit, self.visit(visit, PHONE))
        return self.web.base + visit.path.format(**self.conversations), self.targets[visit.name]

    def measure_targets(self, visit: Visit, page: Page) -> None:
        self.targets[visit.name] = small_targets(page)

    def in_both_themes(self, page: Page) -> dict[Theme, list[AxeViolation]]:
        found: dict[Theme, list[AxeViolation]] = {}
        for theme in THEMES:
            page.emulate_media(color_scheme=theme)
            page.evaluate(SETTLED_JS)
            found[theme] = axe(page)
        page.emulate_media(color_scheme="light")
        return found


def assert_none(where: str, found: dict[Theme, list[AxeViolation]]) -> None:
    """Fail with axe's findings, theme by theme (without pytest's rewriting of the dicts)."""
    if any(found.values()):
        pytest.fail(
            f"axe on {where}:\n"
            + "\n".join(f" {theme}:\n{axe_report(v)}" for theme, v in found.items() if v),
            pytrace=False,
        )


def closed_job_chat(web: WebServer) -> int:
    """A Northwind job with one application chat in it, then closed (readable, no new
    messages)."""
    tag = uuid.uuid4().hex[:8]
    job = {"title": "Unit Clerk — Lakeview Clinic", "employer": "northwind-health", "team": []}
    web.call("PUT", f"/api/v1/jobs/job-{tag}", json=job | {"partners": []})
    candidate = f"cand-{tag}"
    web.call(
        "PUT",
        f"/api/v1/candidates/{candidate}",
        json={"name": "Noah Park", "email": f"{candidate}@example.org"},
    )
    web.call(
        "PUT",
        f"/api/v1/applications/app-{tag}",
        json={"job": f"job-{tag}", "candidate": candidate, "stage": "applied"},
    )
    conv = web.start(MARCUS, "application", application=f"app-{tag}")
    web.send(MARCUS, conv, "Thanks for applying, Noah. We have filled this role, I'm afraid.")
    web.call("PUT", f"/api/v1/jobs/job-{tag}", json=job | {"status": "closed"})
    return conv


def find_conversations(web: WebServer) -> dict[str, int | str]:
    """The demo's conversation of each kind the pages are about (as each person's inbox has
    it), and the closed job's."""
    found: dict[str, int | str] = {
        name: web.conversation_of(who, kind, ended=ended)
        for name, (who, kind, ended) in CONVERSATIONS.items()
    }
    # Made after the lookups, which would otherwise take it for Marcus's application chat.
    found["closed_job"] = closed_job_chat(web)
    found["notified_deleted"] = notified_deleted(web)
    found["held_text"] = held_text_chat(web)
    found["scheduled"], found["scheduled_id"] = scheduled_chat(web)
    found["bulk"] = bulk_message(web)
    return found


def bulk_message(web: WebServer) -> int:
    """A bulk message of Marcus's with one recipient sent and one skipped."""
    to = [web.new_applicant().application, "app-nobody"]
    bulk = web.call(
        "POST",
        "/api/v1/bulk-messages",
        token=web.token(MARCUS),
        json={"applications": to, "body": "Thanks for applying!", "channel": "app"},
    )
    found: int = bulk["id"]
    return found


def scheduled_chat(web: WebServer) -> tuple[int, int]:
    """A chat with two messages Marcus scheduled for tomorrow (by email, and in the app), and
    one he cancelled: (the conversation, the one by email)."""
    conv = web.application_chat(web.new_applicant())
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    by_email = web.send(
        MARCUS,
        conv,
        "Your interview details follow.",
        channel="email",
        subject="Interview",
        send_at=tomorrow,
    )
    web.send(MARCUS, conv, "Looking forward to meeting you!", send_at=tomorrow)
    gone = web.send(MARCUS, conv, "Never mind.", send_at=tomorrow)
    web.call("DELETE", f"/api/v1/scheduled-messages/{gone['id']}", token=web.token(MARCUS))
    return conv, int(by_email["id"])


def notified_deleted(web: WebServer) -> str:
    """A conversation's path with ``?message=`` of a message its author deleted for everyone
    (what a notification's link opens after the fact)."""
    conv = web.application_chat(web.new_applicant())
    web.send(MARCUS, conv, "Thanks for applying! Are you free on Monday?")
    gone = web.send(MARCUS, conv, "Sorry, that was meant for someone else.")
    web.call("DELETE", f"/api/v1/messages/{gone['id']}?for=everyone", token=web.token(MARCUS))
    return f"{conv}?message={gone['id']}"


@pytest.fixture(scope="module")
def audit(chromium: Browser, web: WebServer) -> Iterator[Audit]:
    browsers = Browsers(chromium, web)
    try:
        yield Audit(web, browsers, conversations=find_conversations(web))
    finally:
        browsers.close()


@pytest.mark.parametrize("device", SIZES)
@pytest.mark.parametrize("visit", PAGES, ids=[v.name for v in PAGES])
def test_axe_finds_nothing(audit: Audit, visit: Visit, device: Device) -> None:
    page = audit.visit(visit, device)
    if device == PHONE:
        audit.measure_targets(visit, page)
    found = audit.in_both_themes(page)
    audit.assert_no_problems()
    assert_none(f"{page.url} as {visit.who or 'nobody'} ({device})", found)


@pytest.mark.parametrize("visit", PAGES, ids=[v.name for v in PAGES])
def test_phone_targets_are_big_enough(audit: Audit, visit: Visit) -> None:
    """Every link, button, field and menu on the page is at least 44 x 44 px on a touch phone
    (links inside running text excepted)."""
    url, small = audit.small_targets(visit)
    if small:
        pytest.fail(
            f"{url} as {visit.who or 'nobody'}: {len(small)} smaller than 44x44 px:\n  "
            + "\n  ".join(small),
            pytrace=False,
        )


@pytest.mark.parametrize("device", SIZES)
def test_axe_with_a_message_menu_and_a_confirmation_open(
    audit: Audit, web: WebServer, device: Device
) -> None:
    """A message's menu open, then the confirmation "Delete for everyone" asks for: axe finds
    nothing in either, and the confirmation can be turned down."""
    applicant = web.new_applicant()
    conv = web.application_chat(applicant)
    text = f"Your interview is on Monday at 10:00 ({uuid.uuid4().hex[:6]})."
    web.send(MARCUS, conv, text)
    page = audit.visit(Visit("menu", MARCUS, f"/conversations/{conv}"), device)
    item = message(page, text)
    options_button(item).click()
    # On the page, not in the item: a menu may be drawn outside the message to fit the screen.
    delete = (
        page.get_by_role("button", name="Delete for everyone", exact=True)
        .or_(page.get_by_role("menuitem", name="Delete for everyone", exact=True))
        .filter(visible=True)
    )
    expect(delete).to_be_visible()
    menu = audit.in_both_themes(page)

    delete.click()
    dialog = page.get_by_role("dialog").or_(page.get_by_role("alertdialog"))
    expect(dialog).to_be_visible()
    confirmation = audit.in_both_themes(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(item).not_to_have_class(re.compile(r"\bdeleted\b"))
    audit.assert_no_problems()
    assert_none(f"a message's menu ({device})", menu)
    assert_none(f"the Delete for everyone confirmation ({device})", confirmation)


@pytest.mark.parametrize("device", SIZES)
def test_axe_with_the_notifications_prompt_open(
    audit: Audit, web: WebServer, device: Device
) -> None:
    """The offer to turn notifications on, as it appears after a send (push.js): axe finds
    nothing in it, and its buttons are full-sized targets on the phone."""
    conv = web.application_chat(web.new_applicant())
    page = audit.visit(Visit("prompt", MARCUS, f"/conversations/{conv}"), device)
    page.evaluate("() => localStorage.clear()")
    page.locator("#composer textarea").fill("Hello! Are you free for a call this week?")
    page.locator("#composer button.send").click()
    prompt = page.get_by_role("region", name="Get a notification when someone replies?")
    expect(prompt).to_be_visible()
    if device == PHONE:
        for name in ("Turn on notifications", "Not now"):
            assert_touch_target(prompt.get_by_role("button", name=name))
    found = audit.in_both_themes(page)
    audit.assert_no_problems()
    assert_none(f"the notifications prompt ({device})", found)


# The measures themselves, on a page made to break them (no server: nothing else to blame).
FLAWED = """<!doctype html><html lang="en"><head><title>Flawed</title></head><body>
<main id="main" tabindex="-1"><h1>Flawed</h1>
<ul id="bad-list"><div>not an item</div></ul>
<p>Read the <a href="#terms" id="inline">terms</a> before you sign.</p>
<p><a href="#alone" id="alone">Alone</a></p>
<button id="tiny" style="width: 20px; height: 20px">x</button>
<button id="big" style="width: 48px; height: 48px">ok</button>
<label style="display: inline-block; padding: 14px 10px"><input type="checkbox"> Agree</label>
<a href="#main" id="skip" style="position: absolute; left: -999px">Skip</a>
</main></body></html>"""


def test_the_measures_see_what_is_wrong(chromium: Browser) -> None:
    context = chromium.new_context(**DEVICES[PHONE])
    try:
        page = context.new_page()
        page.set_content(FLAWED)
        found = axe(page)
        assert [(v.rule, v.targets) for v in found] == [("list", ["#bad-list"])], axe_report(found)
        assert "dequeuniversity.com/rules/axe/" in axe_report(found)

        small = small_targets(page)
        assert any(s.startswith('button#tiny "x" 20x20') for s in small), small
        assert any(s.startswith('a#alone "Alone"') for s in small), small
        # Not: a link in a sentence, a big button, a check box in a big label, a skip link.
        assert not [s for s in small if re.match(r"a#inline|button#big|input|a#skip", s)], small

        assert_touch_target(page.locator("#big"))
        with pytest.raises(AssertionError, match="20x20 px"):
            assert_touch_target(page.locator("#tiny"))
        assert_in_viewport(page, page.locator("#big"))
        with pytest.raises(AssertionError, match="not inside the 375x667 viewport"):
            assert_in_viewport(page, page.locator("#skip"))
        assert box(page.locator("#big"))["width"] == 48
    finally:
        context.close()


@pytest.mark.parametrize("device", SIZES)
def test_axe_with_send_later_open(audit: Audit, device: Device) -> None:
    """The composer's "Send later" choices open: axe finds nothing, in either theme."""
    page = audit.visit(Visit("send-later", MARCUS, "/conversations/{scheduled}"), device)
    page.locator("#composer").get_by_role("button", name="Schedule", exact=True).click()
    panel = page.locator("#composer").get_by_role("group", name="Send later")
    expect(panel).to_be_visible()
    panel.get_by_role("radio", name="Pick a date and time").check()
    expect(panel).to_be_visible()
    found = audit.in_both_themes(page)
    audit.assert_no_problems()
    assert_none(f"Send later ({device})", found)
