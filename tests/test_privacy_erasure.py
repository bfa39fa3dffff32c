"""Erasing a candidate: every table seeded, erased, then the whole database (every column of every
table the database itself lists, the search index and any table made outside the models among
them; on SQLite the raw files too) and the storage folder searched for their words.

Two candidates get the same seeding; one is erased, the other must keep everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text
from starlette.websockets import WebSocketDisconnect

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.models import (
    Base,
    BulkMessage,
    BulkRecipient,
    Credential,
    InboundEmail,
    InboundSms,
    Message,
    PushSubscription,
    SentEmail,
    SmsStatusReport,
    Template,
    User,
)
from jobchat.messages.models import Delivery
from jobchat.realtime import codes
from jobchat.sms.consent import do_opt_out_number
from jobchat.webhooks.models import EventType as WebhookEvent
from jobchat.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.files_support import image_bytes, uploaded
from tests.mail_support import drain, worker_for
from tests.support import API_KEY, Api, As, body, sent, start, user_id

# Tables that name nobody, or only by id (ids are no personal data here: the audit log names
# people by id on purpose), so the seeding need not put a row of a candidate in them. Every
# other table must get one: a table added later without erasure support fails this test.
NAMES_NOBODY = {
    "api_keys": "integration keys",
    "server_secrets": "the server's own keys",
    "event_horizon": "one number",
    # Events wait here only until their writer's commit is done; erasure numbers what waits
    # before it starts, so the events table's checks cover them (tests/test_event_queue.py).
    "event_queue": "events waiting for their number",
    "organizations": "employers and partners",
    "jobs": "jobs",
    "job_partners": "ids",
    "job_team": "staff",
    "audit_log": "ids and counts only (written by the erasure itself)",
    "webhooks": "the integration's endpoints",
}

# Tables the database has beside the models' (made by migrations in SQL of their own): the
# search index (on SQLite an FTS5 table and the shadow tables it keeps its data in) and
# Alembic's version. A new one fails test_the_database_has_no_table_the_search_misses, so that
# someone decides whether it can hold a person (and erasure reaches it).
OUTSIDE_THE_MODELS = {"alembic_version", "message_search"}
FTS_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")


@dataclass
class Person:
    """One seeded candidate: what identifies them and what they wrote."""

    ext: str
    name: str
    email: str
    phone: str
    words: list[str]
    storage_keys: list[str] = field(default_factory=list)

    @property
    def needles(self) -> list[str]:
        return [*self.name.lower().split(), self.email, self.phone, self.phone[2:], *self.words]


ZOE = Person(
    "cand-zq",
    "Zoltana Quibblesworth",
    "zoltana.q@example.org",
    "+14155550177",
    ["xylophonic", "quarkbucket", "flimflammery", "cvzoltfile", "subjzanzi", "schedwomble"],
)
OLA = Person(
    "cand-ob",
    "Olamide Brightwater",
    "olamide.b@example.org",
    "+14155550188",
    ["heliotropic", "mangosteenly", "borborygmus", "cvolafile", "subjoberon", "schedkumquat"],
)


def _cast(api: Api) -> dict[str, As]:
    api.org("acme", "Acme Health", "employer")
    api.org("tbb", "Talent Beyond Boundaries", "source_partner")
    api.org("hireco", "HireCo Recruiting", "agency")
    api.staff("emp", "Tess Team", "acme", role="admin")
    api.staff("sp", "Sam Partner", "tbb")
    api.staff("agent", "Aggie Agent", "hireco")
    api.job("job1", "Registered Nurse", "acme", team=["emp"], partners=["tbb", "hireco"])
    hook = {"url": "https://ats.example.com/hooks", "events": [t.value for t in WebhookEvent]}
    body(api.integration.post("/api/v1/webhooks", hook), 201)
    return {"emp": api.as_staff("emp"), "sp": api.as_staff("sp"), "agent": api.as_staff("agent")}


def seed(api: Api, staff: dict[str, As], db: Database, clock: FrozenClock, p: Person) -> None:
    """``p`` in every table a candidate can reach: through the API where a client can put
    them there, directly (as the mail, SMS and push code does) for what arrives from outside."""
    w1, w2, w3, w4, w5, w6 = p.words
    api.candidate(
        p.ext, p.name, email=p.email, phone=p.phone, sms_consent=True, source_partner="tbb"
    )
    app = f"app-{p.ext}"
    api.application(app, "job1", p.ext, "interview", agency_user="agent")
    me = api.as_candidate(p.ext)
    body(api.integration.post(f"/api/v1/candidates/{p.ext}/login-links", {}), 201)
    emp, sp, agent = staff["emp"], staff["sp"], staff["agent"]
    thread = start(emp, "application", application=app)
    case = start(emp, "case", application=app)
    partner = start(sp, "candidate_partner", candidate=p.ext)
    agency = start(agent, "agency", application=app)

    mine = sent(me.send(thread, f"Hello, I am {p.name}: {w1}"))
    cv = uploaded(me, thread, f"{w4}.txt", f"curriculum {w4} {p.name}".encode())
    photo = uploaded(me, thread, "photo.png", image_bytes("PNG"))
    sent(me.send(thread, f"my {w4} and photo", attachments=[cv["id"], photo["id"]]))
    emailed = sent(emp.send(thread, f"Dear {p.name}, {w2}", channel="email", subject=f"{w5}"))
    texted = sent(emp.send(thread, f"{w3} by text", channel="sms"))
    sent(sp.send(partner, f"About {w2} for {p.name}"))
    sent(agent.send(agency, f"Agency notes {w3}"))
    sent(emp.send(case, f"Case notes {w1}"))
    # hidden_messages, conversation_activity (an end), scheduled_messages
    assert emp.delete(f"/api/v1/messages/{mine['id']}", **{"for": "me"}).status_code == 204
    # An audit entry with the candidate as the actor, from their address.
    assert me.delete(f"/api/v1/messages/{mine['id']}", **{"for": "everyone"}).status_code == 204
    assert emp.post(f"/api/v1/conversations/{case}/end").status_code in (200, 204)
    when = (clock.now() + timedelta(days=1)).isoformat()
    body(emp.send(thread, w6, send_at=when), 202)
    body(
        emp.post(
            "/api/v1/bulk-messages",
            {"applications": [app], "body": "Bulk news for all", "channel": "app", "send_at": when},
        ),
        202,
    )

    cid = user_id(db, p.ext)
    now = clock.now()
    with db.write() as s:
        p.storage_keys = [
            key
            for row in s.execute(
                text("SELECT storage_key, thumbnail_key FROM attachments WHERE uploader_id = :u"),
                {"u": cid},
            )
            for key in row
            if key
        ]
        email_delivery = s.scalars(
            select(Delivery).where(Delivery.message_id == emailed["id"])
        ).one()
        sms_delivery = s.scalars(select(Delivery).where(Delivery.message_id == texted["id"])).one()
        sms_delivery.provider_id = f"SM{p.ext}"
        s.add(
            SentEmail(
                message_id_header=f"<{p.ext}@jobchat>",
                kind="message",
                conversation_id=thread,
                user_id=cid,
                address=p.email,
                delivery_id=email_delivery.id,
                sent_at=now,
            )
        )
        raw = f"From: {p.name} <{p.email}>\r\nSubject: Re: {w5}\r\n\r\n{w1} reply\r\n"
        s.add(
            InboundEmail(
                dedupe_key=f"in-{p.ext}",
                envelope_from=p.email.upper(),
                recipients="reply@reply.example.com",
                from_address=p.email,
                subject=f"Re: {w5}",
                raw=raw.encode(),
                received_at=now,
                outcome="rejected",
                detail=f"unknown sender {p.email}",
            )
        )
        s.add(
            InboundSms(
                provider_sid=f"SMin{p.ext}",
                from_number=p.phone,
                to_number="+15005550006",
                body=f"{w3} reply",
                params={"From": p.phone, "Body": f"{w3} reply"},
                received_at=now,
                outcome="posted",
                candidate_id=cid,
            )
        )
        s.add(SmsStatusReport(provider_sid=f"SM{p.ext}", status="delivered", received_at=now))
        # An attempt at the webhook event of their first message (the ATS answered 500).
        hook_event = s.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.message_id == mine["id"],
                WebhookDelivery.type == WebhookEvent.message_created,
            )
        ).one()
        s.add(
            WebhookAttempt(
                webhook_id=hook_event.webhook_id,
                delivery_id=hook_event.id,
                attempted_at=now,
                status_code=500,
                error="answered 500",
                duration_ms=12,
            )
        )
        credential = s.scalars(select(Credential).where(Credential.user_id == cid)).first()
        s.add(
            PushSubscription(
                user_id=cid,
                endpoint=f"https://push.example.net/{p.ext}",
                p256dh="k" * 20,
                auth="a" * 10,
                created_at=now,
                credential_id=credential.id if credential else None,
            )
        )
        s.flush()
    with db.write() as s:
        # In their own words, as a reply would be: the words must not outlive them.
        do_opt_out_number(s, p.phone, now=now, detail=f"{w1} stop texting me", reason="stop")


def _staff_template(db: Database, clock: FrozenClock) -> None:
    # Candidates cannot write templates; one of staff's, so the table is not empty.
    with db.write() as s:
        staff = s.scalars(select(User).where(User.ext_id == "emp")).one()
        s.add(
            Template(
                organization_id=staff.organization_id,
                author_id=staff.id,
                name="Welcome",
                body="Welcome aboard",
                shared=True,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1").lower()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).lower()
    return str(value).lower()


def database_tables(db: Database) -> list[str]:
    """Every table the database has (not only the models'), as it lists them itself."""
    return sorted(inspect(db.engine).get_table_names())


def database_text(db: Database) -> dict[str, str]:
    """Every column of every table the database has (the models', the search index and its
    shadow tables, any other), each value as text, lowercased."""
    found: dict[str, str] = {}
    with db.read() as s:
        for name in database_tables(db):
            quoted = s.get_bind().dialect.identifier_preparer.quote(name)
            rows = s.execute(text(f"SELECT * FROM {quoted}")).all()
            # The search index's shadow tables count as the index: how its segments are laid
            # out changes as it merges, not what it holds.
            key = "message_search" if name.startswith("message_search_") else name
            cells = "\n".join(_cell_text(v) for row in rows for v in row)
            found[key] = f"{found[key]}\n{cells}" if key in found else cells
    return found


def files_text(database_url: str) -> bytes:
    """SQLite: the database file and its write-ahead log, as bytes (lowercased)."""
    path = Path(database_url.removeprefix("sqlite:///"))
    data = b""
    for name in (path, path.with_name(path.name + "-wal")):
        if name.exists():
            data += name.read_bytes().lower()
    return data


def storage_files(settings: Settings) -> dict[str, bytes]:
    root = Path(settings.storage_url.removeprefix("file://"))
    return {
        str(f.relative_to(root)): f.read_bytes().lower() for f in root.rglob("*") if f.is_file()
    }


def spool_files(settings: Settings) -> dict[str, bytes]:
    """The SMS spool folder (Twilio's webhooks on disk), with what was set aside in it."""
    root = Path(settings.spool_dir)
    return {
        str(f.relative_to(root)): f.read_bytes().lower() for f in root.rglob("*") if f.is_file()
    }


def set_aside_texts(settings: Settings, p: Person) -> None:
    """Texts from ``p`` that the spool set aside for an admin: one that failed to be stored,
    one that could not be read (the database never saw either)."""
    root = Path(settings.spool_dir)
    for folder, name, data in (
        (
            "failed",
            f"00000000000000000001-1-{p.ext}-inbound.json",
            json.dumps(
                {
                    "kind": "inbound",
                    "params": {"From": p.phone, "To": "+15005550006", "Body": f"{p.words[2]}"},
                }
            ),
        ),
        ("unreadable", f"00000000000000000002-1-{p.ext}-inbound.json", f"From={p.phone[1:]}&Bo"),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text(data)


def leaks(person: Person, db: Database, settings: Settings, database_url: str) -> list[str]:
    """Where any of ``person``'s words is still found."""
    where: list[str] = []
    texts = database_text(db)
    raw = files_text(database_url) if db.is_sqlite else b""
    stored = storage_files(settings)
    stored |= {f"spool {name}": data for name, data in spool_files(settings).items()}
    for needle in person.needles:
        where += [f"{table}: {needle}" for table, t in texts.items() if needle in t]
        if needle.encode() in raw:
            where.append(f"database file: {needle}")
        where += [
            f"storage {name}: {needle}" for name, data in stored.items() if needle.encode() in data
        ]
    return where


@pytest.fixture
def seeded(api: Api, db: Database, clock: FrozenClock, settings: Settings) -> dict[str, As]:
    staff = _cast(api)
    seed(api, staff, db, clock, ZOE)
    seed(api, staff, db, clock, OLA)
    _staff_template(db, clock)
    for person in (ZOE, OLA):
        set_aside_texts(settings, person)
    return staff


def erase(api: Api, ext: str) -> dict[str, Any]:
    return body(api.integration.post(f"/api/v1/candidates/{ext}/erase"), 200)


def test_every_table_that_can_name_a_person_is_seeded(seeded: dict[str, As], db: Database) -> None:
    with db.read() as s:
        empty = [
            t.name
            for t in Base.metadata.sorted_tables
            if t.name not in NAMES_NOBODY and not s.scalar(select(func.count()).select_from(t))
        ]
    assert empty == [], "seed these tables (and erase what they hold of a candidate)"


def test_the_database_has_no_table_the_search_misses(db: Database) -> None:
    """Every table is a model's or one of the few made in SQL: the models' list is the one
    test_every_table_that_can_name_a_person_is_seeded checks (the search reads them all)."""
    models = {t.name for t in Base.metadata.sorted_tables}
    others = {
        name
        for name in database_tables(db)
        if name not in models and not name.startswith("message_search_")
    }
    assert others == OUTSIDE_THE_MODELS
    shadows = {n for n in database_tables(db) if n.startswith("message_search_")}
    if db.is_sqlite:
        assert shadows <= {f"message_search{suffix}" for suffix in FTS_SHADOWS}, shadows
    else:
        assert shadows == set()


def test_nothing_of_an_erased_candidate_stays_anywhere_and_others_keep_theirs(
    seeded: dict[str, As],
    api: Api,
    client: TestClient,
    db: Database,
    settings: Settings,
    database_url: str,
) -> None:
    # Before: both are everywhere (so the search below can find what it looks for).
    assert leaks(ZOE, db, settings, database_url)
    before_ola = leaks(OLA, db, settings, database_url)
    worker = worker_for(client.app)  # type: ignore[arg-type]
    out = erase(api, ZOE.ext)
    assert out["candidate"] == ZOE.ext and out["already_erased"] is False
    counts = out["erased"]
    assert counts["messages"] == 7
    assert counts["conversations"] == 4
    assert counts["attachments"] == 2
    assert counts["deliveries"] >= 2
    assert counts["emails"] == 2  # one sent, one received
    assert counts["texts"] == 2  # one received, one status report
    assert counts["scheduled_messages"] == 1
    assert counts["search_entries"] == 7
    assert counts["push_subscriptions"] == 1
    assert counts["credentials"] >= 2
    assert counts["applications"] == 1
    assert counts["jobs"] > 0 and counts["events"] > 0 and counts["webhook_events"] > 0
    drain(worker)

    found = leaks(ZOE, db, settings, database_url)
    assert found == [], "\n".join(found)
    assert not set(ZOE.storage_keys) & set(storage_files(settings))
    # The other candidate keeps every row and file they had.
    assert leaks(OLA, db, settings, database_url) == before_ola
    assert set(OLA.storage_keys) <= set(storage_files(settings))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 7
        assert s.scalars(select(User).where(User.ext_id == ZOE.ext)).first() is None
        bulk_lines = s.scalars(select(BulkRecipient).order_by(BulkRecipient.bulk_id)).all()
        assert [line.status for line in bulk_lines] == ["skipped", "pending"]
        assert s.scalar(select(func.count()).select_from(BulkMessage)) == 2
    # Their own deletion for everyone stays audited, by their id, without their address;
    # the other candidate's keeps its address.
    deletions = body(api.integration.get("/api/v1/audit", action="message.deleted"), 200)
    by = {e["actor"]["id"]: e for e in deletions["items"]}
    assert by[ZOE.ext]["ip"] is None
    assert by[OLA.ext]["ip"] is not None


def test_a_relocation_chat_they_were_in_keeps_nothing_of_them(
    api: Api, db: Database, settings: Settings, database_url: str
) -> None:
    """A job's relocation chat is about the job, not them: it stays for the others, but the
    events that listed its members (each newcomer's copy of member.added carries the
    conversation with every member's name) no longer name them, nor does anything else."""
    staff = _cast(api)
    for p in (ZOE, OLA):
        api.candidate(p.ext, p.name, email=p.email, phone=p.phone, source_partner="tbb")
        api.application(f"app-{p.ext}", "job1", p.ext, "hired")
    emp = staff["emp"]
    chat = start(emp, "job_relocation", job="job1")
    sent(emp.send(chat, "Welcome, both of you"))
    sent(api.as_candidate(ZOE.ext).send(chat, f"Hello all, {ZOE.words[0]} here"))
    sent(api.as_candidate(OLA.ext).send(chat, f"Hi, {OLA.words[0]}"))
    with db.read() as s:
        events = "\n".join(
            f"{row}" for row in s.execute(text("SELECT data, extras FROM events")).all()
        )
    assert ZOE.name in events and OLA.name in events
    before_ola = leaks(OLA, db, settings, database_url)

    out = erase(api, ZOE.ext)
    assert out["erased"]["messages"] == 1 and out["erased"]["conversations"] == 0

    found = leaks(ZOE, db, settings, database_url)
    assert found == [], "\n".join(found)
    assert leaks(OLA, db, settings, database_url) == before_ola
    # The chat stays, for the others, without them.
    conv = body(emp.get(f"/api/v1/conversations/{chat}"), 200)
    assert [m["id"] for m in conv["members"] if m["kind"] == "candidate"] == [OLA.ext]
    shown = body(emp.messages(chat), 200)["items"]
    assert [m["body"] for m in shown] == ["Welcome, both of you", f"Hi, {OLA.words[0]}"]


def test_staff_lose_the_threads_and_their_unread_counts(
    seeded: dict[str, As], api: Api, db: Database
) -> None:
    emp = seeded["emp"]
    before = body(emp.get("/api/v1/unread"), 200)
    inbox = body(emp.inbox(limit=100), 200)["items"]
    assert len(inbox) == 6  # application, case, agency (as admin) for each candidate
    erase(api, ZOE.ext)
    after = body(emp.inbox(limit=100), 200)["items"]
    assert len(after) == 3
    assert all(ZOE.name not in json.dumps(c) for c in after)
    badge = body(emp.get("/api/v1/unread"), 200)
    assert badge["messages"] < before["messages"]
    # The badge matches what is left: the sum over the inbox.
    assert badge["messages"] == sum(c["unread_count"] for c in after)
    # Their pages are told: a member.removed per thread, and nothing else of it.
    with db.read() as s:
        rows = s.execute(
            text(
                "SELECT e.type FROM events e JOIN conversations c ON c.id = e.conversation_id "
                "WHERE c.candidate_id IS NULL AND c.application_id IS NULL"
            )
        ).all()
    assert rows and {r[0] for r in rows} == {"member.removed"}


def test_erasing_twice_answers_zero_counts_and_an_unknown_id_404(
    seeded: dict[str, As], api: Api
) -> None:
    erase(api, ZOE.ext)
    again = erase(api, ZOE.ext)
    assert again["already_erased"] is True
    assert set(again["erased"].values()) == {0}
    r = api.integration.post("/api/v1/candidates/nobody-ever/erase")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_erasure_needs_the_integration_key_and_is_audited(
    seeded: dict[str, As], api: Api, client: TestClient
) -> None:
    r = client.post(f"/api/v1/candidates/{ZOE.ext}/erase")
    assert r.status_code == 401
    r = seeded["emp"].post(f"/api/v1/candidates/{ZOE.ext}/erase")
    assert r.status_code == 403
    out = erase(api, ZOE.ext)
    entries = body(api.integration.get("/api/v1/audit", action="candidate.erased"), 200)["items"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["subject"]["id"] == ZOE.ext
    assert entry["actor"]["type"] == "integration"
    assert entry["details"] == out["erased"]
    assert API_KEY not in json.dumps(entry)


def test_a_later_upsert_makes_a_new_person_and_the_stop_still_holds(
    seeded: dict[str, As], api: Api
) -> None:
    erase(api, ZOE.ext)
    again = api.candidate(ZOE.ext, "Zoe New", phone=ZOE.phone, sms_consent=True)
    assert again["name"] == "Zoe New"
    # Their number texted STOP before the erasure: the ATS's consent does not override it.
    assert again["sms_consent"] is False
    me = api.as_candidate(ZOE.ext)
    assert body(me.inbox(), 200)["items"] == []
    # The same application id again is a new application with a new thread; the emptied
    # threads are no one's and nothing's (a change of the job does not reach them).
    api.application(f"app-{ZOE.ext}", "job1", ZOE.ext, "interview")
    thread = start(seeded["emp"], "application", application=f"app-{ZOE.ext}")
    assert [c["id"] for c in body(me.inbox(), 200)["items"]] == [thread]
    assert body(me.messages(thread), 200)["items"] == []
    api.job("job1", "Registered Nurse", "acme", team=[], partners=["tbb"])
    assert len(body(seeded["emp"].inbox(limit=100), 200)["items"]) == 4


def _read_until_closed(ws: Any) -> None:
    while True:
        ws.receive_json()


def _ready(ws: Any) -> None:
    while ws.receive_json()["type"] != "ready":
        pass


def test_open_pages_drop_the_threads_and_the_candidate_is_signed_out(
    api: Api, client: TestClient
) -> None:
    staff = _cast(api)
    api.candidate("quick", "Quentin Quick", source_partner="tbb")
    api.application("app-quick", "job1", "quick", "interview", agency_user="agent")
    emp = staff["emp"]
    threads = {
        start(emp, "application", application="app-quick"),
        start(emp, "case", application="app-quick"),
        start(emp, "agency", application="app-quick"),
    }
    me = api.as_candidate("quick")
    sent(me.send(min(threads), "Hello from Quentin"))
    token = emp.headers["Authorization"].removeprefix("Bearer ")
    mine = me.headers["Authorization"].removeprefix("Bearer ")
    with (
        client.websocket_connect(f"/api/v1/events?token={token}") as ws,
        client.websocket_connect(f"/api/v1/events?token={mine}") as theirs,
    ):
        _ready(ws)
        _ready(theirs)
        erase(api, "quick")
        removed: set[int] = set()
        while removed != threads:
            frame = ws.receive_json()
            # The candidate came and went; a heartbeat comes whenever its slot does.
            if frame["type"] in ("presence", "heartbeat"):
                continue
            # Nothing else of the threads: no message, no name of theirs.
            assert frame["type"] == "member.removed", frame
            assert frame["data"]["member"]["id"] == "emp"
            removed.add(frame["conversation"])
        with pytest.raises(WebSocketDisconnect) as closed:
            _read_until_closed(theirs)
        assert closed.value.code == codes.ACCESS_ENDED
    assert me.get("/api/v1/me").status_code == 401
