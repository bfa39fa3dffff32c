"""Bulk texts: they leave at the provider's rate (JOBCHAT_SMS_RATE_PER_SECOND, default 1), one
rate for every bulk at once; a text in the candidate's night is held for their morning (and
counts as sent), and the held texts go out at the same rate then, each once.

The clock starts at 10:00 in Los Angeles, the zone of these candidates' numbers (+1 415); the
night tests move it on to 22:00 there, when SMS quiet hours (21:00-08:00) hold every text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.jobqueue.models import JobStatus, QueuedJob
from jobchat.jobqueue.worker import Worker
from jobchat.messages.actions import SMS_DELIVERY_JOB
from tests.mail_support import drain
from tests.support import Api, As, World, body, start
from tests.test_bulk_api import BULK, post, thread_of
from tests.twilio_support import candidate_daytime_clock, worker

# The fixtures: the module's clock (daytime for a +1 415 number) and the app's worker.
__all__ = ["candidate_daytime_clock", "worker"]

# 22:00 in Los Angeles (the day after CANDIDATE_DAYTIME), and the 08:00 that ends its night.
NIGHT_HOURS_LATER = 12
MORNING = datetime(2026, 1, 6, 16, 0, tzinfo=UTC)


def texted(api: Api, n: int, first: int = 10) -> list[str]:
    """``n`` candidates with +1 415 numbers who agreed to texts, applied to job1."""
    apps = []
    for i in range(first, first + n):
        api.candidate(f"cand{i}", f"Person {i}", phone=f"+1415555{i:04d}", sms_consent=True)
        api.application(f"app{i}", "job1", f"cand{i}", "screening")
        apps.append(f"app{i}")
    return apps


def statuses(who: As, apps: list[str]) -> list[str]:
    return [m["deliveries"][0]["status"] for app in apps for m in thread_of(who, app)]


def sms_jobs(db: Database) -> list[tuple[JobStatus, int]]:
    """Every SMS delivery job: (status, attempts)."""
    with db.read() as session:
        rows = session.execute(
            select(QueuedJob.status, QueuedJob.attempts)
            .where(QueuedJob.kind == SMS_DELIVERY_JOB)
            .order_by(QueuedJob.id)
        )
        return [(JobStatus(status), attempts) for status, attempts in rows]


def test_a_channel_the_candidate_cannot_take_skips_only_them(
    api: Api, world: World, worker: Worker, clock: FrozenClock
) -> None:
    api.candidate("cand3", "Erin Example", phone="+14155550199", sms_consent=True)
    api.application("app3", "job1", "cand3", "screening")
    tess = world["emp_team"]
    queued = post(tess, applications=["app1", "app2", "app3"], body="Call us?", channel="sms")
    drain(worker)
    done = body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert done["sent"] == 2
    assert [(s["application"], s["code"]) for s in done["skipped"]] == [("app2", "sms_opted_out")]

    # The texts leave one a second: the second is still queued when the first has gone.
    assert statuses(tess, ["app1", "app3"]) == ["sent", "queued"]
    clock.advance(seconds=1)
    drain(worker)
    assert statuses(tess, ["app1", "app3"]) == ["sent", "sent"]
    erin = thread_of(api.as_candidate("cand3"), "app3")
    assert [m["body"] for m in erin] == ["Call us?"] and erin[0]["channel"] == "sms"


def test_texts_at_night_are_held_and_count_as_sent(
    api: Api, world: World, worker: Worker, clock: FrozenClock
) -> None:
    clock.advance(hours=NIGHT_HOURS_LATER)
    apps = texted(api, 2)
    tess = world["emp_team"]
    queued = post(tess, applications=[*apps, "app2"], body="Call us?", channel="sms")
    drain(worker)
    done = body(tess.get(f"{BULK}/{queued['id']}", recipients="true"), 200)
    assert (done["status"], done["sent"], done["total"]) == ("done", 2, 3)
    assert [s["application"] for s in done["skipped"]] == ["app2"]
    assert statuses(tess, apps) == ["held", "held"]


def test_held_texts_go_out_in_the_morning_at_the_providers_rate_each_once(
    api: Api, world: World, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    clock.advance(hours=NIGHT_HOURS_LATER)
    apps = texted(api, 5)
    tess = world["emp_team"]
    post(tess, applications=apps, body="Call us?", channel="sms")
    drain(worker)
    assert statuses(tess, apps) == ["held"] * 5
    # Nothing goes during the night (a job run early would only hold its text again).
    clock.advance(seconds=(MORNING - clock.now()).total_seconds() - 1)
    drain(worker)
    assert statuses(tess, apps) == ["held"] * 5

    for sent in range(1, 6):
        clock.advance(seconds=1)
        drain(worker)
        assert statuses(tess, apps) == ["sent"] * sent + ["held"] * (5 - sent), clock.now()
    # One job per text, run once: none was held again or sent twice.
    assert sms_jobs(db) == [(JobStatus.done, 1)] * 5


def test_two_bulks_at_once_share_the_rate(
    api: Api, world: World, worker: Worker, clock: FrozenClock
) -> None:
    first, second = texted(api, 2), texted(api, 2, first=20)
    tess = world["emp_team"]
    post(tess, applications=first, body="One", channel="sms")
    post(tess, applications=second, body="Two", channel="sms")
    drain(worker)
    everyone = [*first, *second]
    assert statuses(tess, everyone) == ["sent", "queued", "queued", "queued"]
    for sent in range(2, 5):
        clock.advance(seconds=1)
        drain(worker)
        assert statuses(tess, everyone) == ["sent"] * sent + ["queued"] * (4 - sent)


def test_held_texts_of_two_bulks_share_the_morning_rate(
    api: Api, world: World, worker: Worker, clock: FrozenClock
) -> None:
    clock.advance(hours=NIGHT_HOURS_LATER)
    first, second = texted(api, 2), texted(api, 2, first=20)
    tess = world["emp_team"]
    post(tess, applications=first, body="One", channel="sms")
    post(tess, applications=second, body="Two", channel="sms")
    drain(worker)
    clock.advance(seconds=(MORNING - clock.now()).total_seconds())
    everyone = [*first, *second]
    for sent in range(1, 5):
        drain(worker)
        assert statuses(tess, everyone) == ["sent"] * sent + ["held"] * (4 - sent)
        clock.advance(seconds=1)


def test_an_ordinary_text_put_off_by_backoff_does_not_hold_a_bulk_back(
    api: Api, world: World, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    apps = texted(api, 3)
    tess = world["emp_team"]
    chat = start(tess, "application", application=apps[0])
    body(tess.send(chat, "Just you", channel="sms"), 201)
    # Its provider said "later": its job waits ten minutes (as the backoff sets it).
    with db.write() as session:
        session.execute(
            update(QueuedJob)
            .where(QueuedJob.kind == SMS_DELIVERY_JOB)
            .values(run_at=clock.now() + timedelta(seconds=600), attempts=1)
        )
    post(tess, applications=apps[1:], body="Call us?", channel="sms")
    drain(worker)
    assert statuses(tess, apps[1:]) == ["sent", "queued"]
    clock.advance(seconds=1)
    drain(worker)
    assert statuses(tess, apps[1:]) == ["sent", "sent"]
