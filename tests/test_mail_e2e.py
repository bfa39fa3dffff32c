"""Email end to end: a real ``jobchat serve`` process sending to a real SMTP server on loopback
(tests/mail_support.py's SmtpSink) and receiving replies on its own inbound SMTP port, spoken to
over HTTP (httpx) and SMTP (smtplib) as a deployment would be.

One server runs per module, on a temporary SQLite file, or, when the suite runs on PostgreSQL
(JOBCHAT_TEST_DATABASE_URL), on that database, migrated and emptied first. Tests that need
another configuration (no in-process worker) or a restart start a new process on the same
database. Every test seeds its own cast (ids and addresses carry a fresh tag) through the
integration API, so tests do not see each other's mail.

Waiting is by polling with a deadline. "Nothing more will be sent" is checked with a barrier
read from the database: no job queued or running, and no member's notification clock set.
Once that holds, the worker has nothing left that could send an email.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from jobchat.config import Settings
from jobchat.conversations.models import Member
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.db.models import Base
from jobchat.jobqueue.models import UNFINISHED, QueuedJob
from tests.mail_support import Delivered, SmtpSink
from tests.support import (
    API_KEY,
    ServedProcess,
    eventually,
    free_port,
    spawn_serve,
    wait_until,
    wait_until_serving,
)

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")
REPLY_DOMAIN = "reply.example.com"
EMAIL_FROM = "Acme Hiring <hiring@example.com>"

MAIL_SETTINGS = {
    "JOBCHAT_EMAIL_FROM": EMAIL_FROM,
    "JOBCHAT_REPLY_DOMAIN": REPLY_DOMAIN,
    "JOBCHAT_NOTIFY_DELAY_SECONDS": "1",
    "JOBCHAT_WORKER_POLL_SECONDS": "0.2",
    "JOBCHAT_JOB_BACKOFF_SECONDS": "0.5",
    "JOBCHAT_JOB_BACKOFF_MAX_SECONDS": "2",
}

# --- the server ---------------------------------------------------------------------------------


class Server(ServedProcess):
    """The module's ``jobchat serve``."""


@dataclass
class Mailroom:
    """The module's mail server (the sink), its database, and the current ``jobchat serve``."""

    database_url: str
    workdir: Path
    sink: SmtpSink
    db: Database
    inbound_port: int = field(default_factory=free_port)
    server: Server | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    launched: int = 0

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
        return env | {
            "PYTHONUNBUFFERED": "1",
            "JOBCHAT_DATABASE_URL": self.database_url,
            "JOBCHAT_API_KEY": API_KEY,
            "JOBCHAT_SEND_RATE_PER_MINUTE": "100000",
            "JOBCHAT_SMTP_URL": self.sink.url,
            "JOBCHAT_SMTP_TIMEOUT_SECONDS": "5",
            "JOBCHAT_INBOUND_SMTP_HOST": "127.0.0.1",
            "JOBCHAT_INBOUND_SMTP_PORT": str(self.inbound_port),
            **MAIL_SETTINGS,
            **{f"JOBCHAT_{key.upper()}": value for key, value in overrides.items()},
        }

    def start(self, **overrides: str) -> Server:
        assert self.server is None, "one server at a time"
        port = free_port()
        while port == self.inbound_port:
            # Free now, but the server is about to take it for its inbound SMTP: a server
            # started on it could not bind its HTTP port (seen in a CI run).
            port = free_port()
        self.launched += 1
        process, log = spawn_serve(
            port,
            self.env(public_url=f"http://127.0.0.1:{port}", **overrides),
            self.workdir,
            f"serve-{self.launched}.log",
        )
        server = Server(port, process, log)
        self.server, self.overrides = server, dict(overrides)
        response = wait_until_serving(process, server.base, server.output)
        assert response.status_code == 200, response.text
        return server

    def stop(self) -> int | None:
        if self.server is None:
            return None
        server, self.server = self.server, None
        return server.terminate()

    def ensure(self, **overrides: str) -> Server:
        """The server running with exactly these overrides (restarted if need be)."""
        if self.server is not None and (
            self.overrides != overrides or self.server.process.poll() is not None
        ):
            self.stop()
        if self.server is None:
            return self.start(**overrides)
        return self.server

    @property
    def http(self) -> httpx.Client:
        assert self.server is not None
        return self.server.http

    def output(self) -> str:
        return self.server.output() if self.server is not None else ""

    # --- the barrier ----------------------------------------------------------------------------

    def pending(self) -> tuple[int, int]:
        """(jobs queued or running, members whose notification clock is set)."""
        with self.db.read() as session:
            jobs = session.scalar(select(func.count()).select_from(QueuedJob).where(UNFINISHED))
            clocks = session.scalar(
                select(func.count()).select_from(Member).where(Member.notify_due_at.is_not(None))
            )
        return int(jobs or 0), int(clocks or 0)

    def settled(self) -> None:
        """Wait until the worker has nothing left that could send an email."""
        wait_until(lambda: self.pending() == (0, 0), "the job queue to empty", log=self.output)

    # --- mail in --------------------------------------------------------------------------------

    def deliver(self, mail: EmailMessage, *, envelope_from: str | None = None) -> str:
        """Hand ``mail`` to the inbound SMTP port: the server's answer to DATA (it answers only
        once the mail is stored and decided)."""
        with _Smtp("127.0.0.1", self.inbound_port, timeout=15) as smtp:
            refused = smtp.send_message(mail, from_addr=envelope_from)
            code, answer = smtp.data_reply
        assert refused == {}, refused
        assert code == 250, (code, answer)
        return answer.decode()


