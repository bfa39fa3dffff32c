"""jobchat inside an ATS's page, in Chromium: the ATS (a static page of this test's own, served
from http://localhost:PORT2) puts an embed sign-in link in an iframe's src, and jobchat (on
http://127.0.0.1:PORT) answers inside it. The two are different sites, so every request of the
frame is a third-party one, and the browser is told to block third-party cookies (as Chrome
does for many users, and Safari and Firefox do in their own ways): the session survives only
because its cookie is Partitioned (CHIPS). The origin allowed: signed in, no header of ours,
a message sent from inside the frame. Another origin, or an ordinary link: the browser refuses
to show jobchat in the frame.

The ATS-like pages are screenshotted (the README's and docs/integration.md's pictures):

    JOBCHAT_DOCS_SCREENSHOTS=1 .venv/bin/pytest -q tests/test_web_browser_embed.py
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from tests.browser_support import (
    BROWSER_TESTS,
    MARCUS,
    Browsers,
    Device,
    Launcher,
    WebServer,
    launch,
    shot,
)
from tests.support import free_port, wait_until_serving

pytestmark = BROWSER_TESTS


@dataclass
class Ats:
    """A stand-in for the ATS's web server: the pages a test put at each path, on loopback."""

    port: int
    pages: dict[str, str] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        # "localhost", not 127.0.0.1: another site than jobchat's, as an ATS would be.
        return f"http://localhost:{self.port}"

    def serve(self) -> None:
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = pages.get(self.path)
                self.send_response(200 if page is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((page or "not here").encode())

            def log_message(self, format: str, *args: object) -> None:
                return  # quiet: the test's output is about jobchat

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def page_with(self, path: str, frame_src: str, *, title: str = "Hannah Lee") -> str:
        """An ATS-like candidate page at ``path`` (a bar, the candidate's card, tabs, and jobchat
        in an iframe); its URL."""
        self.pages[path] = ATS_PAGE.format(title=html.escape(title), src=html.escape(frame_src))
        return self.origin + path


# An applicant-tracking system's candidate page, kept plain: its own styles inline (its page,
# not ours, so our Content-Security-Policy has nothing to say about it).
ATS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Talentflow ATS</title>
<style>
  * {{ box-sizing: border-box; }}
  body {{ margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #eef0f4; color: #1d2433;
         display: flex; flex-direction: column; height: 100vh; }}
  .bar {{ background: #24324f; color: #fff; padding: 10px 16px; display: flex; gap: 16px;
          align-items: center; }}
  .bar b {{ font-size: 17px; }} .bar span {{ opacity: .75; }}
  .body {{ flex: 1; display: flex; min-height: 0; gap: 16px; padding: 16px; }}
  aside {{ width: 260px; background: #fff; border-radius: 8px; padding: 16px; flex: none; }}
  aside h1 {{ font-size: 19px; margin: 0 0 4px; }} aside p {{ margin: 4px 0; color: #55607a; }}
  .stage {{ display: inline-block; background: #e3f1e8; color: #1f6b3a; border-radius: 99px;
            padding: 2px 10px; font-size: 13px; margin-top: 8px; }}
  section {{ flex: 1; display: flex; flex-direction: column; min-width: 0; background: #fff;
             border-radius: 8px; overflow: hidden; }}
  nav {{ display: flex; gap: 4px; border-bottom: 1px solid #dde1ea; padding: 0 12px; }}
  nav a {{ padding: 10px 12px; color: #55607a; text-decoration: none; }}
  nav a.on {{ color: #24324f; font-weight: 600; border-bottom: 3px solid #3d6be0; }}
  iframe {{ flex: 1; width: 100%; border: 0; }}
  @media (max-width: 700px) {{
    aside {{ display: none; }} .body {{ padding: 0; }} section {{ border-radius: 0; }}
    .bar span {{ display: none; }}
  }}
</style></head>
<body>
<div class="bar"><b>Talentflow</b><span>Candidates &rsaquo; {title}</span></div>
<div class="body">
  <aside><h1>{title}</h1><p>Patient Services Coordinator</p><p>Northwind Health</p>
    <span class="stage">Interview</span></aside>
  <section>
    <nav><a href="#">Profile</a><a href="#">Scorecards</a><a class="on" href="#">Messages</a></nav>
    <iframe id="jobchat" title="Messages" src="{src}"></iframe>
  </section>
</div>
</body></html>
"""


@pytest.fixture(scope="module")
def ats() -> Iterator[Ats]:
    server = Ats(free_port())
    server.serve()
    yield server
    server.close()


@pytest.fixture(scope="module")
def web(
    ats: Ats, demo_template: Path, launcher: Launcher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    """This module's own ``jobchat serve``: framed by the ATS's origin (a setting the shared
    servers do not have). The launcher is told it will not be asked for one here."""
    launcher.modules -= 1
    server = launch(
        demo_template,
        tmp_path_factory.mktemp("web-embed"),
        extra_env={"JOBCHAT_EMBED_ORIGINS": ats.origin},
    )
    try:
        response = wait_until_serving(server.process, server.base, server.output)
        assert response.status_code == 200, response.text
        yield server
    finally:
        server.close()


def embed_link(web: WebServer, who: str, next: str, *, embed: bool = True) -> str:
    url: str = web.call(
        "POST", f"/api/v1/users/{who}/login-links", json={"next": next, "embed": embed}
    )["url"]
    return url


def open_blocking_third_party_cookies(browsers: Browsers, device: Device) -> Page:
    """A fresh window whose browser keeps no third-party cookie but partitioned ones (the
    DevTools protocol's switch for what chrome://settings/cookies "Block third-party cookies"
    does; headless Chromium otherwise allows them, which would hide a cookie that lacks
    Partitioned). Checked: with the attribute left out, the first test finds the frame signed
    out."""
    page = browsers.open(device)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCookieControls", {"enableThirdPartyCookieRestriction": True})
    return page


def jobchat_in(page: Page) -> FrameLocator:
    return page.frame_locator("iframe#jobchat")


def test_an_allowed_ats_shows_the_inbox_and_a_message_is_sent_from_the_frame(
    web: WebServer, ats: Ats, browsers: Browsers
) -> None:
    conv = web.conversation_of(MARCUS, "application")
    page = open_blocking_third_party_cookies(browsers, "desktop")
    page.goto(ats.page_with("/candidates/1", embed_link(web, MARCUS, "/inbox")))
    frame = jobchat_in(page)
    row = frame.locator(f'.conversation-row[data-conversation="{conv}"] a.row-link')
    expect(row).to_be_visible()
    expect(frame.locator("body.embedded")).to_have_count(1)
    expect(frame.locator(".topbar")).to_have_count(0)  # the ATS's bar is the only one
    cookies = [c for c in page.context.cookies() if c["name"] == "jobchat_session"]
    assert len(cookies) == 1, cookies
    assert cookies[0]["sameSite"] == "None" and cookies[0]["secure"], cookies
    assert cookies[0].get("partitionKey") == ats.origin.replace(":" + str(ats.port), ""), cookies
    shot(page, "embed-inbox-desktop", docs=True, full_page=False)

    row.click()  # a link inside the frame opens the conversation inside the frame
    expect(frame.locator("#composer")).to_be_visible()
    assert page.url.startswith(ats.origin)  # the ATS's page is still the page
    text = "Hi Hannah, I've noted Friday's phone screen on your Talentflow profile."
    frame.locator("#composer").get_by_label("Message", exact=True).fill(text)
    frame.locator("#composer").get_by_role("button", name="Send", exact=True).click()
    expect(frame.locator("#messages li.message").filter(has_text=text)).to_be_visible()
    # No offer of notifications in a frame: browsers refuse another site's frame the permission.
    expect(frame.locator("#push-prompt")).to_have_attribute("data-decision", "unsupported")
    expect(frame.locator("#push-prompt")).to_be_hidden()
    frame.locator("#messages li.message").filter(has_text=text).scroll_into_view_if_needed()
    sent = web.call("GET", f"/api/v1/conversations/{conv}/messages", token=web.token(MARCUS))
    assert any(m["body"] == text for m in sent["items"]), sent
    shot(page, "embed-conversation-desktop", docs=True, full_page=False)
    page.emulate_media(color_scheme="dark")  # the frame follows the reader's theme
    shot(page, "embed-conversation-desktop-dark", full_page=False)


def test_on_a_phone_the_frame_has_the_conversation(
    web: WebServer, ats: Ats, browsers: Browsers
) -> None:
    conv = web.conversation_of(MARCUS, "application")
    page = open_blocking_third_party_cookies(browsers, "phone")
    page.goto(ats.page_with("/m/inbox", embed_link(web, MARCUS, "/inbox")))
    expect(jobchat_in(page).locator(".conversation-row").first).to_be_visible()
    shot(page, "embed-inbox-phone", docs=True, full_page=False)
    page.goto(ats.page_with("/m/conversation", embed_link(web, MARCUS, f"/conversations/{conv}")))
    frame = jobchat_in(page)
    expect(frame.locator("#composer")).to_be_visible()
    expect(frame.locator(".topbar")).to_have_count(0)
    shot(page, "embed-conversation-phone", docs=True, full_page=False)
    page.emulate_media(color_scheme="dark")
    shot(page, "embed-conversation-phone-dark", full_page=False)


@pytest.mark.parametrize("case", ["origin not allowed", "link not for a frame"])
def test_the_browser_refuses_the_frame(
    web: WebServer, ats: Ats, browsers: Browsers, case: str
) -> None:
    """Another site's page (same jobchat, another origin), or an ordinary sign-in link in the
    allowed ATS's page: Chromium refuses to render jobchat in the frame."""
    browsers.allow_console(r"^Framing .* violates the following Content Security Policy directive")
    if case == "origin not allowed":
        other = Ats(free_port())
        other.serve()
        url = other.page_with("/evil", embed_link(web, MARCUS, "/inbox"))
    else:
        other = None
        url = ats.page_with("/plain", embed_link(web, MARCUS, "/inbox", embed=False))
    try:
        page = open_blocking_third_party_cookies(browsers, "desktop")
        with page.expect_console_message(lambda m: m.text.startswith("Framing ")) as report:
            page.goto(url)
        refused = report.value.text
        if case == "origin not allowed":
            assert f"frame-ancestors 'self' {ats.origin}" in refused, refused
        else:
            assert "frame-ancestors 'none'" in refused, refused
        # Nothing of jobchat is in the frame: Chromium's error page stands in its place.
        expect(page.locator("iframe#jobchat")).to_be_visible()
        expect(jobchat_in(page).locator("#main")).to_have_count(0)
        assert all(not frame.url.startswith(web.base) for frame in page.frames), page.frames
    finally:
        if other is not None:
            other.close()
