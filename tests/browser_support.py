"""Browser tests: the demo world served by a real ``jobchat serve``, driven with Playwright's
Chromium (Debian's /usr/bin/chromium; nothing is downloaded at run time).

- ``web`` (one per test module): the demo world (built once per run, then copied) in a fresh
  SQLite file, served by ``jobchat serve`` on a free port, with helpers that speak to the
  integration API (sign-in links, tokens, new candidates, sends).
- ``chromium`` (one per run): the browser.
- ``browsers`` (one per test): opens fresh contexts, "desktop" (1280x800) or "phone" (375x740,
  touch), so two people are two browsers with separate cookies. Every page is watched: a
  JavaScript error, a console error, a CSP violation or a 5xx answer fails the test.
- ``sign_in(page, who, next=None)``: a fresh one-time sign-in link through the integration API,
  followed in ``page``.
- ``shot(page, name, docs=False)``: a full-page PNG under test-artifacts/screenshots/, and, when
  JOBCHAT_DOCS_SCREENSHOTS=1, the chosen ones under docs/screenshots/ too.
- Measuring: ``box(locator)``, ``assert_in_viewport(page, locator)``,
  ``assert_touch_target(locator)`` and ``small_targets(page)`` (every control under 44 x 44 px).
- ``axe(page)``: axe-core (tests/vendor/axe-core, never served by jobchat) run on the page with
  its default rules; ``axe_report(violations)`` says what is wrong, where, and where to read why.

tests/conftest.py imports the fixtures and the report hook, so every test module has them.
The tests run in the SQLite pass of ./scripts/test only: the server always uses its own
SQLite file, so the PostgreSQL pass would run them again for nothing.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    FloatRect,
    Locator,
    Page,
    Playwright,
    Response,
    expect,
    sync_playwright,
)

from jobchat.demo import NORTHWIND, PSC, build_demo, fresh_database
from tests.support import ServedProcess, free_port, spawn_serve, wait_until_serving

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILURES = ARTIFACTS / "failures"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")

# Every browser test module: pytestmark = BROWSER_TESTS
BROWSER_TESTS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(PG_URL),
        reason="browser tests serve their own SQLite file; they run in the SQLite pass "
        "(JOBCHAT_TEST_DATABASE_URL is set)",
    ),
]

# Playwright's auto-waiting assertions: long enough for a 2-core machine under load.
WAIT_MS = 10_000
expect.set_options(timeout=WAIT_MS)

Device = Literal["desktop", "phone", "phone-375x667", "phone-390x844"]


def _phone(width: int, height: int) -> dict[str, Any]:
    return {
        "viewport": {"width": width, "height": height},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    }


DEVICES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": _phone(375, 740),
    # The sizes issue 15 names: the smallest phone in use (iPhone SE) and a common one.
    "phone-375x667": _phone(375, 667),
    "phone-390x844": _phone(390, 844),
}

# The demo's people, by what they are (jobchat/demo_access.py: PERSONAS; jobchat/demo.py: the cast).
PRIYA = "iress-priya"  # Iress admin
TOM = "iress-tom"  # Iress recruiter, on the Senior Software Engineer team
MARCUS = "nw-marcus"  # Northwind Health recruiter
AISHA = "nw-aisha"  # Northwind Health recruiter (Hannah's application)
LAYLA = "tbb-layla"  # Talent Beyond Boundaries caseworker (source partner)
JOSEPH = "crs-joseph"  # CRS caseworker (source partner)
RACHEL = "bright-rachel"  # Bright Talent Recruiting (agency user)
OMAR = "cand-omar"  # candidate relocating to Melbourne (TBB)
HANNAH = "cand-hannah"  # candidate at Northwind Health
SWE_JOB = "iress-swe-2"  # Senior Software Engineer — Melbourne (visa sponsored)


# --- the server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    """A candidate made for one test, with an application to Northwind's Patient Services
    Coordinator job (no hiring team: all of Northwind Health works it)."""

    ext_id: str
    name: str
    email: str
    application: str


@dataclass
class WebServer(ServedProcess):
    """``jobchat serve`` on a copy of the demo world, and the integration API beside it."""

    api_key: str
    kinds: dict[str, Literal["users", "candidates"]] = field(default_factory=dict)

    def close(self) -> None:
        self.terminate()

    # The integration API (the API key) and the user API (a user's token).

    def call(self, method: str, path: str, *, token: str | None = None, json: Any = None) -> Any:
        """A request that must succeed (2xx); its JSON answer."""
        response = self.http.request(
            method,
            path,
            json=json,
            headers={"Authorization": f"Bearer {token or self.api_key}"},
        )
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def _per_person(self, who: str, what: str) -> Any:
        """POST /api/v1/{users|candidates}/{who}/{what}: whichever ``who`` is (then remembered)."""
        kinds: list[Literal["users", "candidates"]] = (
            [self.kinds[who]] if who in self.kinds else ["users", "candidates"]
        )
        for kind in kinds:
            response = self.http.post(
                f"/api/v1/{kind}/{who}/{what}", headers={"Authorization": f"Bearer {self.api_key}"}
            )
            if response.status_code != 404:
                assert response.status_code == 201, response.text
                self.kinds[who] = kind
                return response.json()
        raise AssertionError(f"nobody has the external id {who!r}")

    def token(self, who: str) -> str:
        """A bearer token acting as the staff user or candidate with external id ``who``."""
        token: str = self._per_person(who, "tokens")["token"]
        return token

    def login_link(self, who: str) -> str:
        """A fresh one-time sign-in link for the staff user or candidate ``who``."""
        url: str = self._per_person(who, "login-links")["url"]
        return url

    def new_applicant(self, name: str | None = None, **extra: Any) -> Applicant:
        """A fresh candidate (ids carry a fresh tag) who applied to Northwind's PSC job."""
        tag = uuid.uuid4().hex[:8]
        ext_id = f"cand-{tag}"
        name = name or f"Nora Quinn {tag[:4]}"
        email = f"{ext_id}@example.org"
        body = {"name": name, "email": email} | extra
        self.call("PUT", f"/api/v1/candidates/{ext_id}", json=body)
        self.kinds[ext_id] = "candidates"
        application = f"app-{tag}"
        self.call(
            "PUT",
            f"/api/v1/applications/{application}",
            json={"job": PSC, "candidate": ext_id, "stage": "applied", "stage_owner": MARCUS},
        )
        return Applicant(ext_id, name, email, application)

    def new_recruiter(self, name: str | None = None) -> str:
        """A fresh Northwind Health recruiter (nobody else's unread counts move with theirs)."""
        tag = uuid.uuid4().hex[:8]
        ext_id = f"nw-{tag}"
        self.call(
            "PUT",
            f"/api/v1/users/{ext_id}",
            json={
                "name": name or f"Robin Vale {tag[:4]}",
                "email": f"{ext_id}@northwindhealth.example",
                "organization": NORTHWIND,
                "role": "member",
                "timezone": "America/Chicago",
            },
        )
        self.kinds[ext_id] = "users"
        return ext_id

    def start(self, who: str, kind: str, **refs: str) -> int:
        """``who`` opens (or reaches) a conversation; its id."""
        body = {"kind": kind, **refs}
        conv: int = self.call("POST", "/api/v1/conversations", token=self.token(who), json=body)[
            "id"
        ]
        return conv

    def application_chat(self, applicant: Applicant, staff: str = MARCUS) -> int:
        return self.start(staff, "application", application=applicant.application)

    def send(self, who: str | Sender, conv: int, body: str, **extra: Any) -> dict[str, Any]:
        token = who.token if isinstance(who, Sender) else self.token(who)
        message: dict[str, Any] = self.call(
            "POST",
            f"/api/v1/conversations/{conv}/messages",
            token=token,
            json={"body": body, **extra},
        )
        return message

    def conversation_of(self, who: str, kind: str, *, ended: bool = False) -> int:
        """The latest conversation of ``kind`` in ``who``'s inbox (ended or not), by the API."""
        items = self.call("GET", "/api/v1/conversations?limit=100", token=self.token(who))["items"]
        for item in items:
            if item["kind"] == kind and (item["status"] == "ended") == ended:
                found: int = item["id"]
                return found
        raise AssertionError(f"{who} has no {'ended ' if ended else ''}{kind} conversation")

    def sender(self, who: str) -> Sender:
        """A token kept for many sends."""
        return Sender(self.token(who))


