"""Sign-in links with ``next`` and ``embed`` (contract: "Embedding"): where a link may send the
browser, the embed session's cookie and framing headers, the pages without their own header,
CSRF for its SameSite=None cookie, and JOBCHAT_EMBED_ORIGINS checked at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from jobchat.app import create_app
from jobchat.auth.csrf import csrf_token
from jobchat.clock import FrozenClock
from jobchat.config import Settings, settings_problem
from jobchat.db.engine import Database
from tests.support import API_KEY, Api, World, assert_error, body

ATS = "https://ats.example.com"
OTHER_ATS = "http://localhost:3000"
CANDIDATE_LINKS = "/api/v1/candidates/cand/login-links"
STAFF_LINKS = "/api/v1/users/emp_team/login-links"
NO_FRAMING = "frame-ancestors 'none'"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # As the variable would be read: spaces, a capital and a trailing slash are normalised away.
    return settings.model_copy(
        update={"embed_origins": Settings(embed_origins=f" {ATS}/ ,{OTHER_ATS}").embed_origins}
    )


def browser(client: TestClient) -> TestClient:
    """A browser of its own (cookie jar), on https so that it sends back a Secure cookie."""
    return TestClient(client.app, base_url="https://testserver")


def link(api: Api, path: str, json: object | None = None) -> str:
    """A sign-in link; no ``json``: the call with no body at all, as before."""
    url: str = body(api.integration.post(path, json), 201)["url"]
    return url


def embed_session(client: TestClient, api: Api, path: str = STAFF_LINKS) -> TestClient:
    viewer = browser(client)
    r = viewer.get(link(api, path, {"embed": True, "next": "/inbox"}), follow_redirects=False)
    assert r.status_code == 303, r.text
    return viewer


def application_conversation(world: World) -> int:
    conv: int = body(world["emp_team"].start("application", application="app1"), 201)["id"]
    return conv


def set_cookie_attributes(response: httpx.Response) -> dict[str, str]:
    """The session cookie's attributes, as the browser reads them (names in lower case; a flag
    such as Secure as ""). Read by hand: Python's http.cookies drops Partitioned before 3.14."""
    header = response.headers["set-cookie"]
    first, *attributes = (part.strip() for part in header.split(";"))
    assert first.startswith("jobchat_session="), header
    pairs = (attribute.partition("=") for attribute in attributes)
    return {name.lower(): value for name, _, value in pairs}


# --- next ----------------------------------------------------------------------------------------


def test_a_link_without_a_body_still_works(world: World, api: Api, client: TestClient) -> None:
    """The call of before (no body): a link to the start page, an ordinary Lax session, and
    pages that refuse every frame."""
    url = link(api, CANDIDATE_LINKS)
    assert "?" not in url and "/login/jcl_" in url
    viewer = browser(client)
    r = viewer.get(url, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/")
    cookie = set_cookie_attributes(r)
    assert cookie["samesite"].lower() == "lax" and "partitioned" not in cookie
    page = viewer.get("/portal")
    assert page.status_code == 200
    assert NO_FRAMING in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert 'class="topbar"' in page.text


def test_next_takes_the_browser_there_after_signing_in(
    world: World, api: Api, client: TestClient
) -> None:
    conv = application_conversation(world)
    target = f"/conversations/{conv}?from=ats#latest"
    url = link(api, STAFF_LINKS, {"next": target})
    assert parse_qs(urlsplit(url).query)["next"] == [target]
    r = browser(client).get(url, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, target)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/inbox",
        "//evil.example/inbox",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/ /evil.example",
        "javascript:alert(1)",
        "inbox",
        "",
        "/" + "a" * 2000,
    ],
)
def test_next_must_be_a_path_of_this_site(
    world: World, api: Api, client: TestClient, target: str
) -> None:
    """Anything a browser could read as another site (or that is not a path) is 422, for
    both kinds of people; nothing is issued."""
    for path in (STAFF_LINKS, CANDIDATE_LINKS):
        assert_error(api.integration.post(path, {"next": target}), 422, fields={"next"})


