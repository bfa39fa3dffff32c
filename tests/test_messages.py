"""Sending (app, email, SMS), idempotent retries, deleting for me or for everyone, read state."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlalchemy import func, select

from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.messages.models import Delivery, Message
from tests.support import Api, As, World, assert_error, sent, start, user_id

# --- helpers -------------------------------------------------------------------------------------


def conversation(who: As, conv_id: int) -> dict[str, Any]:
    r = who.get(f"/api/v1/conversations/{conv_id}")
    assert r.status_code == 200, r.text
    conv: dict[str, Any] = r.json()
    return conv


def unread(who: As, conv_id: int) -> int:
    count: int = conversation(who, conv_id)["unread_count"]
    return count


def history(who: As, conv_id: int) -> list[dict[str, Any]]:
    r = who.messages(conv_id)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def badge(who: As) -> dict[str, int]:
    r = who.get("/api/v1/unread")
    assert r.status_code == 200, r.text
    body: dict[str, int] = r.json()
    return body


def mark_read(who: As, conv_id: int, body: Any = None) -> httpx.Response:
    return who.post(f"/api/v1/conversations/{conv_id}/read", body)


def count_rows(db: Database, model: type[Message] | type[Delivery]) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# --- sending ------------------------------------------------------------------------------------


def test_send_in_the_app(world: World, clock: FrozenClock) -> None:
    """An app message is stored with its author, channel and time, and reaches the others."""
    conv_id = start(world["emp_team"], "application", application="app1")
    message = sent(world["emp_team"].send(conv_id, "  Welcome aboard!  "))
    assert message["conversation"] == conv_id
    assert message["author"] == {"id": "emp_team", "name": "Tess Team", "kind": "staff"}
    assert message["body"] == "Welcome aboard!"
    assert message["channel"] == "app"
    assert message["deleted"] is False
    assert message["created_at"] in ("2026-01-05T09:00:00Z", "2026-01-05T09:00:00+00:00")
    assert message.get("deliveries") in (None, [])
    for role in ("cand", "emp_admin"):
        assert [m["id"] for m in history(world[role], conv_id)] == [message["id"]]
        assert unread(world[role], conv_id) == 1
        assert conversation(world[role], conv_id)["last_message"]["id"] == message["id"]


def test_email_needs_a_subject_and_a_body(world: World, db: Database) -> None:
    """An email without a subject (or with a blank one) is refused, naming ``subject``."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    assert_error(emp.send(conv_id, "Hello", channel="email"), 422, fields={"subject"})
    assert_error(
        emp.send(conv_id, "Hello", channel="email", subject="   "), 422, fields={"subject"}
    )
    assert_error(emp.send(conv_id, "Hello", channel="email", subject=None), 422, fields={"subject"})
    assert_error(
        emp.send(conv_id, "  ", channel="email", subject="Interview"), 422, fields={"body"}
    )
    assert_error(emp.send(conv_id, "", channel="email"), 422, fields={"body", "subject"})
    assert count_rows(db, Message) == 0
    assert count_rows(db, Delivery) == 0

    message = sent(emp.send(conv_id, "See you Monday", channel="email", subject="Interview"))
    assert (message["channel"], message["subject"]) == ("email", "Interview")
    assert message["deliveries"] == [
        {"recipient": "cand", "channel": "email", "status": "queued", "until": None,
         "attempts": 0, "last_error": None, "error_code": None}
    ]  # fmt: skip
    with db.read() as s:
        delivery = s.scalars(select(Delivery)).one()
        assert (delivery.message_id, delivery.channel, delivery.address, delivery.status) == (
            message["id"],
            "email",
            "cand@example.org",
            "queued",
        )