@dataclass(frozen=True)
class Sender:
    token: str


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo world, built once per run; each module serves a copy of it."""
    path = tmp_path_factory.mktemp("demo-template") / "demo.db"
    db = fresh_database(f"sqlite:///{path}")
    try:
        # Its own sign-in links name a port nobody serves; the tests mint their own.
        build_demo(db, public_url="http://127.0.0.1:9")
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.dispose()
    return path


def launch(template: Path, workdir: Path, extra_env: dict[str, str] | None = None) -> WebServer:
    """Start ``jobchat serve`` on a copy of ``template`` (it boots in the background), with
    ``extra_env`` added to its settings."""
    database = workdir / "jobchat.db"
    shutil.copyfile(template, database)
    port = free_port()
    api_key = f"browser-{secrets.token_urlsafe(16)}"
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
        | {
            "PYTHONUNBUFFERED": "1",
            "JOBCHAT_DATABASE_URL": f"sqlite:///{database}",
            "JOBCHAT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "JOBCHAT_API_KEY": api_key,
            "JOBCHAT_SMS_PROVIDER": "console",
            # Email and SMS go to the log (no SMTP server is set up) through the in-process worker.
            "JOBCHAT_RUN_WORKER": "true",
            "JOBCHAT_SEND_RATE_PER_MINUTE": "100000",
            # Push subscriptions at a loopback endpoint: the stand-in for a browser's push service,
            # which headless Chromium cannot reach (tests/test_web_browser_pwa.py).
            "JOBCHAT_PUSH_ALLOW_INSECURE": "true",
        }
        | (extra_env or {})
    )
    process, log = spawn_serve(port, env, workdir)
    return WebServer(port=port, api_key=api_key, process=process, log=log)


@dataclass
class Launcher:
    """Hands each browser test module a server of its own, starting the next module's while
    this one's tests run (a server takes seconds to boot)."""

    template: Path
    tmp: pytest.TempPathFactory
    modules: int  # how many modules of this run will ask
    handed: int = 0
    spare: WebServer | None = None

    def take(self) -> WebServer:
        server = self.spare or launch(self.template, self.tmp.mktemp("web"))
        self.spare = None
        self.handed += 1
        if self.handed < self.modules:
            self.spare = launch(self.template, self.tmp.mktemp("web"))
        try:
            response = wait_until_serving(server.process, server.base, server.output)
            assert response.status_code == 200, response.text
        except BaseException:
            server.close()
            raise
        return server

    def close(self) -> None:
        if self.spare is not None:
            self.spare.close()
            self.spare = None