def test_a_bad_next_in_a_link_lands_on_the_start_page(
    world: World, api: Api, client: TestClient
) -> None:
    """Links made by other code (or edited by hand) carry ``next`` too: the sign-in page itself
    never redirects off the site, whitespace tricks included."""
    for target in ("//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example"):
        url = link(api, STAFF_LINKS)
        r = browser(client).get(url, params={"next": target}, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/"), target


def test_the_body_is_checked(world: World, api: Api) -> None:
    assert_error(api.integration.post(STAFF_LINKS, {"embed": "yes"}), 422, fields={"embed"})
    assert_error(api.integration.post(STAFF_LINKS, {"nxt": "/inbox"}), 422, fields={"nxt"})
    assert_error(api.integration.post("/api/v1/users/nobody/login-links", {"embed": True}), 404)


# --- embed ---------------------------------------------------------------------------------------


def test_an_embed_session_may_be_framed_by_the_ats_alone(
    world: World, api: Api, client: TestClient
) -> None:
    """The link (opened in the ATS's iframe) and every response of its session may be framed by
    the origins set, and no others; its cookie is SameSite=None; Secure; Partitioned."""
    url = link(api, CANDIDATE_LINKS, {"embed": True, "next": "/inbox"})
    assert "/login/jcle_" in url
    viewer = browser(client)
    r = viewer.get(url, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/inbox")
    framing = f"frame-ancestors 'self' {ATS} {OTHER_ATS}"
    assert framing in r.headers["content-security-policy"]
    assert "x-frame-options" not in r.headers
    cookie = set_cookie_attributes(r)
    assert cookie["samesite"].lower() == "none"
    assert {"secure", "httponly", "partitioned"} <= cookie.keys()

    for path in ("/inbox", "/portal", "/settings", "/api/v1/me"):
        page = viewer.get(path)
        assert page.status_code == 200, (path, page.text)
        policy = page.headers["content-security-policy"]
        assert framing in policy and NO_FRAMING not in policy, path
        assert "script-src 'self'" in policy  # the rest of the policy is as strict as ever
        assert "x-frame-options" not in page.headers, path

    # Everyone else's responses still refuse every frame.
    for other in (browser(client).get("/"), api.integration.get("/api/v1/organizations/acme")):
        assert NO_FRAMING in other.headers["content-security-policy"]
        assert other.headers["x-frame-options"] == "DENY"


def test_an_embed_link_that_no_longer_works_says_so_inside_the_frame(
    world: World, api: Api, client: TestClient
) -> None:
    url = link(api, STAFF_LINKS, {"embed": True})
    browser(client).get(url, follow_redirects=False)
    again = browser(client).get(url, follow_redirects=False)
    assert again.status_code == 404
    assert f"frame-ancestors 'self' {ATS}" in again.headers["content-security-policy"]
    assert "set-cookie" not in again.headers


def test_an_ended_embed_session_says_so_inside_the_frame(
    world: World, api: Api, client: TestClient
) -> None:
    """Deactivated (or expired), the frame shows our "sign in" page rather than the browser's
    refusal: the ATS's page explains itself."""
    viewer = embed_session(client, api)
    assert viewer.get("/inbox").status_code == 200
    assert api.integration.delete("/api/v1/users/emp_team").status_code == 204
    page = viewer.get("/inbox")
    assert page.status_code == 401
    assert f"frame-ancestors 'self' {ATS}" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers


def test_embedded_pages_have_no_header_of_their_own(
    world: World, api: Api, client: TestClient
) -> None:
    conv = application_conversation(world)
    viewer = embed_session(client, api)
    for path in ("/inbox", f"/conversations/{conv}"):
        page = viewer.get(path)
        assert page.status_code == 200
        assert '<body class="embedded"' in page.text
        assert 'class="topbar"' not in page.text and 'action="/logout"' not in page.text
        assert 'target="' not in page.text  # every link and form stays in the frame
    ordinary = browser(client)
    ordinary.get(link(api, STAFF_LINKS), follow_redirects=False)
    assert 'class="topbar"' in ordinary.get("/inbox").text


def test_an_embed_sessions_writes_need_our_origin_and_its_csrf_token(
    world: World, api: Api, client: TestClient
) -> None:
    """Its cookie goes with cross-site requests (SameSite=None), so the Origin check and the
    CSRF token are what refuse a write from another site, the framing ATS's included."""
    conv = application_conversation(world)
    viewer = embed_session(client, api)
    secret = viewer.cookies["jobchat_session"]
    token = csrf_token(secret)
    send = f"/api/v1/conversations/{conv}/messages"

    ours = {"origin": "https://testserver", "x-csrf-token": token}
    assert viewer.post(send, json={"body": "From the frame"}, headers=ours).status_code == 201
    for origin in (ATS, "https://evil.example"):
        refused = viewer.post(
            send, json={"body": "forged"}, headers={"origin": origin, "x-csrf-token": token}
        )
        assert_error(refused, 403, "cross_site")
    assert_error(
        viewer.post(send, json={"body": "no token"}, headers={"origin": "https://testserver"}),
        403,
        "csrf_failed",
    )
    # A page form posted from another site (the no-JS composer's route) is refused too.
    form = viewer.post("/logout", data={"csrf": token}, headers={"origin": "https://evil.example"})
    assert form.status_code == 403
    assert viewer.get("/api/v1/me").status_code == 200  # still signed in


def test_signing_out_of_an_embed_session_clears_the_partitioned_cookie(
    world: World, api: Api, client: TestClient
) -> None:
    viewer = embed_session(client, api)
    token = csrf_token(viewer.cookies["jobchat_session"])
    r = viewer.post("/logout", data={"csrf": token}, headers={"origin": "https://testserver"})
    assert r.status_code == 200
    cleared = set_cookie_attributes(r)
    assert cleared["max-age"] == "0" and {"secure", "partitioned"} <= cleared.keys()
    assert_error(browser(client).get("/api/v1/me"), 401)


def test_embed_needs_origins_to_frame(
    world: World, api: Api, settings: Settings, db: Database, clock: FrozenClock
) -> None:
    unset = settings.model_copy(update={"embed_origins": ""})
    with TestClient(create_app(unset, db=db, clock=clock)) as other:
        key = {"Authorization": f"Bearer {API_KEY}"}
        r = other.post(STAFF_LINKS, json={"embed": True}, headers=key)
        assert_error(r, 422, "embedding_off", fields={"embed"})
        assert other.post(STAFF_LINKS, json={"embed": False}, headers=key).status_code == 201


# --- JOBCHAT_EMBED_ORIGINS -----------------------------------------------------------------------


def test_good_origins_are_normalised() -> None:
    taken = Settings(
        _env_file=None,
        embed_origins="HTTPS://ATS.Example.com:8443/, http://localhost:3000,,https://[::1]:9",
    )
    assert taken.frame_origins == (
        "https://ats.example.com:8443",
        "http://localhost:3000",
        "https://[::1]:9",
    )
    assert Settings(_env_file=None, embed_origins=" ").frame_origins == ()


@pytest.mark.parametrize(
    "value",
    [
        "https://ats.example.com/jobs",
        "ats.example.com",
        "ftp://ats.example.com",
        "https://ats.example.com:99999",
        "https://user@ats.example.com",
        "https://ats.example.com?x=1",
        "https://ats.example.com 'unsafe-inline'",
        "https://ats.example.com;script-src *",
        "*",
    ],
)
def test_a_bad_origin_is_named(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, embed_origins=value)
    line = settings_problem(caught.value)
    assert line.startswith("bad setting: JOBCHAT_EMBED_ORIGINS ") and "\n" not in line, line


def test_embedding_needs_a_secure_public_url() -> None:
    """The embed cookie is Secure: on a plain-http public address no browser would keep it."""
    origin = "https://ats.example.com"
    for public_url in ("https://chat.example.com", "http://127.0.0.1:8000", "http://localhost"):
        Settings(_env_file=None, public_url=public_url, embed_origins=origin)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, public_url="http://chat.example.com", embed_origins=origin)
    line = settings_problem(caught.value)
    assert "JOBCHAT_EMBED_ORIGINS needs JOBCHAT_PUBLIC_URL on https://" in line, line
    Settings(_env_file=None, public_url="http://chat.example.com")  # no embedding: no rule


def test_a_bad_origin_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCHAT_", "TWILIO_"))}
    env |= {
        "JOBCHAT_DATABASE_URL": f"sqlite:///{tmp_path / 'jobchat.db'}",
        "JOBCHAT_EMBED_ORIGINS": "https://ats.example.com/embed",
    }
    result = subprocess.run(
        [sys.executable, "-m", "jobchat", "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "JOBCHAT_EMBED_ORIGINS" in lines[0], result.stderr
    assert not (tmp_path / "jobchat.db").exists()