def test_sms_to_a_consenting_candidate_with_a_valid_phone(
    world: World, api: Api, db: Database, clock: FrozenClock
) -> None:
    """An SMS goes to the candidate's number in E.164, as one delivery queued for the worker."""
    # 10:00 in San Francisco, where the candidate's number is: the text goes at once (at night
    # SMS quiet hours would hold it: tests/test_sms_quiet_hours.py).
    clock.advance(hours=9)
    api.candidate("cand", "Carla Candidate", phone="(415) 555-0187", sms_consent=True)
    conv_id = start(world["emp_team"], "application", application="app1")
    message = sent(world["emp_team"].send(conv_id, "Your interview is at 10am", channel="sms"))
    assert message["channel"] == "sms"
    assert message["body"] == "Your interview is at 10am"
    assert len(message["deliveries"]) == 1
    delivery_out = message["deliveries"][0]
    assert delivery_out["recipient"] == "cand"
    assert delivery_out["channel"] == "sms"
    assert delivery_out["status"] == "queued"
    assert delivery_out["attempts"] == 0
    with db.read() as s:
        rows = list(s.scalars(select(Delivery)))
    assert len(rows) == 1
    row = rows[0]
    assert row.message_id == message["id"]
    assert row.recipient_id == user_id(db, "cand")
    assert row.channel == "sms"
    assert row.address == "+14155550187"
    assert row.status == "queued"
    assert row.attempts == 0
    # Staff see the delivery in the history too; the candidate sees the message.
    staff_view = history(world["emp_admin"], conv_id)[0]
    assert staff_view["deliveries"][0]["status"] == "queued"
    assert history(world["cand"], conv_id)[0]["body"] == "Your interview is at 10am"


def test_sms_needs_consent_and_a_valid_phone(world: World, api: Api, db: Database) -> None:
    """No SMS to a candidate who did not opt in, or who has no valid number: 422 on ``channel``."""
    conv_id = start(world["emp_team"], "application", application="app2")
    emp = world["emp_team"]
    # cand2: no phone, no consent.
    assert_error(emp.send(conv_id, "Hi", channel="sms"), 422, fields={"channel"})
    # A phone but no consent.
    api.candidate("cand2", "Dan Candidate", phone="+14155550155")
    assert_error(emp.send(conv_id, "Hi", channel="sms"), 422, fields={"channel"})
    # Consent withdrawn explicitly.
    api.candidate("cand2", "Dan Candidate", sms_consent=False)
    assert_error(emp.send(conv_id, "Hi", channel="sms"), 422, fields={"channel"})
    # Consent, but the number was cleared.
    api.candidate("cand2", "Dan Candidate", phone=None, sms_consent=True)
    assert_error(emp.send(conv_id, "Hi", channel="sms"), 422, fields={"channel"})
    assert count_rows(db, Message) == 0
    assert count_rows(db, Delivery) == 0
    assert history(world["cand2"], conv_id) == []
    # With both, it goes.
    api.candidate("cand2", "Dan Candidate", phone="+14155550155", sms_consent=True)
    sent(emp.send(conv_id, "Hi", channel="sms"))
    assert count_rows(db, Delivery) == 1


def test_candidates_cannot_send_email_or_sms(world: World, db: Database) -> None:
    """A candidate replies in the app only; email and SMS from a candidate are refused."""
    conv_id = start(world["emp_team"], "application", application="app1")
    cand = world["cand"]
    assert_error(cand.send(conv_id, "Hi", channel="email", subject="Re"), 422, fields={"channel"})
    assert_error(cand.send(conv_id, "Hi", channel="sms"), 422, fields={"channel"})
    assert count_rows(db, Message) == 0
    assert sent(cand.send(conv_id, "Hi"))["channel"] == "app"


def test_email_and_sms_only_in_one_candidate_kinds(world: World, db: Database) -> None:
    """Email and SMS go to the one candidate of a conversation; group and agency threads refuse."""
    emp = world["emp_team"]
    for kind, refs in (
        ("job_partners", {"job": "job1"}),
        ("job_relocation", {"job": "job1"}),
        ("job_partner", {"job": "job1", "partner": "tbb"}),
        ("agency", {"application": "app1"}),
    ):
        conv_id = start(emp, kind, **refs)
        r = emp.send(conv_id, "Hi", channel="email", subject="Hello")
        assert_error(r, 422, fields={"channel"})
        assert_error(emp.send(conv_id, "Hi", channel="sms"), 422, fields={"channel"})
        sent(emp.send(conv_id, f"In the app, {kind} is fine"))
    assert count_rows(db, Delivery) == 0
    # The one-candidate kinds take them.
    for kind in ("application", "case"):
        conv_id = start(emp, kind, application="app1")
        sent(emp.send(conv_id, "Hi", channel="email", subject="Hello"))
        sent(emp.send(conv_id, "Hi", channel="sms"))
    sp_conv = start(world["sp_in"], "candidate_partner", candidate="cand")
    sent(world["sp_in"].send(sp_conv, "Hi", channel="sms"))
    assert count_rows(db, Delivery) == 5