@pytest.fixture(scope="session")
def launcher(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Launcher]:
    modules = {
        item.nodeid.split("::")[0]
        for item in request.session.items
        if "web" in getattr(item, "fixturenames", ())
    }
    started = Launcher(demo_template, tmp_path_factory, modules=len(modules))
    yield started
    started.close()


@pytest.fixture(scope="module")
def web(launcher: Launcher) -> Iterator[WebServer]:
    """``jobchat serve`` on this module's own copy of the demo world."""
    server = launcher.take()
    try:
        yield server
    finally:
        server.close()


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"browser tests need Debian's Chromium at {CHROMIUM}: "
            "apt-get install chromium fonts-liberation (./scripts/test does)",
            pytrace=False,
        )
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield browser
    browser.close()


@dataclass
class Watch:
    """What went wrong in a test's pages (JS and console errors, CSP violations, 5xx answers),
    and the dialogs they opened."""

    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if any(pattern.search(text) for pattern in self.allowed):
            return
        if text.startswith("Failed to load resource:") and "Content Security Policy" not in text:
            return  # an HTTP error status: 5xx fail the test through ``response``
        if message.type == "error" or "Content Security Policy" in text:
            where = message.location.get("url", "")
            self.problems.append(f"console {message.type} ({where}): {text}")

    def page_error(self, error: Exception) -> None:
        self.problems.append(f"JavaScript error: {error}")

    def response(self, response: Response) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} from {response.request.method} {response.url}")

    def dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()  # a confirm() the page asks for goes ahead


