"""The web app's frame, inbox, conversation view and settings, read and posted as a browser
would (in-process): security headers, CSRF, escaping, filters, forms and fragments."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.web.security import CSP
from tests.support import Api, World, body, sent, start
from tests.web_support import Browser, conversation_ids, message_ids, texts

XSS = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"


@pytest.fixture
def chat(world: World) -> int:
    """Tess (employer team) and Carla (candidate) on application app1."""
    return start(world["emp_team"], "application", application="app1")


# --- the frame -----------------------------------------------------------------------------------


def test_pages_carry_a_strict_content_security_policy_and_no_inline_code(
    tess: Browser, chat: int
) -> None:
    for path in ("/inbox", f"/conversations/{chat}", "/settings"):
        r = tess.client.get(path)
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        # The CSP would block inline code anyway; none is written.
        assert re.findall(r"<script(?![^>]*\bsrc=)", r.text) == []
        assert " style=" not in r.text and "<style" not in r.text
        assert re.search(r"\son[a-z]+=", r.text) is None


def test_static_assets_are_served_with_a_content_hash(tess: Browser) -> None:
    html = tess.page("/inbox")
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
        assert re.search(r"\?v=[0-9a-f]{12}$", asset)
        r = tess.client.get(asset)
        assert r.status_code == 200
        assert r.content
        # The hash names the content, so the browser keeps it without asking again.
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    unversioned = tess.client.get("/static/app.css")
    assert unversioned.headers["cache-control"] == "no-cache"
    # A hash that is not this file's (a newer page asking an older process, mid-deploy) must
    # not pin this content under that name for a year.
    stale = tess.client.get("/static/app.css?v=0123456789ab")
    assert stale.status_code == 200
    assert stale.headers["cache-control"] == "no-cache"


def test_assets_are_compressed_and_pages_are_not(tess: Browser) -> None:
    """CSS and JS go gzipped; HTML does not, since it holds the CSRF token beside text a
    visitor can make it echo (BREACH)."""
    gzip = {"Accept-Encoding": "gzip"}
    for asset in ("/static/app.js", "/static/app.css", "/static/thread.css"):
        r = tess.client.get(asset, headers=gzip)
        assert r.headers.get("content-encoding") == "gzip", asset
        assert "text/" in r.headers["content-type"] or "javascript" in r.headers["content-type"]
        assert len(r.content) > int(r.headers["content-length"])  # decoded is bigger
    page = tess.client.get("/inbox?q=csrf", headers=gzip)
    assert page.status_code == 200
    assert "content-encoding" not in page.headers


def test_signed_out_visitors_get_a_sign_in_page_and_the_api_keeps_json(
    client: TestClient, world: World
) -> None:
    stranger = TestClient(client.app)
    r = stranger.get("/inbox")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert "sign-in link" in r.text
    r = stranger.get("/api/v1/conversations")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert stranger.get("/").status_code == 200  # the welcome page


def test_home_takes_staff_to_the_inbox_and_candidates_to_their_portal(
    tess: Browser, carla: Browser
) -> None:
    assert tess.client.get("/", follow_redirects=False).headers["location"] == "/inbox"
    assert carla.client.get("/", follow_redirects=False).headers["location"] == "/portal"


def test_navigation_and_badge(tess: Browser, carla: Browser, world: World, chat: int) -> None:
    sent(world["emp_team"].send(chat, "One"))
    sent(world["emp_team"].send(chat, "Two"))
    html = carla.page("/inbox")
    assert texts(html, "badge") == ["2"]
    assert 'aria-label="2 unread messages"' in html
    nav = re.search(r'<nav aria-label="Main".*?</nav>', html, re.S)
    assert nav is not None
    assert re.findall(r'<a href="(/[a-z]+)"', nav.group(0)) == ["/portal", "/inbox", "/settings"]
    staff_nav = re.search(r'<nav aria-label="Main".*?</nav>', tess.page("/inbox"), re.S)
    assert staff_nav is not None
    assert re.findall(r'<a href="(/[a-z]+)"', staff_nav.group(0)) == [
        "/inbox",
        "/candidates",
        "/jobs",
        "/settings",
    ]
    assert 'id="unread-badge" class="badge" aria-label="0 unread messages" hidden' in (
        tess.page("/inbox")
    )


# --- the inbox -----------------------------------------------------------------------------------


def test_inbox_filters_and_search(tess: Browser, world: World, chat: int) -> None:
    partner_chat = start(world["emp_team"], "job_partner", job="job1", partner="tbb")
    group = start(world["emp_team"], "job_partners", job="job1")
    sent(world["cand"].send(chat, "Hello Tess"))
    sent(world["sp_in"].send(partner_chat, "About the nurses"))
    body(world["emp_team"].post(f"/api/v1/conversations/{partner_chat}/read"), 200)
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)

    assert set(conversation_ids(tess.page("/inbox"))) >= {chat, partner_chat, group}
    assert conversation_ids(tess.page("/inbox", filter="unread")) == [chat]
    assert set(conversation_ids(tess.page("/inbox", filter="messaged"))) == {chat, partner_chat}
    assert conversation_ids(tess.page("/inbox", filter="ended")) == [chat]
    # By a member's name, by the job, by the partner organisation; case and wildcards literal.
    assert conversation_ids(tess.page("/inbox", q="carla")) == [chat]
    assert set(conversation_ids(tess.page("/inbox", q="NURSE"))) >= {chat, partner_chat, group}
    assert partner_chat in conversation_ids(tess.page("/inbox", q="Beyond"))
    assert conversation_ids(tess.page("/inbox", q="%")) == []
    empty = tess.page("/inbox", q="nobody at all")
    assert conversation_ids(empty) == []
    assert "No conversations match" in empty
    # The search keeps the filter; the filter links keep the search.
    html = tess.page("/inbox", filter="unread", q="carla")
    assert conversation_ids(html) == [chat]
    assert 'href="/inbox?filter=ended&amp;q=carla"' in html


def test_inbox_rows_show_preview_unread_count_and_ended(
    tess: Browser, world: World, chat: int
) -> None:
    sent(world["cand"].send(chat, "First"))
    sent(world["cand"].send(chat, "Second\nline"))
    html = tess.page("/inbox")
    row = re.search(rf'data-conversation="{chat}".*?</li>', html, re.S)
    assert row is not None
    assert "Carla Candidate: Second" in texts(row.group(0), "row-preview")[0]
    assert texts(row.group(0), "unread-count") == ["2"]
    body(world["emp_team"].post(f"/api/v1/conversations/{chat}/end"), 200)
    assert "Ended" in tess.page("/inbox", filter="ended")


def test_inbox_fragment_is_the_list_alone(tess: Browser, world: World, chat: int) -> None:
    sent(world["cand"].send(chat, "Hi"))
    r = tess.client.get("/inbox/list.html", params={"filter": "unread"})
    assert r.status_code == 200
    assert "<header" not in r.text
    assert conversation_ids(r.text) == [chat]


# --- the conversation view -----------------------------------------------------------------------


def test_user_content_is_escaped_everywhere(
    client: TestClient, api: Api, world: World, chat: int
) -> None:
    api.candidate("cand", XSS, source_partner="tbb", phone="+14155550123", sms_consent=True)
    sent(world["cand"].send(chat, XSS))
    sent(world["emp_team"].send(chat, XSS, channel="email", subject=XSS))
    for who in ("emp_team", "cand"):
        browser = Browser.signed_in(client, api, who)
        for path in ("/inbox", f"/conversations/{chat}", f"/conversations/{chat}/messages.html"):
            html = browser.client.get(path).text
            assert "<script>window" not in html and "<img src=x" not in html, path
            assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html, path


def test_conversation_page_draws_bubbles_separators_and_the_unread_marker(
    tess: Browser, carla: Browser, world: World, chat: int, clock: FrozenClock
) -> None:
    mine = sent(world["cand"].send(chat, "Hello, I applied yesterday"))
    clock.advance(days=1)
    theirs1 = sent(world["emp_team"].send(chat, "Welcome Carla"))
    theirs2 = sent(world["emp_team"].send(chat, "Are you free Tuesday?"))
    html = carla.page(f"/conversations/{chat}")
    assert message_ids(html) == [mine["id"], theirs1["id"], theirs2["id"]]
    assert re.search(rf'class="message mine" data-message-id="{mine["id"]}"', html)
    assert re.search(rf'class="message theirs" data-message-id="{theirs1["id"]}"', html)
    assert len(re.findall(r'class="day-separator"', html)) == 2
    # "New messages" goes before the first unread one.
    marker = html.index("unread-marker")
    assert html.index(f'data-message-id="{mine["id"]}"') < marker
    assert marker < html.index(f'data-message-id="{theirs1["id"]}"')
    # Names and organisations; the candidate can delete only for herself what Tess wrote.
    assert "Tess Team" in texts(html, "author") and "Acme Health" in texts(html, "org")
    their_item = re.search(rf'data-message-id="{theirs1["id"]}".*?</li>', html, re.S)
    assert their_item is not None
    assert "Delete for me" in their_item.group(0)
    assert "Delete for everyone" not in their_item.group(0)
    my_item = re.search(rf'data-message-id="{mine["id"]}".*?</li>', html, re.S)
    assert my_item is not None and "Delete for everyone" in my_item.group(0)


def test_times_are_shown_in_the_viewers_timezone(
    carla: Browser, world: World, chat: int, clock: FrozenClock
) -> None:
    sent(world["emp_team"].send(chat, "Hi"))
    body(carla.api("PATCH", "/api/v1/me", {"timezone": "Asia/Tokyo"}), 200)
    html = carla.page(f"/conversations/{chat}")
    when = clock.now()
    tokyo = (when.hour + 9) % 24
    assert f">{tokyo:02d}:{when.minute:02d}</time>" in html
    assert "JST" in html


def test_composer_offers_only_the_channels_that_would_work(
    client: TestClient, api: Api, world: World, tess: Browser, carla: Browser, chat: int
) -> None:
    staff = tess.page(f"/conversations/{chat}")
    assert re.findall(r'name="channel" value="(\w+)"', staff) == ["app", "email", "sms"]
    assert "End conversation" in staff
    # Carla withdraws her SMS consent: SMS stays in view, disabled, saying why.
    api.candidate("cand", "Carla Candidate", source_partner="tbb", sms_consent=False)
    html = tess.page(f"/conversations/{chat}")
    assert re.findall(r'name="channel" value="(\w+)"', html) == ["app", "email", "sms"]
    sms = re.search(r'<input[^>]*value="sms"[^>]*>', html)
    assert sms and " disabled" in sms[0] and f'aria-describedby="channel-why-{chat}-sms"' in sms[0]
    assert "SMS not available: Carla Candidate has not agreed to receive texts." in html
    candidate = carla.page(f"/conversations/{chat}")
    assert 'name="channel"' not in candidate
    assert "End conversation" not in candidate
    # A job chat between organisations has no candidate: the app only, nothing to end.
    group = start(world["emp_team"], "job_partners", job="job1")
    html = tess.page(f"/conversations/{group}")
    assert 'name="channel"' not in html and "End conversation" not in html


def test_fragments_bring_newer_and_older_messages(tess: Browser, world: World, chat: int) -> None:
    ids = [sent(world["cand"].send(chat, f"m{i}"))["id"] for i in range(60)]
    html = tess.page(f"/conversations/{chat}")
    assert message_ids(html) == ids[-50:]
    older = re.search(r'data-before="(\d+)"', html)
    assert older is not None and int(older.group(1)) == ids[10]
    page = tess.client.get(f"/conversations/{chat}/messages.html", params={"before": ids[10]})
    assert message_ids(page.text) == ids[:10]
    assert "data-before" not in page.text  # the beginning
    newer = tess.client.get(
        f"/conversations/{chat}/messages.html", params={"after": ids[57], "day": "2000-01-01"}
    )
    assert message_ids(newer.text) == ids[58:]
    assert newer.text.count("day-separator") == 1  # the day changed since "2000-01-01"
    same_day = tess.client.get(
        f"/conversations/{chat}/messages.html",
        params={"after": ids[57], "day": re.findall(r'data-day="([\d-]+)"', html)[-1]},
    )
    assert "day-separator" not in same_day.text


def test_strangers_get_a_not_found_page(client: TestClient, api: Api, chat: int) -> None:
    outsider = Browser.signed_in(client, api, "other_emp")
    html = outsider.page(f"/conversations/{chat}", status=404)
    assert "Not found" in html
    r = outsider.client.get(f"/conversations/{chat}/messages.html")
    assert r.status_code == 404
    assert outsider.client.get("/conversations/999999").status_code == 404


# --- forms ---------------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_or_from_elsewhere_change_nothing(
    tess: Browser, world: World, chat: int
) -> None:
    refused = tess.form(f"/conversations/{chat}/messages", {"body": "forged"}, csrf=False)
    assert refused.status_code == 403
    assert "did not come from jobchat" in refused.text
    wrong = tess.form(
        f"/conversations/{chat}/messages", {"body": "forged", "csrf": "nope"}, csrf=False
    )
    assert wrong.status_code == 403
    cross = tess.client.post(
        f"/conversations/{chat}/messages",
        data={"body": "forged", "csrf": tess.csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert tess.form(f"/conversations/{chat}/end", csrf=False).status_code == 403
    assert tess.form("/settings", {"timezone": "Asia/Tokyo"}, csrf=False).status_code == 403
    assert world["emp_team"].messages(chat).json()["items"] == []
    assert world["emp_team"].get(f"/api/v1/conversations/{chat}").json()["status"] == "open"
    assert world["emp_team"].get("/api/v1/me").json()["timezone"] == "UTC"


def test_send_form_posts_once_per_idempotency_key(tess: Browser, world: World, chat: int) -> None:
    data = {"body": "Hello from a form", "idempotency_key": "k-1"}
    for _ in range(2):  # a double click
        r = tess.form(f"/conversations/{chat}/messages", data)
        assert r.status_code == 303
        assert r.headers["location"] == f"/conversations/{chat}"
    items = world["cand"].messages(chat).json()["items"]
    assert [m["body"] for m in items] == ["Hello from a form"]


def test_a_body_no_database_can_store_is_refused(tess: Browser, world: World, chat: int) -> None:
    """A NUL in a form's body (the API's schema refuses it already) is a 422, not PostgreSQL's
    500, and nothing is stored."""
    r = tess.form(f"/conversations/{chat}/messages", {"body": "a\x00b"})
    assert r.status_code == 422
    assert "NUL" in r.text
    assert world["cand"].messages(chat).json()["items"] == []


def test_forms_go_back_to_the_page_they_were_on(tess: Browser, world: World, chat: int) -> None:
    """A conversation inside a candidate's profile posts back to the profile; without a
    referrer, to the conversation."""
    path = f"/conversations/{chat}/messages"
    profile = "http://testserver/candidates/cand?tab=messages"
    r = tess.client.post(
        path,
        data={"body": "Hi", "csrf": tess.csrf},
        headers={"Origin": "http://testserver", "Referer": profile},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/candidates/cand?tab=messages"
    r = tess.client.post(
        path,
        data={"body": "Hi again", "csrf": tess.csrf},
        follow_redirects=False,
    )
    assert r.headers["location"] == f"/conversations/{chat}"


def test_staff_reach_the_candidate_profile_from_a_conversation(
    tess: Browser, carla: Browser, chat: int
) -> None:
    assert 'href="/candidates/cand?application=app1">Candidate profile' in tess.page(
        f"/conversations/{chat}"
    )
    assert "Candidate profile" not in carla.page(f"/conversations/{chat}")


def test_email_needs_a_subject(tess: Browser, world: World, chat: int) -> None:
    r = tess.form(f"/conversations/{chat}/messages", {"body": "Offer", "channel": "email"})
    assert r.status_code == 422
    assert "subject" in r.text.lower()
    api_r = tess.api(
        "POST", f"/api/v1/conversations/{chat}/messages", {"body": "Offer", "channel": "email"}
    )
    assert api_r.status_code == 422
    assert "subject" in api_r.json()["error"]["fields"]
    assert world["cand"].messages(chat).json()["items"] == []
    ok = tess.form(
        f"/conversations/{chat}/messages",
        {"body": "Offer", "channel": "email", "subject": "Your offer"},
    )
    assert ok.status_code == 303
    [message] = world["cand"].messages(chat).json()["items"]
    assert (message["channel"], message["subject"]) == ("email", "Your offer")


def test_end_and_reopen_through_the_page(
    tess: Browser, carla: Browser, world: World, chat: int
) -> None:
    assert tess.form(f"/conversations/{chat}/end").status_code == 303
    html = carla.page(f"/conversations/{chat}")
    assert 'data-status="ended"' in html
    assert "This conversation has ended" in html
    refused = carla.form(f"/conversations/{chat}/messages", {"body": "wait"})
    assert refused.status_code == 409
    assert "ended" in refused.text
    assert carla.form(f"/conversations/{chat}/end").status_code == 403
    assert tess.form(f"/conversations/{chat}/messages", {"body": "Reopening"}).status_code == 303
    assert 'data-status="open"' in carla.page(f"/conversations/{chat}")


def test_delete_for_me_and_for_everyone_through_the_page(
    tess: Browser, carla: Browser, world: World, chat: int
) -> None:
    keep = sent(world["emp_team"].send(chat, "Keep me"))
    gone = sent(world["emp_team"].send(chat, "Take this back"))
    assert carla.form(f"/messages/{gone['id']}/delete", {"for": "everyone"}).status_code == 403
    assert carla.form(f"/messages/{keep['id']}/delete", {"for": "me"}).status_code == 303
    assert keep["id"] not in message_ids(carla.page(f"/conversations/{chat}"))
    assert keep["id"] in message_ids(tess.page(f"/conversations/{chat}"))

    assert tess.form(f"/messages/{gone['id']}/delete", {"for": "everyone"}).status_code == 303
    for browser in (tess, carla):
        html = browser.page(f"/conversations/{chat}")
        item = re.search(rf'data-message-id="{gone["id"]}".*?</li>', html, re.S)
        assert item is not None
        assert "This message was deleted" in item.group(0)
        assert "Take this back" not in html


def test_start_form_opens_one_conversation_and_goes_to_it(
    client: TestClient, api: Api, tess: Browser, world: World, carla: Browser
) -> None:
    data = {"kind": "application", "application": "app1"}
    first = tess.form("/conversations/start", data)
    second = tess.form("/conversations/start", data | {"next": "/inbox?open={id}"})
    assert first.status_code == second.status_code == 303
    conv = int(first.headers["location"].rsplit("/", 1)[1])
    assert second.headers["location"] == f"/inbox?open={conv}"
    assert tess.form("/conversations/start", data | {"next": "https://evil.example/"}).headers[
        "location"
    ] == ("/")
    # Carla reaches the one that exists; Dan, on another application, is not shown it.
    assert carla.form("/conversations/start", data).headers["location"] == f"/conversations/{conv}"
    dan = Browser.signed_in(client, api, "cand2")
    assert dan.form("/conversations/start", data).status_code == 404
    # Nor may a candidate open a recruiter chat that does not exist yet.
    assert (
        dan.form("/conversations/start", {"kind": "application", "application": "app2"}).status_code
        == 403
    )


# --- settings and signing out --------------------------------------------------------------------


def test_settings_save_the_timezone_and_notifications(tess: Browser, world: World) -> None:
    html = tess.page("/settings")
    assert '<option value="Europe/Berlin">' in html
    assert '<option value="US/Eastern">' not in html
    assert 'data-saved="no"' in html  # the browser's zone is suggested until one is chosen
    r = tess.form("/settings", {"timezone": "Europe/Berlin"})
    assert r.status_code == 303
    me = world["emp_team"].get("/api/v1/me").json()
    assert (me["timezone"], me["email_notifications"]) == ("Europe/Berlin", False)
    html = tess.page("/settings", saved="true")
    assert "Your settings are saved" in html and 'data-saved="yes"' in html
    assert tess.form(
        "/settings", {"timezone": "Europe/Berlin", "email_notifications": "on"}
    ).status_code == (303)
    assert world["emp_team"].get("/api/v1/me").json()["email_notifications"] is True


def test_settings_refuse_an_unknown_zone(tess: Browser, world: World) -> None:
    r = tess.form("/settings", {"timezone": "Mars/Olympus_Mons", "email_notifications": "on"})
    assert r.status_code == 422
    assert "time zone" in r.text.lower() or "timezone" in r.text.lower()
    assert world["emp_team"].get("/api/v1/me").json()["timezone"] == "UTC"


def test_signing_out_ends_the_session(tess: Browser) -> None:
    assert tess.form("/logout", csrf=False).status_code == 403
    r = tess.form("/logout")
    assert r.status_code == 200
    assert "signed out" in r.text
    cookie = tess.client.cookies.get("jobchat_session")
    assert not cookie