def test_empty_or_blank_body_is_refused(world: World, db: Database) -> None:
    """A message needs some text: an empty or whitespace-only body is a 422 on ``body``."""
    conv_id = start(world["emp_team"], "application", application="app1")
    for body in ("", " ", "\n\t  \r\n", "\u00a0\u2003"):
        assert_error(world["emp_team"].send(conv_id, body), 422, fields={"body"})
        assert_error(world["cand"].send(conv_id, body), 422, fields={"body"})
    assert_error(world["emp_team"].post(f"/api/v1/conversations/{conv_id}/messages", {}), 422,
                 fields={"body"})  # fmt: skip
    assert count_rows(db, Message) == 0
    assert unread(world["cand"], conv_id) == 0


def test_body_length_limits(world: World, db: Database) -> None:
    """Up to 10,000 characters in the app or by email, and up to 1,600 by SMS."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    assert_error(emp.send(conv_id, "a" * 10_001), 422, fields={"body"})
    assert_error(
        emp.send(conv_id, "a" * 10_001, channel="email", subject="Long"), 422, fields={"body"}
    )
    assert_error(emp.send(conv_id, "a" * 1_601, channel="sms"), 422, fields={"body"})
    assert count_rows(db, Message) == 0
    assert sent(emp.send(conv_id, "a" * 10_000))["body"] == "a" * 10_000
    sent(emp.send(conv_id, "b" * 10_000, channel="email", subject="Long"))
    assert sent(emp.send(conv_id, "c" * 1_600, channel="sms"))["body"] == "c" * 1_600
    # Characters, not bytes: 1,600 emoji fit in one SMS body.
    sent(emp.send(conv_id, "😀" * 1_600, channel="sms"))
    assert count_rows(db, Message) == 4


# --- idempotency --------------------------------------------------------------------------------


def test_same_idempotency_key_twice_stores_one_message(world: World, db: Database) -> None:
    """A retried send with the same key returns the first message, marked as a replay."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    first = emp.send(conv_id, "Offer letter attached", idempotency_key="send-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = emp.send(conv_id, "Offer letter attached", idempotency_key="send-1")
    assert second.status_code == 201, second.text
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json() == first.json()
    assert count_rows(db, Message) == 1
    assert [m["id"] for m in history(world["cand"], conv_id)] == [first.json()["id"]]
    assert unread(world["cand"], conv_id) == 1
    assert badge(world["cand"]) == {"conversations": 1, "messages": 1}


def test_idempotent_email_is_delivered_once(world: World, db: Database) -> None:
    """A retried email send queues one delivery, not two."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    for _ in range(3):
        r = emp.send(conv_id, "Body", channel="email", subject="Subj", idempotency_key="mail-1")
        assert r.status_code == 201, r.text
    assert count_rows(db, Message) == 1
    assert count_rows(db, Delivery) == 1


def test_same_key_with_a_different_message_is_409(world: World, db: Database) -> None:
    """Reusing a key for another message is a conflict, not a silent replay or a second send."""
    conv_id = start(world["emp_team"], "application", application="app1")
    other_conv = start(world["emp_team"], "case", application="app1")
    emp = world["emp_team"]
    original = sent(emp.send(conv_id, "First text", idempotency_key="k-1"))
    assert_error(emp.send(conv_id, "Other text", idempotency_key="k-1"), 409,
                 "idempotency_key_reused")  # fmt: skip
    assert_error(emp.send(conv_id, "First text", channel="email", subject="S",
                          idempotency_key="k-1"), 409, "idempotency_key_reused")  # fmt: skip
    assert_error(emp.send(other_conv, "First text", idempotency_key="k-1"), 409,
                 "idempotency_key_reused")  # fmt: skip
    assert count_rows(db, Message) == 1
    assert [m["body"] for m in history(emp, conv_id)] == [original["body"]]
    assert history(emp, other_conv) == []


def test_idempotency_keys_belong_to_their_author(world: World, db: Database) -> None:
    """Two users who happen to pick the same key each get their own message."""
    conv_id = start(world["emp_team"], "application", application="app1")
    a = sent(world["emp_team"].send(conv_id, "From Tess", idempotency_key="same"))
    r = world["emp_admin"].send(conv_id, "From Ada", idempotency_key="same")
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert r.json()["id"] != a["id"]
    assert [m["body"] for m in history(world["cand"], conv_id)] == ["From Tess", "From Ada"]


def test_concurrent_sends_with_one_key_store_one_message(world: World, db: Database) -> None:
    """Six simultaneous retries of one send store it once and all answer with that message."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    barrier = threading.Barrier(6)
    responses: list[httpx.Response] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            r = emp.send(conv_id, "Exactly once", idempotency_key="race-1")
            with lock:
                responses.append(r)
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(responses) == 6
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replays) == 5
    assert count_rows(db, Message) == 1
    assert unread(world["cand"], conv_id) == 1
    assert unread(world["emp_admin"], conv_id) == 1