class _Smtp(smtplib.SMTP):
    """smtplib's client, keeping the answer to DATA (send_message does not return it)."""

    data_reply: tuple[int, bytes] = (0, b"")

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_reply = super().data(msg)
        return self.data_reply


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not PG_URL:
        return f"sqlite:///{tmp_path_factory.mktemp('mail-e2e') / 'jobchat.db'}"
    db = Database(Settings(database_url=PG_URL, _env_file=None).sqlalchemy_url)
    try:
        upgrade(db.engine)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        db.dispose()
    return PG_URL


@pytest.fixture(scope="module")
def mailroom(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailroom]:
    sink = SmtpSink().start()
    db = Database(Settings(database_url=database_url, _env_file=None).sqlalchemy_url)
    room = Mailroom(database_url, tmp_path_factory.mktemp("mail-servers"), sink, db)
    try:
        yield room
    finally:
        room.stop()
        sink.stop()
        db.dispose()


@pytest.fixture
def room(mailroom: Mailroom) -> Iterator[Mailroom]:
    """The module's server, as configured by default, and the sink up."""
    if mailroom.sink._controller is None:
        mailroom.sink.start()
    mailroom.ensure()
    yield mailroom
    if mailroom.sink._controller is None:  # a test stopped it and failed
        mailroom.sink.start()


# --- a cast -------------------------------------------------------------------------------------


