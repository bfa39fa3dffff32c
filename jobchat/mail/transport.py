"""Handing an email to the outside world: SMTP (aiosmtplib), or the log when none is set up."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from jobchat.jobqueue.worker import PermanentFailure

log = logging.getLogger("jobchat.mail")


class MailTransport(Protocol):
    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> None:
        """Hand the message over; raise PermanentFailure when it can never be delivered, any
        other exception when a later attempt may succeed."""


class InvalidSmtpUrl(ValueError):
    pass


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool  # smtps://: TLS from the first byte; smtp:// uses STARTTLS when offered

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise InvalidSmtpUrl(
                "JOBCHAT_SMTP_URL must look like smtp://user:pass@host:port or smtps://host:465"
            )
        implicit_tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit_tls,
        )


class SmtpTransport:
    def __init__(self, server: SmtpServer, *, timeout: float) -> None:
        self.server = server
        self.timeout = timeout
        # The name this host gives in EHLO: looked up once. Left to aiosmtplib, every email
        # cost a trip to a thread and a resolver call for it (bench/bench_notify_sends.py).
        self._local_hostname: str | None = None

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> None:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=list(recipients),
                hostname=self.server.host,
                port=self.server.port,
                username=self.server.username,
                password=self.server.password,
                use_tls=self.server.implicit_tls,
                # None: STARTTLS when the server offers it, plain when it does not.
                start_tls=None if not self.server.implicit_tls else False,
                timeout=self.timeout,
                local_hostname=self._local_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusals = exc.recipients
            if refusals and all(r.code >= 500 for r in refusals):
                raise PermanentFailure(_describe(refusals[0])) from exc
            raise
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
            # The address does not exist, or the server will never take this message. Other
            # 5xx answers (authentication, sender refused) are our configuration, which an
            # operator can fix: those are retried.
            if exc.code >= 500:
                raise PermanentFailure(_describe(exc)) from exc
            raise


def _describe(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"the mail server refused it: {exc.code} {exc.message}".strip()


class LogTransport:
    """No SMTP server configured: the email is written to the log instead (development)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> None:
        log.info(
            "email not sent (JOBCHAT_SMTP_URL is not set): to %s, subject %r",
            ", ".join(recipients),
            message["Subject"],
        )
        self.sent.append(message)
        del self.sent[:-100]  # keep the last few for a developer poking around, not all


def transport_for(smtp_url: str | None, *, timeout: float) -> MailTransport:
    if not smtp_url:
        return LogTransport()
    return SmtpTransport(SmtpServer.parse(smtp_url), timeout=timeout)