# --- deleting -----------------------------------------------------------------------------------


def test_delete_for_me_hides_it_only_for_me(world: World) -> None:
    """Deleting for me hides the message from my history and inbox; others still see it."""
    conv_id = start(world["emp_team"], "application", application="app1")
    first = sent(world["emp_team"].send(conv_id, "Keep this"))
    second = sent(world["emp_team"].send(conv_id, "Hide this"))
    cand = world["cand"]
    assert unread(cand, conv_id) == 2
    assert badge(cand) == {"conversations": 1, "messages": 2}

    r = cand.delete(f"/api/v1/messages/{second['id']}", **{"for": "me"})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert [m["id"] for m in history(cand, conv_id)] == [first["id"]]
    assert unread(cand, conv_id) == 1
    assert badge(cand) == {"conversations": 1, "messages": 1}
    # The preview falls back to the newest message still visible to me.
    assert conversation(cand, conv_id)["last_message"]["id"] == first["id"]

    for role in ("emp_team", "emp_admin"):
        items = history(world[role], conv_id)
        assert [(m["id"], m["body"], m["deleted"]) for m in items] == [
            (first["id"], "Keep this", False),
            (second["id"], "Hide this", False),
        ]
        assert conversation(world[role], conv_id)["last_message"]["body"] == "Hide this"
    assert unread(world["emp_admin"], conv_id) == 2


def test_delete_for_me_of_a_read_message_leaves_unread_alone(world: World) -> None:
    """Hiding a message I already read does not change my unread count; hiding twice is fine."""
    conv_id = start(world["emp_team"], "application", application="app1")
    first = sent(world["emp_team"].send(conv_id, "Old"))
    mark_read(world["cand"], conv_id)
    sent(world["emp_team"].send(conv_id, "New"))
    cand = world["cand"]
    assert unread(cand, conv_id) == 1
    for _ in range(2):
        assert cand.delete(f"/api/v1/messages/{first['id']}").status_code == 204
        assert unread(cand, conv_id) == 1
    assert [m["body"] for m in history(cand, conv_id)] == ["New"]
    # My own message, hidden for me, never counted as unread for me.
    mine = sent(cand.send(conv_id, "Mine"))
    assert cand.delete(f"/api/v1/messages/{mine['id']}").status_code == 204
    assert unread(cand, conv_id) == 0
    assert [m["body"] for m in history(world["emp_team"], conv_id)] == ["Old", "New", "Mine"]


def test_delete_for_everyone_is_for_the_author_only(world: World) -> None:
    """Only the author may delete a message for everyone; other members get 403."""
    conv_id = start(world["emp_team"], "application", application="app1")
    message = sent(world["emp_team"].send(conv_id, "Mine"))
    for role in ("cand", "emp_admin"):
        r = world[role].delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
        assert_error(r, 403)
    assert [m["deleted"] for m in history(world["cand"], conv_id)] == [False]
    assert_error(
        world["emp_team"].delete(f"/api/v1/messages/{message['id']}", **{"for": "nobody"}),
        422,
        fields={"for"},
    )