class Cast:
    """An employer (Acme Health) with a hiring-team member (Tess Team), a candidate (Carla
    Candidate) who applied to its job (Registered Nurse) on 30 December 2025, and the
    application's conversation, started by Tess. Addresses carry a fresh tag."""

    def __init__(self, room: Mailroom) -> None:
        self.room = room
        self.tag = f"m{uuid.uuid4().hex[:10]}"
        self.staff_email = f"{self.tag}-tess@example.com"
        self.candidate_email = f"{self.tag}-carla@example.org"
        put = self.put
        put("organizations", "acme", {"name": "Acme Health", "kind": "employer"})
        put(
            "users",
            "tess",
            {
                "name": "Tess Team",
                "email": self.staff_email,
                "organization": self.ext("acme"),
                "role": "member",
            },
        )
        put("candidates", "carla", {"name": "Carla Candidate", "email": self.candidate_email})
        put(
            "jobs",
            "job",
            {"title": "Registered Nurse", "employer": self.ext("acme"), "team": [self.ext("tess")]},
        )
        put(
            "applications",
            "app",
            {
                "job": self.ext("job"),
                "candidate": self.ext("carla"),
                "stage": "interview",
                "applied_at": "2025-12-30T12:00:00Z",
            },
        )
        self.staff = self.call("POST", f"/api/v1/users/{self.ext('tess')}/tokens", API_KEY)["token"]
        self.candidate = self.call(
            "POST", f"/api/v1/candidates/{self.ext('carla')}/tokens", API_KEY
        )["token"]
        self.conv: int = self.call(
            "POST",
            "/api/v1/conversations",
            self.staff,
            {"kind": "application", "application": self.ext("app")},
        )["id"]

    def ext(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def call(self, method: str, path: str, token: str, json: Any = None) -> dict[str, Any]:
        response = self.room.http.request(
            method, path, json=json, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code in (200, 201), (method, path, response.text)
        body: dict[str, Any] = response.json()
        return body

    def put(self, collection: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/api/v1/{collection}/{self.ext(name)}", API_KEY, body)

    def send(self, body: str, **extra: Any) -> dict[str, Any]:
        return self.call(
            "POST",
            f"/api/v1/conversations/{self.conv}/messages",
            self.staff,
            {"body": body, **extra},
        )

    def send_email(self, body: str, subject: str = "Interview") -> dict[str, Any]:
        sent = self.send(body, channel="email", subject=subject)
        assert [d["status"] for d in sent["deliveries"]] == ["queued"], sent
        return sent

    def thread(self) -> list[dict[str, Any]]:
        """The conversation's messages as Tess sees them (with deliveries), oldest first."""
        page = self.call("GET", f"/api/v1/conversations/{self.conv}/messages?limit=100", self.staff)
        items: list[dict[str, Any]] = page["items"]
        return items

    def delivery(self, message_id: int) -> dict[str, Any]:
        (message,) = [m for m in self.thread() if m["id"] == message_id]
        (delivery,) = message["deliveries"]
        return dict(delivery)

    def mail_to_candidate(self) -> list[Delivered]:
        return self.room.sink.to(self.candidate_email)

    def wait_for_mail(self, count: int) -> list[Delivered]:
        """The candidate's mail once there are ``count`` of them."""

        def enough() -> list[Delivered] | None:
            mails = self.mail_to_candidate()
            return mails if len(mails) >= count else None

        return eventually(enough, f"{count} email(s) to the candidate", log=self.room.output)


def email_of(cast: Cast, message_id: int) -> Delivered:
    """The candidate's email carrying message ``message_id``, once it has arrived."""
    body = next(m["body"] for m in cast.thread() if m["id"] == message_id)
    return eventually(
        lambda: next((d for d in cast.mail_to_candidate() if body in d.text()), None),
        f"the email of message {message_id}",
        log=cast.room.output,
    )


def emailed(cast: Cast, body: str = "Can you do Tuesday at 10?") -> Delivered:
    sent = cast.send_email(body)
    return email_of(cast, sent["id"])


# --- replies, as mail clients write them --------------------------------------------------------

ATTRIBUTION = "On Mon, 5 Jan 2026 at 10:00, Tess Team <hiring@example.com> wrote:"


def _reply_headers(original: EmailMessage, sender: str, domain: str) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = formataddr(("Carla Candidate", sender))
    reply["To"] = original["Reply-To"]
    reply["Subject"] = f"Re: {original['Subject']}"
    reply["Date"] = formatdate(localtime=True)
    reply["Message-ID"] = make_msgid(domain=domain)
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = original["Message-ID"]
    return reply


def gmail_reply(original: Delivered, sender: str, new_lines: list[str]) -> EmailMessage:
    """multipart/alternative: the new text, then "On … wrote:" and the original quoted with
    "> "; the HTML puts the quote in a div.gmail_quote."""
    reply = _reply_headers(original.message, sender, "mail.gmail.com")
    quoted = "\n".join(f"> {line}".rstrip() for line in original.text().splitlines())
    reply.set_content("\n".join(new_lines) + f"\n\n{ATTRIBUTION}\n\n{quoted}\n")
    new_html = "".join(f"<div>{line}</div>" for line in new_lines)
    old_html = "<br>".join(original.text().splitlines())
    reply.add_alternative(
        f'<div dir="ltr">{new_html}</div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 5 Jan 2026 at '
        '10:00, Tess Team &lt;<a href="mailto:hiring@example.com">hiring@example.com</a>&gt; '
        "wrote:<br></div>"
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
        f'rgb(204,204,204);padding-left:1ex">{old_html}</blockquote></div>',
        subtype="html",
    )
    return reply


def outlook_reply(original: Delivered, sender: str) -> EmailMessage:
    """HTML only, as Outlook on the web writes it: the new text in div.elementToProof, then a
    rule, div#divRplyFwdMsg with From/Sent/To/Subject, and the original."""
    reply = _reply_headers(original.message, sender, "EUR01.prod.outlook.com")
    reply["Thread-Topic"] = original.message["Subject"]
    reply["Content-Language"] = "en-GB"
    style = "font-family: Aptos, Calibri, Helvetica, sans-serif; font-size: 12pt; color: #000"
    old_html = "<br>\n".join(original.text().splitlines())
    reply.set_content(
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} '
        '</style></head><body dir="ltr">\n'
        f'<div class="elementToProof" style="{style}">I can\u2019t do Tuesday, sorry.</div>\n'
        f'<div class="elementToProof" style="{style}">Would Wednesday at 2&nbsp;pm work?</div>\n'
        f'<div class="elementToProof" style="{style}"><br></div>\n'
        f'<div class="elementToProof" style="{style}">Carla</div>\n'
        '<hr style="display:inline-block;width:98%" tabindex="-1">\n'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
        'style="font-size:11pt" color="#000000"><b>From:</b> Tess Team '
        "&lt;hiring@example.com&gt;<br>\n<b>Sent:</b> Monday, January 5, 2026 10:00 AM<br>\n"
        f"<b>To:</b> Carla Candidate &lt;{sender}&gt;<br>\n"
        f"<b>Subject:</b> {original.message['Subject']}</font>\n<div>&nbsp;</div>\n</div>\n"
        f'<div><div class="x_elementToProof">{old_html}</div></div>\n</body></html>',
        subtype="html",
    )
    return reply


def posted_by_candidate(cast: Cast, body: str) -> dict[str, Any]:
    """The thread's newest message, which must be the candidate's reply by email."""
    newest = cast.thread()[-1]
    assert newest["author"] == {
        "id": cast.ext("carla"),
        "name": "Carla Candidate",
        "kind": "candidate",
    }
    assert newest["channel"] == "email"
    assert newest["body"] == body
    assert newest["deleted"] is False
    return newest


REPLY_ADDRESS = re.compile(r"^r-(\d+)-(\d+)-[a-z2-7]+@reply\.example\.com$")
MESSAGE_ID = re.compile(r"^<m-\d+-[a-z2-7]+@reply\.example\.com>$")
BOUNCE_ADDRESS = re.compile(r"^b-m-\d+-[a-z2-7]+@reply\.example\.com$")


# --- tests --------------------------------------------------------------------------------------


def test_an_email_message_reaches_the_candidate_and_shows_sent(room: Mailroom) -> None:
    cast = Cast(room)
    sent = cast.send_email("Can you do Tuesday at 10?\nBring your <passport>.")
    (mail,) = cast.wait_for_mail(1)

    assert BOUNCE_ADDRESS.match(mail.mail_from), mail.mail_from  # VERP: this email's own
    assert mail.rcpt_tos == [cast.candidate_email]
    message = mail.message
    assert parseaddr(message["From"]) == ("Tess Team", "hiring@example.com")
    assert parseaddr(message["To"]) == ("Carla Candidate", cast.candidate_email)
    assert message["Subject"] == "Interview"
    reply_to = REPLY_ADDRESS.match(parseaddr(message["Reply-To"])[1])
    assert reply_to is not None, message["Reply-To"]
    assert int(reply_to[1]) == cast.conv
    assert MESSAGE_ID.match(message["Message-ID"]), message["Message-ID"]
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert mail.text() == (
        "Can you do Tuesday at 10?\nBring your <passport>.\n\n-- \n"
        "Tess Team (Acme Health) sent you this message with jobchat. "
        "Reply to this email to answer.\n"
    )
    html = mail.html().replace("\r\n", "\n")
    assert "Can you do Tuesday at 10?<br>\nBring your &lt;passport&gt;." in html
    assert "<passport>" not in html

    wait_until(lambda: cast.delivery(sent["id"])["status"] == "sent", "the delivery sent")
    assert cast.delivery(sent["id"]) == {
        "recipient": cast.ext("carla"),
        "channel": "email",
        "status": "sent",
        "until": None,
        "attempts": 1,
        "last_error": None,
        "error_code": None,
    }


def test_a_gmail_reply_lands_in_the_thread_without_its_quote(room: Mailroom) -> None:
    cast = Cast(room)
    original = emailed(cast)
    reply = gmail_reply(
        original,
        cast.candidate_email,
        ["Yes, Tuesday at 10 works for me.", "I will bring my passport."],
    )

    answer = room.deliver(reply, envelope_from=cast.candidate_email)

    assert answer == "2.0.0 Accepted (posted)"
    posted_by_candidate(cast, "Yes, Tuesday at 10 works for me.\nI will bring my passport.")
    # The same mail delivered again (an SMTP retry) is not posted twice.
    assert room.deliver(reply, envelope_from=cast.candidate_email) == "2.0.0 Accepted (posted)"
    assert (
        sum(m["channel"] == "email" and m["author"]["kind"] == "candidate" for m in cast.thread())
        == 1
    )


def test_an_outlook_html_only_reply_lands_as_clean_text(room: Mailroom) -> None:
    cast = Cast(room)
    original = emailed(cast)
    reply = outlook_reply(original, cast.candidate_email)
    assert reply.get_content_type() == "text/html"

    assert room.deliver(reply) == "2.0.0 Accepted (posted)"

    posted_by_candidate(
        cast, "I can\u2019t do Tuesday, sorry.\nWould Wednesday at 2 pm work?\n\nCarla"
    )


def test_spoofed_and_automatic_replies_are_not_posted_and_not_answered(room: Mailroom) -> None:
    cast = Cast(room)
    original = emailed(cast)
    before = cast.thread()

    spoofed = gmail_reply(original, "mallory@example.net", ["Cancel my application."])
    assert room.deliver(spoofed) == "2.0.0 Accepted (wrong_sender)"

    auto = _reply_headers(original.message, cast.candidate_email, "example.org")
    auto.replace_header("Subject", "Automatic reply: Interview")
    auto["Auto-Submitted"] = "auto-replied"
    auto.set_content("I am out of the office until Monday.\n")
    assert room.deliver(auto, envelope_from="") == "2.0.0 Accepted (automatic)"

    assert cast.thread() == before
    room.settled()
    assert [d.message["Message-ID"] for d in cast.mail_to_candidate()] == [
        original.message["Message-ID"]
    ]
    assert room.sink.to(cast.staff_email) == []


def test_an_unread_message_is_notified_once_and_a_reply_to_it_lands(room: Mailroom) -> None:
    cast = Cast(room)
    sent = cast.send("Thanks for applying! Are you free for a call on <Tuesday>?")

    (mail,) = cast.wait_for_mail(1)
    room.settled()
    assert len(cast.mail_to_candidate()) == 1  # one email, however long it stays unread

    message = mail.message
    assert message["From"] == EMAIL_FROM
    assert parseaddr(message["To"]) == ("Carla Candidate", cast.candidate_email)
    assert message["Subject"] == "1 unread message: Registered Nurse · Acme Health"
    assert message["Auto-Submitted"] == "auto-generated"
    reply_to = REPLY_ADDRESS.match(message["Reply-To"])
    assert reply_to is not None and int(reply_to[1]) == cast.conv
    at = datetime.fromisoformat(sent["created_at"])
    when = f"{at:%a} {at.day} {at:%b %Y, %H:%M} UTC"
    text_ = mail.text()
    assert "Hello Carla Candidate," in text_
    assert (
        f"Tess Team (Acme Health), {when}:\n"
        "Thanks for applying! Are you free for a call on <Tuesday>?\n" in text_
    )
    assert "Job: Registered Nurse\n" in text_
    assert "You applied on 30 December 2025.\n" in text_
    assert "Are you free for a call on &lt;Tuesday&gt;?" in mail.html()

    # The sign-in link takes the candidate, signed in, to the conversation.
    assert room.server is not None
    link = re.search(
        rf"Read and reply: ({re.escape(room.server.base)}/login/\S+\?next=/conversations/"
        rf"{cast.conv})\n",
        text_,
    )
    assert link is not None, text_
    with httpx.Client(trust_env=False, timeout=15) as browser:
        signed_in = browser.get(link[1])
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == f"/conversations/{cast.conv}"
        page = browser.get(f"{room.server.base}/conversations/{cast.conv}")
        assert page.status_code == 200, page.text

    reply = gmail_reply(mail, cast.candidate_email, ["Tuesday works, any time after 9."])
    assert room.deliver(reply) == "2.0.0 Accepted (posted)"
    posted_by_candidate(cast, "Tuesday works, any time after 9.")


def test_mail_held_up_by_an_outage_goes_out_once_when_the_server_is_back(room: Mailroom) -> None:
    cast = Cast(room)
    room.sink.stop()
    first = cast.send_email("First: can you do Tuesday at 10?")
    second = cast.send_email("Second: or Wednesday at 2?")

    def retrying() -> list[dict[str, Any]] | None:
        deliveries = [cast.delivery(first["id"]), cast.delivery(second["id"])]
        return deliveries if all(d["attempts"] >= 3 for d in deliveries) else None

    # Attempts fail and back off (0.5 s, 1 s, 2 s, ...): still queued, with the reason.
    for delivery in eventually(retrying, "three failed attempts each", log=room.output):
        assert delivery["status"] == "queued", delivery
        assert delivery["last_error"], delivery
    assert cast.mail_to_candidate() == []

    room.sink.start()  # the same port
    wait_until(
        lambda: all(cast.delivery(m["id"])["status"] == "sent" for m in (first, second)),
        "both deliveries sent",
        log=room.output,
    )
    room.settled()
    mails = cast.mail_to_candidate()
    assert len(mails) == 2
    assert set(Counter(m.message["Message-ID"] for m in mails).values()) == {1}
    assert sorted(m.text().split("\n")[0] for m in mails) == [
        "First: can you do Tuesday at 10?",
        "Second: or Wednesday at 2?",
    ]
    for message in (first, second):
        delivery = cast.delivery(message["id"])
        assert delivery["attempts"] >= 4 and delivery["last_error"] is None, delivery


def test_mail_queued_before_a_restart_goes_out_once_after_it(room: Mailroom) -> None:
    cast = Cast(room)
    room.sink.stop()
    sent = cast.send_email("Sent just before the restart.")
    wait_until(
        lambda: cast.delivery(sent["id"])["attempts"] >= 1, "a failed attempt", log=room.output
    )

    assert room.stop() in (0, -signal.SIGTERM)
    room.sink.start()
    room.start()

    (mail,) = cast.wait_for_mail(1)
    assert mail.text().startswith("Sent just before the restart.\n")
    wait_until(lambda: cast.delivery(sent["id"])["status"] == "sent", "the delivery sent")
    room.settled()
    assert len(cast.mail_to_candidate()) == 1


def test_jobchat_worker_once_sends_what_a_server_without_a_worker_queued(room: Mailroom) -> None:
    room.ensure(run_worker="false")
    cast = Cast(room)
    sent = cast.send_email("Queued with no worker running.")
    delivery = cast.delivery(sent["id"])
    assert (delivery["status"], delivery["attempts"]) == ("queued", 0)

    done = subprocess.run(
        [sys.executable, "-m", "jobchat", "worker", "--once"],
        env=room.env(),
        cwd=room.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.search(r"^ran (\d+) job\(s\); done (\d+), retried 0, failed 0$", done.stdout, re.M)
    assert ran is not None and int(ran[1]) >= 1 and ran[1] == ran[2], done.stdout
    (mail,) = cast.mail_to_candidate()  # sent before the worker exited
    assert mail.text().startswith("Queued with no worker running.\n")
    delivery = cast.delivery(sent["id"])
    assert (delivery["status"], delivery["attempts"]) == ("sent", 1)
