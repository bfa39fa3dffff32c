"""The inbound SMTP listener (aiosmtpd), run by ``jobchat serve`` on the server's event loop
when JOBCHAT_INBOUND_SMTP_PORT is set. Point the reply domain's MX (or a relay) at it.

Mail is accepted ("250") only once it is stored: if the database is away, or the DNS does not
answer the sender's DMARC lookups, the sender is told to try again later ("451"), as every mail
server retries, so nothing is lost. A mail refused by its domain's DMARC policy is stored too
(outcome dmarc_fail), and answered "550 5.7.1": the sending server then bounces it, so someone
whose genuine reply did not pass learns it did not land (a forger learns nothing they could
not read in the domain's published policy). The peer's address and HELO name go with the
mail: for SPF, and to tell a trusted relay (JOBCHAT_MAIL_TRUSTED_RELAYS) from the internet.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import SMTP, Envelope, Session

from jobchat.mail.models import InboundOutcome
from jobchat.mail.service import MailService, TryLater

log = logging.getLogger("jobchat.mail")


class InboundHandler:
    def __init__(self, service: MailService) -> None:
        self.service = service

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        # Only our reply domain: this is not a relay.
        if not self.service.keys.is_ours(address):
            return "550 5.7.1 Relaying denied: this server takes mail for its reply domain only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw or "").encode("utf-8", "surrogateescape")
        mail_from = envelope.mail_from if envelope.mail_from not in (None, "<>") else ""
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else None
        helo = session.host_name if isinstance(session.host_name, str) else None
        arrival = self.service.authenticity.over_smtp(str(peer) if peer else None, helo, mail_from)
        try:
            received = await self.service.receive_async(
                raw, envelope_from=mail_from, envelope_to=list(envelope.rcpt_tos), arrival=arrival
            )
        except TryLater as exc:
            log.warning("inbound email from %s deferred: %s", envelope.mail_from, exc)
            return "451 4.7.5 Cannot check the sender's DMARC just now; please try again later"
        except Exception:
            log.exception("inbound email from %s could not be stored", envelope.mail_from)
            return "451 4.3.0 Temporary failure; please try again later"
        if received.outcome is InboundOutcome.dmarc_fail:
            # "Delivery not authorized, message refused" (RFC 3463 X.7.1), as the large
            # receivers answer a DMARC policy rejection; the sending server bounces it.
            return "550 5.7.1 Rejected by the DMARC policy of the sender's domain"
        return f"250 2.0.0 Accepted ({received.outcome})"


async def start_smtp_server(
    service: MailService, host: str, port: int, *, max_bytes: int
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    handler = InboundHandler(service)
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname=service.settings.reply_domain,
            loop=loop,
        ),
        host=host,
        port=port,
    )
    log.info("receiving email over SMTP on %s:%s", host, port)
    return server
