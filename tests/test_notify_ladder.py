"""The notification ladder's push rung: who of a conversation is pushed for a new message, and
when: never the author, nobody with the app open, nobody with push off or no device; in quiet
hours nothing until they end, then one push per conversation (or at once when they are
removed); nothing for a message deleted or read meanwhile."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update

from jobchat.auth.models import Credential
from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.directory.models import User
from jobchat.jobqueue.worker import Worker
from jobchat.notifications.ladder import hold
from jobchat.push.models import PushSubscription
from tests.mail_support import drain
from tests.notify_support import app_open, chat_fixture, pushes, subscribe, worker_fixture  # noqa: F401 (fixtures)
from tests.support import Api, World, body, user_id


def send(world: World, who: str, chat: int, text: str = "Hello") -> int:
    return int(body(world[who].send(chat, text), 201)["id"])


def test_each_device_of_each_member_but_the_author_is_pushed_once(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    phone, laptop = subscribe(db, clock, "cand", "phone"), subscribe(db, clock, "cand", "laptop")
    admin = subscribe(db, clock, "emp_admin")
    author = subscribe(db, clock, "emp_team")
    message = send(world, "emp_team", chat)
    drain(worker)
    assert sorted(pushes(db)) == sorted([(phone, message), (laptop, message), (admin, message)])
    assert all(sub != author for sub, _ in pushes(db))
    drain(worker)  # a second run queues nothing again
    assert len(pushes(db)) == 3


def test_nobody_with_the_app_open_push_off_or_no_device_is_pushed(
    world: World, client: TestClient, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    subscribe(db, clock, "cand")
    admin = subscribe(db, clock, "emp_admin")
    body(world["emp_admin"].patch("/api/v1/me", {"notifications": {"push": False}}), 200)
    # agency_user is a member with push on but no device.
    with app_open(client, db, world["cand"], "cand"):
        send(world, "emp_team", chat)
        drain(worker)
    assert pushes(db) == []
    # The app closed and push on again: the next message is pushed.
    body(world["emp_admin"].patch("/api/v1/me", {"notifications": {"push": True}}), 200)
    later = send(world, "emp_team", chat)
    drain(worker)
    assert (admin, later) in pushes(db)


def test_a_candidates_reply_reaches_staff_devices(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    team = subscribe(db, clock, "emp_team")
    reply = send(world, "cand", chat, "Yes, Tuesday works.")
    drain(worker)
    assert (team, reply) in pushes(db)


def test_nothing_for_a_message_deleted_before_the_ladder_ran(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    subscribe(db, clock, "cand")
    message = send(world, "emp_team", chat, "Oops")
    response = world["emp_team"].delete(f"/api/v1/messages/{message}", **{"for": "everyone"})
    assert response.status_code == 204
    drain(worker)
    assert pushes(db) == []


def test_a_replayed_send_is_not_pushed_again(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    subscribe(db, clock, "cand")
    first = body(world["emp_team"].send(chat, "Once", idempotency_key="k1"), 201)
    drain(worker)
    again = world["emp_team"].send(chat, "Once", idempotency_key="k1")
    assert again.json()["id"] == first["id"]
    drain(worker)
    assert len(pushes(db)) == 1


# --- quiet hours ---------------------------------------------------------------------------------


def night(clock: FrozenClock) -> None:
    """22:00 UTC: inside the candidates' default quiet hours, 21:00-08:00 (their zone: UTC)."""
    clock.advance(hours=13)  # the clock starts at 09:00 UTC


