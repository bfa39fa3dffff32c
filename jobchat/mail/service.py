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
from jobchat.files.storage import Storage, configured_storage
from jobchat.mail.addresses import MailKeys
from jobchat.mail.authenticity import Arrival, Authenticity, author_of
from jobchat.mail.inbound import Received, do_receive_email, parse, worth_storing_files
from jobchat.mail.inbound_files import StoredFiles, discard, store_files
from jobchat.mail.outbound import Mailer
from jobchat.mail.transport import MailTransport, transport_for
from jobchat.messages.actions import Limits

log = logging.getLogger("jobchat.mail")


class TryLater(Exception):
    """The mail cannot be judged yet (its DMARC lookups got no answer): the SMTP listener
    answers 451 and the sending server delivers it again later."""


@dataclass
class MailService:
    db: Database
    clock: Clock
    settings: Settings
    keys: MailKeys
    mailer: Mailer
    storage: Storage
    authenticity: Authenticity

    @classmethod
    def create(
        cls,
        db: Database,
        clock: Clock,
        settings: Settings,
        *,
        transport: MailTransport | None = None,
        storage: Storage | None = None,
    ) -> MailService:
        """``storage``: the attachments' (the app's own); by default opened from the
        settings, as the worker process does."""
        keys = MailKeys(
            key=signing_key(db, settings.secret_key, clock.now()), domain=settings.reply_domain
        )
        transport = transport or transport_for(
            settings.smtp_url, timeout=settings.smtp_timeout_seconds
        )
        if storage is None:
            storage = configured_storage(settings)
        mailer = Mailer(
            db=db, clock=clock, settings=settings, keys=keys, transport=transport, storage=storage
        )
        return cls(
            db=db,
            clock=clock,
            settings=settings,
            keys=keys,
            mailer=mailer,
            storage=storage,
            authenticity=Authenticity(settings),
        )

    def receive(
        self,
        raw: bytes,
        *,
        envelope_from: str | None,
        envelope_to: Sequence[str],
        arrival: Arrival,
    ) -> Received:
        """Take in one email (from any thread): decided and recorded in one transaction.

        Its DMARC verdict is found first, with no transaction open (DNS lookups take a while);
        raises TryLater when it cannot be found yet.

        Its files are stored first (a storage cannot roll back with the database), and deleted
        again unless the mail became a message: a duplicate, machine mail, a reply that is
        not let in, or a transaction that failed leaves no file behind."""
        limits = Limits.of(self.settings)
        message = parse(raw)
        author = author_of(message)  # the one reading of From:, for both checks
        verdict = self.authenticity.check(raw, message, arrival, author)
        if verdict.try_later:
            raise TryLater(verdict.reason)
        files = StoredFiles()
        if worth_storing_files(self.db, message, raw, envelope_from):
            files = store_files(self.storage, message, max_bytes=self.settings.max_attachment_bytes)
        received: Received | None = None
        try:
            for attempt in (1, 2):
                try:
                    with self.db.write() as session:
                        received = do_receive_email(
                            session,
                            raw,
                            envelope_from=envelope_from,
                            envelope_to=envelope_to,
                            now=self.clock.now(),
                            keys=self.keys,
                            limits=limits,
                            author=author,
                            files=files,
                            verdict=verdict,
                        )
                    return received
                except IntegrityError:
                    # The same mail arriving twice at the same moment: the second time round it
                    # is found as a duplicate.
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")
        finally:
            if received is None or received.duplicate or received.message_id is None:
                discard(self.storage, files)

    async def receive_async(
        self,
        raw: bytes,
        *,
        envelope_from: str | None,
        envelope_to: Sequence[str],
        arrival: Arrival,
    ) -> Received:
        return await asyncio.to_thread(
            self.receive, raw, envelope_from=envelope_from, envelope_to=envelope_to, arrival=arrival
        )
