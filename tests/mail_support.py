"""Email test rig: a real SMTP server on loopback (aiosmtpd) that keeps what it receives and can
be taken down, refuse recipients or ask for a password; and a jobs worker driven by the test.
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fastapi import FastAPI

from jobchat.background import build_worker
from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from jobchat.mail.service import MailService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    helo: str | None = None  # the name the client gave in EHLO (or HELO)
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM's (BODY=8BITMIME...)

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        content: str = part.get_content()
        return content.replace("\r\n", "\n")

    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        content: str = part.get_content()
        return content


@dataclass
class _Handler:
    sink: SmtpSink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() in self.sink.refuse:
            return "550 5.1.1 No such user here"
        if self.sink.busy:
            return "451 4.3.2 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        with self.sink.lock:
            self.sink.received.append(
                Delivered(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    raw,
                    session.host_name,
                    list(envelope.mail_options),
                )
            )
        return "250 OK"


@dataclass
class SmtpSink:
    """A mail server on 127.0.0.1 that accepts everything (unless told otherwise)."""

    port: int = field(default_factory=free_port)
    credentials: tuple[str, str] | None = None
    received: list[Delivered] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    busy: bool = False
    logins: list[str] = field(default_factory=list)
    # aiosmtpd's own options: what the server offers (decode_data=True: no 8BITMIME;
    # enable_SMTPUTF8=False: no SMTPUTF8).
    options: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    @property
    def url(self) -> str:
        if self.credentials:
            user, password = self.credentials
            return f"smtp://{user}:{password}@127.0.0.1:{self.port}"
        return f"smtp://127.0.0.1:{self.port}"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = dict(self.options)
        if self.credentials:
            kwargs |= {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Delivered]:
        with self.lock:
            return [d for d in self.received if address in d.rcpt_tos]


def worker_for(app: FastAPI) -> Worker:
    """A worker with the app's own mail service and texter, for the test to drive."""
    mail: MailService = app.state.mail
    return build_worker(mail, texter=app.state.texter, name="test-worker")


def drain(worker: Worker) -> int:
    """Run every due job (and the notification sweep) to the end."""
    return asyncio.run(worker.drain())


# --- in-process: an app under TestClient sending mail to a sink ---------------------------------


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """An SMTP server on loopback for this test (import it into a module as a fixture)."""
    server = SmtpSink().start()
    yield server
    server.stop()


def smtp_settings(settings: Settings, sink: SmtpSink, **extra: Any) -> Settings:
    """``settings`` sending email through ``sink``, from the address the mail tests expect,
    with replies to reply.example.com; ``extra`` sets more."""
    return settings.model_copy(
        update={
            "smtp_url": sink.url,
            "reply_domain": "reply.example.com",
            "email_from": "Acme Hiring <hiring@example.com>",
            **extra,
        }
    )