def test_delete_for_everyone_tombstones_the_message(
    world: World, db: Database, clock: FrozenClock
) -> None:
    """Deleted for everyone: every member sees ``deleted: true`` and an empty body, in history
    and as the last message; the content stays in the database for audit."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    kept = sent(emp.send(conv_id, "Kept"))
    gone = sent(emp.send(conv_id, "Regrettable", channel="email", subject="Oops"))
    clock.advance(minutes=5)
    r = emp.delete(f"/api/v1/messages/{gone['id']}", **{"for": "everyone"})
    assert r.status_code == 204, r.text

    for role in ("emp_team", "emp_admin", "cand"):
        items = history(world[role], conv_id)
        assert [m["id"] for m in items] == [kept["id"], gone["id"]]
        tomb = items[1]
        assert tomb["deleted"] is True
        assert tomb["body"] == ""
        assert tomb.get("subject") in (None, "")
        assert items[0]["body"] == "Kept"
        last = conversation(world[role], conv_id)["last_message"]
        assert last["id"] == gone["id"]
        assert last["deleted"] is True
        assert last["body"] == ""
        inbox_last = world[role].inbox().json()["items"][0]["last_message"]
        assert (inbox_last["deleted"], inbox_last["body"]) == (True, "")

    with db.read() as s:
        row = s.get_one(Message, gone["id"])
        assert row.body == "Regrettable"
        assert row.subject == "Oops"
        assert row.deleted_at == clock.now()
        assert row.deleted_by_id == user_id(db, "emp_team")
    # Deleting again changes nothing.
    assert emp.delete(f"/api/v1/messages/{gone['id']}", **{"for": "everyone"}).status_code == 204


def test_delete_for_everyone_drops_unread_counts_of_those_who_had_not_read_it(
    world: World,
) -> None:
    """Members who had not read the message lose it from their unread count, exactly once."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp = world["emp_team"]
    sent(emp.send(conv_id, "One"))
    two = sent(emp.send(conv_id, "Two"))
    three = sent(emp.send(conv_id, "Three"))
    # cand read everything; emp_admin read nothing and hid "Three" for themself.
    mark_read(world["cand"], conv_id)
    assert world["emp_admin"].delete(f"/api/v1/messages/{three['id']}").status_code == 204
    assert unread(world["emp_admin"], conv_id) == 2

    assert emp.delete(f"/api/v1/messages/{two['id']}", **{"for": "everyone"}).status_code == 204
    assert unread(world["cand"], conv_id) == 0
    assert unread(world["emp_admin"], conv_id) == 1
    assert unread(emp, conv_id) == 0

    assert emp.delete(f"/api/v1/messages/{three['id']}", **{"for": "everyone"}).status_code == 204
    assert unread(world["emp_admin"], conv_id) == 1
    assert badge(world["emp_admin"]) == {"conversations": 1, "messages": 1}
    assert badge(world["cand"]) == {"conversations": 0, "messages": 0}


# --- read state ---------------------------------------------------------------------------------


def test_mark_read_with_no_body_reads_everything(world: World) -> None:
    """POST .../read with no body marks the whole conversation read."""
    conv_id = start(world["emp_team"], "application", application="app1")
    for i in range(3):
        last = sent(world["emp_team"].send(conv_id, f"m{i}"))
    cand = world["cand"]
    assert unread(cand, conv_id) == 3
    r = mark_read(cand, conv_id)
    assert r.status_code == 200, r.text
    assert r.json()["unread_count"] == 0
    assert r.json()["last_read_message_id"] == last["id"]
    assert unread(cand, conv_id) == 0
    assert badge(cand) == {"conversations": 0, "messages": 0}
    # Only the reader's state moved.
    assert unread(world["emp_admin"], conv_id) == 3
    # An empty object, or an explicit null, also means everything.
    for body in ({}, {"up_to": None}):
        last = sent(world["emp_team"].send(conv_id, "more"))
        r = mark_read(cand, conv_id, body)
        assert r.status_code == 200, r.text
        assert (r.json()["unread_count"], r.json()["last_read_message_id"]) == (0, last["id"])


