"""The bulk message pages, in-process: the candidate manager's checkboxes and bar, the composer
(preview for the first candidate, who will be skipped and why, errors beside their fields), and
the progress page that survives a reload."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.jobqueue.worker import Worker
from tests.mail_support import drain, worker_for
from tests.support import Api, World, body
from tests.test_bulk_api import template
from tests.web_support import ORIGIN, Browser, texts


@pytest.fixture
def worker(client: TestClient) -> Worker:
    return worker_for(client.app)  # type: ignore[arg-type]


def send(browser: Browser, applications: list[str], **fields: str) -> httpx.Response:
    data: dict[str, str | list[str]] = {"application": applications, "csrf": browser.csrf}
    r: httpx.Response = browser.client.post(
        "/bulk", data=data | fields, headers={"Origin": ORIGIN}, follow_redirects=False
    )
    return r


def picks(html: str) -> list[str]:
    return re.findall(
        r'class="bulk-check" form="bulk-form" name="application" value="([^"]+)"', html
    )


def test_each_candidate_row_has_a_checkbox_for_the_application_to_message(
    tess: Browser, api: Api, world: World
) -> None:
    api.job("job2", "Porter", "acme", team=["emp_team"], status="closed")
    api.application("app3", "job2", "cand", "applied")  # newer, but its job is closed
    api.candidate("cand4", "Fay Closed")
    api.application("app4", "job2", "cand4", "applied")  # nothing open to message her about
    html = tess.page("/candidates")
    assert sorted(picks(html)) == ["app1", "app2"]
    assert "Fay Closed" in html
    assert 'id="bulk-form"' in html and "Select all on this page" in html
    assert "Select Carla Candidate (Registered Nurse)" in html
    # The list fragment the page redraws itself with keeps them.
    assert sorted(picks(tess.page("/candidates/list.html"))) == ["app1", "app2"]
    agency = Browser.signed_in(tess.client, api, "agency_user")
    assert picks(agency.page("/candidates")) == [] and "bulk-form" not in agency.page("/candidates")


def test_the_composer_previews_for_the_first_candidate_and_names_who_is_skipped(
    tess: Browser, db: Database
) -> None:
    html = tess.page("/bulk/new", application=["app2", "app1", "nope"], channel="sms")
    assert "Message 2 candidates" in html
    skips = " ".join(texts(html, "bulk-skips"))
    assert "Dan Candidate has not agreed to receive texts." in html
    assert "2 will be skipped" in skips
    tid = template(db, "emp_team", "Hi {{candidate.first_name}}, about {{job.title}}")
    r = send(tess, ["app2", "app1"], template=str(tid), channel="app", action="preview")
    assert r.status_code == 200
    assert texts(r.text, "bulk-preview-body") == ["Hi Dan, about Registered Nurse"]
    assert "Preview for Dan Candidate" in r.text and "Send to 2" in r.text


def test_sending_goes_to_a_progress_page_that_follows_the_worker(
    tess: Browser, world: World, worker: Worker
) -> None:
    r = send(tess, ["app1", "app2"], body="Hello {{candidate.first_name}}", channel="app")
    assert r.status_code == 303
    page = r.headers["location"]
    assert re.fullmatch(r"/bulk/\d+", page)
    assert "Queued." in tess.page(page)
    drain(worker)
    html = tess.page(page)  # a reload shows where it got to
    assert texts(html, "bulk-state") == ["Done: 2 sent."]
    fragment = tess.page(f"{page}/progress.html")
    assert 'data-status="done"' in fragment and "Sent to 2" in fragment
    items = body(world["cand"].inbox(), 200)["items"]
    assert [c["last_message"]["body"] for c in items] == ["Hello Carla"]
    # Only its author sees it.
    other = Browser.signed_in(tess.client, world.api, "emp_admin")
    other.page(page, 404)
    other.page(f"{page}/progress.html", 404)


def test_bad_input_is_the_composer_again_with_the_problem_beside_the_field(
    tess: Browser,
) -> None:
    r = send(tess, ["app1"], channel="app")
    assert r.status_code == 422 and "Message: is required" in r.text
    r = send(tess, ["app1"], body="Hi", channel="email")
    assert r.status_code == 422 and 'id="subject-error"' in r.text
    r = send(tess, ["app1"], body="Hi", channel="app", send_later="1", send_at="")
    assert r.status_code == 422 and 'id="send_at-error"' in r.text
    r = send(tess, [], body="Hi", channel="app")
    assert r.status_code == 422 and "select at least one candidate" in r.text


def test_send_later_reads_the_time_in_the_viewers_time_zone(
    tess: Browser, api: Api, world: World
) -> None:
    api.staff("emp_team", "Tess Team", "acme", timezone="Europe/Berlin")
    r = send(
        tess, ["app1"], body="Later", channel="app", send_later="1", send_at="2026-01-06T09:30"
    )
    assert r.status_code == 303
    bulk_id = r.headers["location"].rsplit("/", 1)[1]
    got = body(world["emp_team"].get(f"/api/v1/bulk-messages/{bulk_id}"), 200)
    assert datetime.fromisoformat(got["send_at"]) == datetime(2026, 1, 6, 8, 30, tzinfo=UTC)
    assert "it starts Tue 6 Jan 2026, 09:30 CET" in tess.page(f"/bulk/{bulk_id}")


def test_a_double_submit_queues_one_bulk_though_the_clock_moved(
    tess: Browser, world: World, worker: Worker, clock: FrozenClock
) -> None:
    form = {"body": "Once", "channel": "app", "idempotency_key": "form-key-1"}
    first = send(tess, ["app1"], **form)
    clock.advance(seconds=30)
    second = send(tess, ["app1"], **form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    drain(worker)
    items = body(world["cand"].inbox(), 200)["items"]
    assert [c["last_message"]["body"] for c in items] == ["Once"]


def test_a_composer_refused_for_a_bad_field_keeps_its_key(tess: Browser) -> None:
    r = send(tess, ["app1"], body="Hi", channel="email", idempotency_key="form-key-2")
    assert r.status_code == 422
    assert 'name="idempotency_key" value="form-key-2"' in r.text


def test_odd_digits_and_times_out_of_range_are_the_fields_errors(tess: Browser, api: Api) -> None:
    tess.page("/bulk/new", application=["app1"], template="²")
    r = send(tess, ["app1"], template="²", channel="app")
    assert r.status_code == 422 and 'id="template-error"' in r.text
    for zone, when in [
        ("America/New_York", "9999-12-31T23:59"),
        ("Asia/Tokyo", "0001-01-01T00:00"),
    ]:
        api.staff("emp_team", "Tess Team", "acme", timezone=zone)
        r = send(tess, ["app1"], body="Hi", channel="app", send_later="1", send_at=when)
        assert r.status_code == 422 and 'id="send_at-error"' in r.text, zone


def test_the_progress_page_names_only_those_the_author_may_still_see(
    tess: Browser, api: Api, worker: Worker
) -> None:
    r = send(tess, ["app1", "app2"], body="Hello", channel="app")
    page = r.headers["location"]
    drain(worker)
    assert "Dan Candidate" in tess.page(page)
    # Taken off the job's team: its applications are no longer hers to see.
    api.job("job1", "Registered Nurse", "acme", team=["emp_other"], partners=["tbb", "hireco"])
    html = tess.page(page)
    assert "Dan Candidate" not in html and "app2" in html
    assert "Dan Candidate" not in tess.page(f"{page}/progress.html")