class Browsers:
    """One test's browser windows: each ``open`` is a fresh context (own cookies)."""

    def __init__(self, chromium: Browser, web: WebServer) -> None:
        self.chromium = chromium
        self.web = web
        self.watch = Watch()
        self.contexts: list[BrowserContext] = []

    def open(self, device: Device = "desktop", *, bypass_csp: bool = False) -> Page:
        """A page in a fresh context. ``bypass_csp`` is for the axe contexts alone: Playwright
        injects axe-core as an inline script, which our Content-Security-Policy refuses."""
        context = self.chromium.new_context(
            base_url=self.web.base,
            locale="en-US",
            # Where the demo's Northwind Health people are (the settings page suggests the
            # browser's zone to those who never chose one).
            timezone_id="America/Chicago",
            bypass_csp=bypass_csp,
            **DEVICES[device],
        )
        context.set_default_timeout(15_000)
        context.on("page", self._watch)
        self.contexts.append(context)
        return context.new_page()

    def _watch(self, page: Page) -> None:
        page.on("console", self.watch.console)
        page.on("pageerror", self.watch.page_error)
        page.on("response", self.watch.response)
        page.on("dialog", self.watch.dialog)

    def allow_console(self, pattern: str) -> None:
        """Console messages matching ``pattern`` are expected in this test (e.g. a 404 page)."""
        self.watch.allowed.append(re.compile(pattern))

    def pages(self) -> list[Page]:
        return [page for context in self.contexts for page in context.pages]

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


class SignIn(Protocol):
    def __call__(self, page: Page, who: str, next: str | None = None) -> None: ...