def test_quiet_hours_hold_pushes_until_they_end_then_one_per_conversation(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    phone = subscribe(db, clock, "cand")
    case = int(body(world["emp_team"].start("case", application="app1"), 201)["id"])
    night(clock)
    send(world, "emp_team", chat, "First")
    clock.advance(minutes=5)
    newest = send(world, "emp_team", chat, "Second")
    clock.advance(minutes=5)
    in_case = send(world, "emp_team", case, "About your case")
    drain(worker)
    assert pushes(db) == []
    me = body(world["cand"].get("/api/v1/me"), 200)
    assert me["quiet_hours"] == {"start": "21:00", "end": "08:00"}

    clock.advance(hours=9, minutes=49, seconds=58)  # 07:59:59 (subscribing took a second)
    drain(worker)
    assert pushes(db) == []
    clock.advance(seconds=1)  # 08:00: their quiet hours are over
    drain(worker)
    assert sorted(pushes(db)) == sorted([(phone, newest), (phone, in_case)])
    clock.advance(minutes=10)
    drain(worker)
    assert len(pushes(db)) == 2  # once


def test_removing_quiet_hours_releases_what_was_held_at_once(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    phone = subscribe(db, clock, "cand")
    night(clock)
    message = send(world, "emp_team", chat)
    drain(worker)
    assert pushes(db) == []
    body(world["cand"].patch("/api/v1/me", {"quiet_hours": None}), 200)
    drain(worker)  # the next poll
    assert pushes(db) == [(phone, message)]


def test_moving_quiet_hours_so_that_now_is_outside_them_releases_too(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    phone = subscribe(db, clock, "cand")
    night(clock)
    message = send(world, "emp_team", chat)
    drain(worker)
    window = {"start": "23:00", "end": "06:00"}
    body(world["cand"].patch("/api/v1/me", {"quiet_hours": window}), 200)
    drain(worker)
    assert pushes(db) == [(phone, message)]


def test_quiet_hours_follow_the_persons_time_zone(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    phone = subscribe(db, clock, "cand")
    # 09:00 UTC is 01:00 in Los Angeles: inside 21:00-08:00 there, so held until 16:00 UTC.
    body(world["cand"].patch("/api/v1/me", {"timezone": "America/Los_Angeles"}), 200)
    message = send(world, "emp_team", chat)
    drain(worker)
    assert pushes(db) == []
    clock.advance(hours=6, minutes=59)
    drain(worker)
    assert pushes(db) == []
    clock.advance(minutes=1)
    drain(worker)
    assert pushes(db) == [(phone, message)]


def test_nothing_is_released_for_what_was_read_or_deleted_in_the_night(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    subscribe(db, clock, "cand")
    case = int(body(world["emp_team"].start("case", application="app1"), 201)["id"])
    night(clock)
    send(world, "emp_team", chat, "Read in the night")
    deleted = send(world, "emp_team", case, "Deleted in the night")
    drain(worker)
    body(world["cand"].post(f"/api/v1/conversations/{chat}/read"), 200)
    response = world["emp_team"].delete(f"/api/v1/messages/{deleted}", **{"for": "everyone"})
    assert response.status_code == 204
    clock.advance(hours=10)  # 08:00
    drain(worker)
    assert pushes(db) == []


def test_staff_have_no_quiet_hours_by_default(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    team = subscribe(db, clock, "emp_team")
    night(clock)
    reply = send(world, "cand", chat, "Sorry for the late answer")
    drain(worker)
    assert pushes(db) == [(team, reply)]


def test_the_sweep_reads_no_held_person_before_their_time(
    world: World, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    subscribe(db, clock, "cand")
    night(clock)
    send(world, "emp_team", chat)
    drain(worker)
    morning = clock.now() + timedelta(hours=10)
    with db.write() as session:  # a night with many held: 300 more
        for n in range(300):
            session.add(
                User(
                    kind="candidate",
                    ext_id=f"held{n}",
                    name=f"Held {n}",
                    email=f"held{n}@example.com",
                    notify_held_until=morning,
                )
            )
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        clock.advance(hours=1)  # 23:00: nobody's hold is due
        drain(worker)  # every sweep once
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    # The release sweep: one indexed look-up that finds nothing due; no user read, none written.
    held = [s for s in statements if "notify_held_until IS NOT NULL" in s]
    assert len(held) == 1 and "<=" in held[0], held
    assert not any(s.lstrip().upper().startswith("UPDATE USERS") for s in statements)
    with db.read() as session:
        still = select(func.count()).where(User.notify_held_until == morning)
        assert session.scalar(still) == 300


def test_a_hold_is_written_even_when_the_sweep_cleared_it_after_it_was_read(
    world: World, db: Database, clock: FrozenClock
) -> None:
    """The row as the ladder read it says held until 08:00; the sweep has cleared it since (here
    in the same session, by the statement it uses): holding until 08:00 again must be written,
    not skipped as unchanged (the held push would be stranded)."""
    until = clock.now() + timedelta(hours=23)
    with db.write() as session:
        user = session.get_one(User, user_id(db, "cand"))
        user.notify_held_until = until
        session.flush()
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(notify_held_until=None)
            .execution_options(synchronize_session=False)
        )
        hold(session, user, until)
    with db.read() as session:
        assert session.get_one(User, user_id(db, "cand")).notify_held_until == until


def test_no_push_is_queued_for_a_device_whose_sign_in_was_revoked_or_ran_out(
    world: World, api: Api, db: Database, clock: FrozenClock, chat: int, worker: Worker
) -> None:
    """A device subscribed with a sign-in that has ended would get nothing when the push is
    sent (jobchat.push.payload checks again), so the ladder does not queue it at all."""
    revoked, expired, live = (
        body(api.integration.post("/api/v1/candidates/cand/tokens"), 201)["id"] for _ in range(3)
    )
    subs = {
        credential: subscribe(db, clock, "cand", f"device-{credential}")
        for credential in (revoked, expired, live)
    }
    with db.write() as session:
        for credential, sub in subs.items():
            session.execute(
                update(PushSubscription)
                .where(PushSubscription.id == sub)
                .values(credential_id=credential)
            )
    assert api.integration.delete(f"/api/v1/tokens/{revoked}").status_code == 204
    with db.write() as session:
        session.execute(
            update(Credential)
            .where(Credential.id == expired)
            .values(expires_at=clock.now() - timedelta(seconds=1))
        )
    message = send(world, "emp_team", chat)
    drain(worker)
    assert pushes(db) == [(subs[live], message)]
