"""Everything email needs at run time, made once per process: the signing keys, the mailer
(whose jobs the worker runs) and the receiving end shared by the SMTP listener and the webhook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from jobchat.auth.signing import signing_key
from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.mail.addresses import MailKeys
from jobchat.mail.inbound import Received, do_receive_email
from jobchat.mail.outbound import Mailer
from jobchat.mail.transport import MailTransport, transport_for
from jobchat.messages.actions import Limits

log = logging.getLogger("jobchat.mail")


@dataclass
class MailService:
    db: Database
    clock: Clock
    settings: Settings
    keys: MailKeys
    mailer: Mailer

    @classmethod
    def create(
        cls,
        db: Database,
        clock: Clock,
        settings: Settings,
        *,
        transport: MailTransport | None = None,
    ) -> MailService:
        keys = MailKeys(
            key=signing_key(db, settings.secret_key, clock.now()), domain=settings.reply_domain
        )
        transport = transport or transport_for(
            settings.smtp_url, timeout=settings.smtp_timeout_seconds
        )
        mailer = Mailer(db=db, clock=clock, settings=settings, keys=keys, transport=transport)
        return cls(db=db, clock=clock, settings=settings, keys=keys, mailer=mailer)

    def receive(
        self, raw: bytes, *, envelope_from: str | None, envelope_to: Sequence[str]
    ) -> Received:
        """Take in one email (from any thread): decided and recorded in one transaction."""
        limits = Limits.of(self.settings)
        for attempt in (1, 2):
            try:
                with self.db.write() as session:
                    return do_receive_email(
                        session,
                        raw,
                        envelope_from=envelope_from,
                        envelope_to=envelope_to,
                        now=self.clock.now(),
                        keys=self.keys,
                        limits=limits,
                    )
            except IntegrityError:
                # The same mail arriving twice at the same moment: the second time round it is
                # found as a duplicate.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def receive_async(
        self, raw: bytes, *, envelope_from: str | None, envelope_to: Sequence[str]
    ) -> Received:
        return await asyncio.to_thread(
            self.receive, raw, envelope_from=envelope_from, envelope_to=envelope_to
        )