@pytest.fixture
def browsers(
    chromium: Browser, web: WebServer, request: pytest.FixtureRequest
) -> Iterator[Browsers]:
    """Fresh browser contexts for this test; their errors fail it."""
    opened = Browsers(chromium, web)
    yield opened
    report: pytest.TestReport | None = getattr(request.node, "browser_call_report", None)
    if report is not None and report.failed:
        FAILURES.mkdir(parents=True, exist_ok=True)
        for i, page in enumerate(opened.pages()):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            try:
                page.screenshot(path=str(FAILURES / f"{name}-{i}.png"), full_page=True)
            except Exception as exc:  # a crashed page: keep going, the test failed anyway
                print(f"no screenshot of page {i}: {exc}")
    problems = list(opened.watch.problems)
    opened.close()
    if problems:
        pytest.fail("the browser reported problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def sign_in(web: WebServer) -> SignIn:
    """``sign_in(page, "nw-marcus", next="/inbox")``: follow a fresh one-time sign-in link."""

    def go(page: Page, who: str, next: str | None = None) -> None:
        url = web.login_link(who)
        if next is not None:
            url += "?" + urlencode({"next": next})
        page.goto(url)

    return go


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the call's outcome for the ``browsers`` fixture (screenshots of a failed test) and
    add the server's log to a failed browser test's report."""
    report = yield
    if report.when == "call" and "browsers" in getattr(item, "fixturenames", ()):
        item.browser_call_report = report  # type: ignore[attr-defined]
        server = getattr(item, "funcargs", {}).get("web")
        if report.failed and isinstance(server, WebServer):
            report.sections.append(("jobchat serve log (tail)", server.output()[-8000:]))
    return report


# --- screenshots and page checks ------------------------------------------------------------------


def shot(page: Page, name: str, *, docs: bool = False, full_page: bool = True) -> Path:
    """A PNG of the whole page (``full_page``) or of the screen at
    test-artifacts/screenshots/<name>.png; with ``docs`` and JOBCHAT_DOCS_SCREENSHOTS=1 also at
    docs/screenshots/<name>.png (the README's pictures)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    if docs and os.environ.get("JOBCHAT_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")
    return path


def page_width(page: Page) -> int:
    """How wide the document is (more than the viewport: it scrolls sideways)."""
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width


def assert_fits(page: Page) -> None:
    """No horizontal scroll at this viewport's width."""
    viewport = page.viewport_size
    assert viewport is not None
    wide = page.evaluate(
        """(max) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > max + 1)
            .slice(0, 5)
            .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                 + (e.className && typeof e.className === 'string'
                    ? '.' + e.className.trim().split(/\\s+/).join('.') : ''))""",
        viewport["width"],
    )
    assert page_width(page) <= viewport["width"], (
        f"{page.url} scrolls sideways at {viewport['width']} px "
        f"(document {page_width(page)} px wide; too wide: {wide})"
    )


def pwned(page: Page) -> Any:
    """What injected script set, if any ran (undefined: nothing did)."""
    return page.evaluate("typeof window.__pwned === 'undefined' ? null : window.__pwned")


# --- boxes: where things are and how big ----------------------------------------------------------

TOUCH_PX = 44  # the smallest touch target on a phone (WCAG 2.5.5, Apple's and Google's guides)


def box(locator: Locator) -> FloatRect:
    """``locator``'s box in CSS px, relative to the viewport (it must be rendered)."""
    expect(locator).to_be_visible()
    found = locator.bounding_box()
    assert found is not None, f"{locator} has no box"
    return found


def assert_in_viewport(page: Page, locator: Locator) -> FloatRect:
    """``locator`` is wholly on the screen as it is scrolled now (not below the fold, not cut
    off at a side)."""
    viewport = page.viewport_size
    assert viewport is not None
    found = box(locator)
    slack = 0.5  # sub-pixel layout
    inside = (
        found["x"] >= -slack
        and found["y"] >= -slack
        and found["x"] + found["width"] <= viewport["width"] + slack
        and found["y"] + found["height"] <= viewport["height"] + slack
    )
    assert inside, (
        f"{locator} is not inside the {viewport['width']}x{viewport['height']} viewport: "
        f"x={found['x']:.0f} y={found['y']:.0f} {found['width']:.0f}x{found['height']:.0f}"
    )
    return found


def assert_touch_target(locator: Locator, min_px: int = TOUCH_PX) -> FloatRect:
    """``locator`` is at least ``min_px`` x ``min_px`` CSS px."""
    found = box(locator)
    assert found["width"] >= min_px and found["height"] >= min_px, (
        f"{locator} is {found['width']:.0f}x{found['height']:.0f} px, "
        f"smaller than the {min_px}x{min_px} px a finger needs"
    )
    return found


# Every control a finger can hit; a <textarea> is left out (a text box is tall by nature).
_CONTROLS = "a[href], button, input:not([type=hidden]), select, summary, [role=button]"

_SMALL_TARGETS_JS = """([selector, min]) => {
  const rendered = (el) => el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  const describe = (el) => {
    const classes = typeof el.className === 'string' && el.className.trim()
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
    const name = (el.getAttribute('aria-label') || el.textContent || el.value || '')
      .replace(/\\s+/g, ' ').trim().slice(0, 40);
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes
      + (name ? ' "' + name + '"' : '');
  };
  // A link in a sentence: the line height of the text around it sets its size, and WCAG 2.5.8
  // (and axe's target-size) let it be (the "inline" exception).
  const inRunningText = (el) => {
    if (!getComputedStyle(el).display.startsWith('inline')) return false;
    let block = el.parentElement;
    while (block && getComputedStyle(block).display.startsWith('inline')) {
      block = block.parentElement;
    }
    if (!block) return false;
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      if (!el.contains(t) && t.textContent.trim() && rendered(t.parentElement)) return true;
    }
    return false;
  };
  const big = (r) => r.width >= min && r.height >= min;
  const small = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!rendered(el)) continue;
    const r = el.getBoundingClientRect();
    const scrolled = { x: r.left + window.scrollX, y: r.top + window.scrollY };
    // Off the page (a skip link until focused) or clipped to a pixel (visually hidden):
    // nothing a finger can land on.
    if (scrolled.x + r.width <= 0 || scrolled.y + r.height <= 0) continue;
    if (r.width <= 1 && r.height <= 1) continue;
    if (big(r)) continue;
    // A check box's label is its target too.
    if (el.labels && [...el.labels].some((l) => rendered(l) && big(l.getBoundingClientRect())))
      continue;
    if (el.tagName === 'A' && inRunningText(el)) continue;
    small.push(describe(el) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
  }
  return small;
}"""


def small_targets(page: Page, min_px: int = TOUCH_PX) -> list[str]:
    """Every rendered link, button, input, select, summary and [role=button] on the page (not
    only the part on screen) smaller than ``min_px`` x ``min_px``, as "tag#id.classes "name"
    WxH". Left out: a link inside running text (WCAG 2.5.8's inline exception), a control
    whose label is big enough, and what is off the page or clipped to a pixel."""
    found: list[str] = page.evaluate(_SMALL_TARGETS_JS, [_CONTROLS, min_px])
    return found


# --- axe-core -------------------------------------------------------------------------------------

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


@dataclass(frozen=True)
class AxeViolation:
    """One axe rule the page breaks, and where."""

    rule: str
    impact: str
    help: str
    help_url: str
    targets: list[str]

    def __str__(self) -> str:
        where = "; ".join(self.targets[:8])
        more = f" (and {len(self.targets) - 8} more)" if len(self.targets) > 8 else ""
        return (
            f"{self.rule} [{self.impact}] {self.help}: {len(self.targets)} x {where}{more}"
            f"\n    {self.help_url}"
        )


_AXE_RUN_JS = """async () => {
  const results = await axe.run(document);
  return results.violations.map((v) => ({
    rule: v.id,
    impact: v.impact || 'unknown',
    help: v.help,
    help_url: v.helpUrl,
    targets: v.nodes.map((n) => n.target.map(String).join(' ')),
  }));
}"""


def axe(page: Page) -> list[AxeViolation]:
    """axe-core's violations on ``page`` as it is now, with axe's default rules (WCAG 2.0, 2.1
    and 2.2 A and AA, and its best practices). The page's context needs ``bypass_csp=True``:
    ``add_script_tag`` injects axe as an inline script, which our CSP refuses otherwise."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    found: list[dict[str, Any]] = page.evaluate(_AXE_RUN_JS)
    return [AxeViolation(**v) for v in found]


def axe_report(violations: list[AxeViolation]) -> str:
    """The violations, one rule a paragraph: id, impact, targets, the page that explains it."""
    return "\n".join(f"  {v}" for v in violations)


# --- the conversation page ------------------------------------------------------------------------


def messages(page: Page) -> Locator:
    """The messages shown (not the separators or markers)."""
    return page.locator("#messages li.message")


def message(page: Page, text: str) -> Locator:
    """The message showing ``text``."""
    return messages(page).filter(has_text=text)


def message_by_id(page: Page, message_id: int) -> Locator:
    return page.locator(f'#messages li.message[data-message-id="{message_id}"]')


def composer(page: Page) -> Locator:
    return page.locator("#composer")


def write(page: Page, text: str) -> None:
    """Send ``text`` with the composer (mouse and keyboard as a user would)."""
    form = composer(page)
    form.get_by_label("Message", exact=True).fill(text)
    form.get_by_role("button", name="Send", exact=True).click()


def options_button(item: Locator) -> Locator:
    """A message's "Message options" control. The conventions make it a button; a <summary>
    (not a button to Playwright or the accessibility tree) is accepted here so the delete tests
    test deleting, and test_message_options_is_a_button tests the role."""
    return item.get_by_role("button", name="Message options").or_(
        item.locator("summary[aria-label='Message options']")
    )


def delete(page: Page, item: Locator, how: str) -> None:
    """Open the message's options and choose ``how`` ("Delete for me" / "Delete for everyone")."""
    options_button(item).click()
    item.get_by_role("button", name=how, exact=True).or_(
        item.get_by_role("menuitem", name=how, exact=True)
    ).click()


def ended_notice(page: Page) -> Locator:
    return page.get_by_role("status").filter(has_text="This conversation has ended")


def usable_composer(page: Page) -> Locator:
    """The composer's text box if one can type in it (count 0: hidden, disabled or absent)."""
    return page.locator("#composer textarea:visible:enabled")


def badge(page: Page) -> Locator:
    return page.locator("#unread-badge")


def inbox_row(page: Page, conversation: int) -> Locator:
    return page.get_by_role("list", name="Conversations").locator(
        f'li.conversation-row[data-conversation="{conversation}"]'
    )