def test_mark_read_up_to_a_message(world: World) -> None:
    """Reading up to a message leaves exactly the later ones unread."""
    conv_id = start(world["emp_team"], "application", application="app1")
    ids = [sent(world["emp_team"].send(conv_id, f"m{i}"))["id"] for i in range(5)]
    cand = world["cand"]
    r = mark_read(cand, conv_id, {"up_to": ids[1]})
    assert r.status_code == 200, r.text
    assert r.json()["unread_count"] == 3
    assert r.json()["last_read_message_id"] == ids[1]
    assert unread(cand, conv_id) == 3
    assert badge(cand) == {"conversations": 1, "messages": 3}
    r = mark_read(cand, conv_id, {"up_to": ids[3]})
    assert r.json()["unread_count"] == 1
    r = mark_read(cand, conv_id, {"up_to": ids[4]})
    assert r.json()["unread_count"] == 0


def test_mark_read_up_to_skips_my_own_and_deleted_messages(world: World) -> None:
    """The count after a partial read ignores my own messages and tombstones."""
    conv_id = start(world["emp_team"], "application", application="app1")
    emp, cand = world["emp_team"], world["cand"]
    first = sent(emp.send(conv_id, "a"))
    sent(cand.send(conv_id, "mine"))  # also reads "a"
    sent(emp.send(conv_id, "b"))
    gone = sent(emp.send(conv_id, "c"))
    sent(emp.send(conv_id, "d"))
    assert unread(cand, conv_id) == 3
    assert emp.delete(f"/api/v1/messages/{gone['id']}", **{"for": "everyone"}).status_code == 204
    assert unread(cand, conv_id) == 2
    r = mark_read(cand, conv_id, {"up_to": first["id"]})  # behind the marker: nothing moves
    assert r.json()["unread_count"] == 2


def test_mark_read_up_to_another_conversations_message_is_422(world: World) -> None:
    """``up_to`` must name a message of this conversation."""
    conv_id = start(world["emp_team"], "application", application="app1")
    other = start(world["emp_team"], "case", application="app1")
    sent(world["emp_team"].send(conv_id, "here"))
    elsewhere = sent(world["emp_team"].send(other, "there"))
    cand = world["cand"]
    assert_error(mark_read(cand, conv_id, {"up_to": elsewhere["id"]}), 422, fields={"up_to"})
    assert_error(mark_read(cand, conv_id, {"up_to": elsewhere["id"] + 100}), 422, fields={"up_to"})
    assert_error(mark_read(cand, conv_id, {"up_to": "latest"}), 422, fields={"up_to"})
    assert unread(cand, conv_id) == 1


def test_read_never_moves_backwards(world: World) -> None:
    """Marking read up to an earlier message after reading further keeps the later marker."""
    conv_id = start(world["emp_team"], "application", application="app1")
    ids = [sent(world["emp_team"].send(conv_id, f"m{i}"))["id"] for i in range(3)]
    cand = world["cand"]
    mark_read(cand, conv_id)
    r = mark_read(cand, conv_id, {"up_to": ids[0]})
    assert r.status_code == 200, r.text
    assert r.json()["last_read_message_id"] == ids[2]
    assert r.json()["unread_count"] == 0
    assert unread(cand, conv_id) == 0
    # And a new message after that counts as one unread, not more.
    sent(world["emp_team"].send(conv_id, "m3"))
    assert unread(cand, conv_id) == 1


def test_sending_marks_the_senders_conversation_read(world: World) -> None:
    """Writing into a conversation means having read it: the sender's unread count is zero."""
    conv_id = start(world["emp_team"], "application", application="app1")
    for i in range(3):
        sent(world["emp_team"].send(conv_id, f"m{i}"))
    cand = world["cand"]
    assert unread(cand, conv_id) == 3
    reply = sent(cand.send(conv_id, "Thanks!"))
    conv = conversation(cand, conv_id)
    assert conv["unread_count"] == 0
    assert conv["last_read_message_id"] == reply["id"]
    assert badge(cand) == {"conversations": 0, "messages": 0}
    assert unread(world["emp_team"], conv_id) == 1
    assert unread(world["emp_admin"], conv_id) == 4
