"""``/docs`` works with no network beyond the server itself, under the strict
Content-Security-Policy: Swagger UI's files come from our own package, and it renders every
operation of /openapi.json."""

from __future__ import annotations

import re

from playwright.sync_api import Route, expect

from tests.browser_support import BROWSER_TESTS, Browsers, WebServer

pytestmark = BROWSER_TESTS


def test_docs_render_the_operations_offline(browsers: Browsers, web: WebServer) -> None:
    page = browsers.open()
    refused: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(web.base + "/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_the_server)
    answer = page.goto("/docs")
    assert answer is not None and answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]

    expect(page.get_by_role("heading", name=re.compile("^jobchat"))).to_be_visible()
    send_id = "send_message_api_v1_conversations__conversation_id__messages_post"
    send = page.locator(f"#operations-messages-{send_id}")
    expect(send).to_be_visible()
    operations = web.http.get("/openapi.json").json()["paths"]
    count = sum(
        1
        for item in operations.values()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    )
    expect(page.locator(".opblock")).to_have_count(count)

    # An operation opens with its documented answers, the error shape among them.
    send.locator(".opblock-summary").first.click()
    expect(send.locator(".responses-table").first).to_contain_text("429")
    assert refused == [], refused


def test_redoc_is_off(web: WebServer) -> None:
    assert web.http.get("/redoc").status_code == 404
