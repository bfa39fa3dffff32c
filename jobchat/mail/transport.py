"""Handing an email to the outside world: SMTP (aiosmtplib), or the log when none is set up."""

from __future__ import annotations

import asyncio
import email.policy
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
        client = aiosmtplib.SMTP(
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
        try:
            async with client:
                if client.is_ehlo_or_helo_needed:
                    try:
                        await client.ehlo()
                    except aiosmtplib.SMTPHeloError:
                        await client.helo()  # a server that knows no ESMTP
                utf8 = not _is_ascii(sender, *recipients)
                if utf8 and not client.supports_extension("smtputf8"):
                    # Retried, as other answers an operator can change by mail server.
                    raise aiosmtplib.SMTPNotSupported(
                        "an address is not ASCII and the mail server takes no SMTPUTF8"
                    )
                eight_bit = client.supports_extension("8bitmime")
                # Written out on a thread: on the event loop, turning a notification into bytes
                # (the email package's generator) held up every request in the process for
                # milliseconds an email (bench/bench_notify_sends.py --in-server).
                flat = await asyncio.to_thread(_flatten, message, utf8=utf8, eight_bit=eight_bit)
                options = [
                    option
                    for option, wanted in (("SMTPUTF8", utf8), ("BODY=8BITMIME", eight_bit))
                    if wanted
                ]
                await client.sendmail(sender, list(recipients), flat, mail_options=options)
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


def _is_ascii(*addresses: str) -> bool:
    return all(address.isascii() for address in addresses)


def _flatten(message: EmailMessage, *, utf8: bool, eight_bit: bool) -> bytes:
    """The message as the server is given it: CRLF line ends, headers in UTF-8 only where the
    server takes SMTPUTF8, bodies re-encoded to 7 bits where it does not take 8BITMIME (what
    aiosmtplib's ``send_message`` does, which cannot be told to do it off the event loop)."""
    policy = email.policy.SMTPUTF8 if utf8 else email.policy.SMTP
    if not eight_bit:
        policy = policy.clone(cte_type="7bit")
    return message.as_bytes(policy=policy)


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
