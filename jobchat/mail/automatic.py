"""Mail sent by machines: bounces, auto-replies, lists and no-reply senders.

A machine's mail must never be posted into a thread nor answered (RFC 3834 §2: answering an
automatic response makes mail loops). :func:`bounce_of` reads the delivery failures: RFC 3464
delivery status notifications (``multipart/report; report-type=delivery-status``) and the
non-standard bounces some servers still send (Exim's, old Exchange's, qmail's), so the address
that failed can be marked.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses
from typing import Final

from jobchat.mail.replies import decode_bytes, html_to_text

__all__ = ["Bounce", "automatic_reason", "bounce_of"]

REASON_MAX: Final = 500


@dataclass(frozen=True)
class Bounce:
    """A delivery failure: which of our mails, to whom, and whether to stop trying."""

    original_message_ids: tuple[str, ...]  # Message-IDs (<…>, as in headers) of what bounced
    recipients: tuple[str, ...]  # the failed recipient addresses (lowercase)
    permanent: bool  # 5.x.x (or unknown) = permanent; 4.x.x = transient (delayed)
    reason: str  # a short human-readable reason (Diagnostic-Code / Status), <= 500 chars


def automatic_reason(message: EmailMessage, envelope_from: str | None = None) -> str | None:
    """Why this mail was sent by a machine and must never be posted or answered; None for a
    person's mail.

    The reasons, checked in this order: "bounce" (a delivery failure :func:`bounce_of` reads,
    any delivery status report, or an empty envelope sender ``<>``, which only bounces and
    auto-replies use); "report" (another ``multipart/report``: read receipts, abuse reports);
    "auto_submitted" (``Auto-Submitted`` other than "no", RFC 3834); "auto_reply"
    (``X-Autoreply`` / ``X-Autorespond``, from vacation programs); "mailing_list" (``List-Id``
    / ``List-Unsubscribe``); "precedence" (``Precedence: bulk|junk|list|auto_reply``);
    "mailer_daemon" (From mailer-daemon@, postmaster@ or a no-reply address).
    ``X-Auto-Response-Suppress`` says nothing: Outlook puts it on people's mail too.
    ``envelope_from`` is the SMTP MAIL FROM; without it the ``Return-Path`` header stands in.
    """
    report_type = _report_type(message)
    if report_type == "delivery-status" or bounce_of(message, envelope_from) is not None:
        return "bounce"
    if report_type is not None:
        return "report"
    auto_submitted = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto_submitted"
    if _has(message, "X-Autoreply") or _has(message, "X-Autorespond"):
        return "auto_reply"
    if _null_sender(message, envelope_from):
        return "bounce"
    if _has(message, "List-Id") or _has(message, "List-Unsubscribe"):
        return "mailing_list"
    if _header(message, "Precedence").strip().lower() in _BULK:
        return "precedence"
    if any(_NO_REPLY.match(local) or _DAEMON.match(local) for local in _from_locals(message)):
        return "mailer_daemon"
    return None


def bounce_of(message: EmailMessage, envelope_from: str | None = None) -> Bounce | None:
    """The delivery failure this mail reports, or None when it is not a bounce.

    A delivery status notification counts when a recipient's ``Action`` is failed or delayed
    (a report of successful delivery is not a bounce). Otherwise, a mail counts as a bounce when
    it has ``X-Failed-Recipients``, or comes from a mailer daemon or an empty envelope sender
    and reads like a failure (its subject, an SMTP error, the original attached). ``permanent``
    is false when every failure is transient (``Action: delayed`` or a 4.x.x status).
    """
    try:
        return _dsn(message) or _non_standard_bounce(message, envelope_from)
    except Exception:  # an unreadable mail is not a bounce we can act on
        return None


# -- headers -------------------------------------------------------------------------------------

_BULK: Final = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
# Senders that are machines: mailer daemons, postmasters and Exchange's system mailbox
# ("MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@…"), which sends its NDRs.
_DAEMON: Final = re.compile(
    r"^(?:mailer[-_]?daemon|postmaster|microsoftexchange[0-9a-f]{32})(?:[-+.].*)?$", re.I
)
_NO_REPLY: Final = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply)(?:[-+_.].*)?$", re.I
)
_DAEMON_NAME: Final = re.compile(r"^Mail Delivery (?:Subsystem|System|Service)$", re.I)


def _header(message: Message, name: str) -> str:
    """A header's value ("" when absent or unreadable)."""
    try:
        value = message.get(name)
        return "" if value is None else str(value)
    except Exception:  # the email package's header parser can fail on malformed values
        return ""


def _has(message: Message, name: str) -> bool:
    try:
        return name in message
    except Exception:
        return False


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    try:
        return getaddresses(values)
    except Exception:
        return []


def _from_locals(message: Message) -> list[str]:
    pairs = _addresses([_header(message, "From"), _header(message, "Sender")])
    return [address.rpartition("@")[0] or address for _, address in pairs if address]


def _from_daemon(message: Message) -> bool:
    if any(_DAEMON.match(local) for local in _from_locals(message)):
        return True
    return any(
        _DAEMON_NAME.match(name.strip()) for name, _ in _addresses([_header(message, "From")])
    )


def _null_sender(message: Message, envelope_from: str | None) -> bool:
    if envelope_from is not None:
        return envelope_from.strip() in ("", "<>")
    return _has(message, "Return-Path") and _header(message, "Return-Path").strip() in ("", "<>")


def _report_type(message: Message) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    return str(message.get_param("report-type", "") or "").strip().lower()


# -- the parts of a bounce ------------------------------------------------------------------------


def _parts(message: Message) -> Iterator[Message]:
    """The message and its parts, not looking into attached messages (the original)."""
    stack = [message]
    while stack:
        part = stack.pop()
        yield part
        payload = part.get_payload()
        if part.get_content_maintype() == "multipart" and isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))


def _text(part: Message) -> str:
    data = part.get_payload(decode=True)
    return decode_bytes(data, part.get_content_charset()) if isinstance(data, bytes) else ""


def _notification_text(message: Message) -> str:
    """The human-readable text of a bounce (with the original pasted in, when it is)."""
    texts = []
    for part in _parts(message):
        if part.get_content_disposition() == "attachment" or part.get_content_maintype() != "text":
            continue
        if part.get_content_subtype() == "plain":
            texts.append(_text(part))
        elif part.get_content_subtype() == "html" and not texts:
            texts.append(html_to_text(_text(part)))
    return "\n".join(texts)[:200_000]


# -- RFC 3464 delivery status notifications -------------------------------------------------------

_TYPED: Final = re.compile(r"^[\w-]+\s*;\s*")  # "rfc822; ", "smtp; "
_CONTINUED_CODE: Final = re.compile(r"(?<=\S)\s+[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\s+")


def _dsn(message: Message) -> Bounce | None:
    blocks = [
        block
        for part in _parts(message)
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
        for block in _status_blocks(part)
    ]
    failed = [block for block in blocks if _failure(block)]
    if not failed:
        return None
    recipients = [
        _recipient(block.get("final-recipient") or block.get("original-recipient") or "")
        for block in failed
    ]
    first = next((block for block in failed if _permanent(block)), failed[0])
    diagnostic = _TYPED.sub("", first.get("diagnostic-code", ""))
    # A multi-line SMTP reply repeats its codes on each line ("550-5.1.1 … 550 5.1.1 …").
    diagnostic = _CONTINUED_CODE.sub(" ", diagnostic)
    reason = diagnostic or f"Status {first.get('status')}"
    ids = [block["x-original-message-id"] for block in blocks if "x-original-message-id" in block]
    return Bounce(
        original_message_ids=_original_ids(message, ids),
        recipients=_unique(address for address in recipients if address),
        permanent=any(_permanent(block) for block in failed),
        reason=_short(reason),
    )


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a delivery-status part (per message, then one per recipient)."""
    payload = part.get_payload()
    encoding = _header(part, "Content-Transfer-Encoding").strip().lower()
    if isinstance(payload, list) and encoding not in ("base64", "quoted-printable"):
        sources: list[Message] = [block for block in payload if isinstance(block, Message)]
    else:  # the email package splits the encoded text as if it were the fields: decode first
        encoded = "".join(
            block.as_string() if isinstance(block, Message) else str(block)
            for block in (payload if isinstance(payload, list) else [payload])
        ).encode("ascii", "replace")
        try:
            data = (
                base64.b64decode(encoded) if encoding == "base64" else quopri.decodestring(encoded)
            )
        except (binascii.Error, ValueError):
            return []
        text = decode_bytes(data, part.get_content_charset()).replace("\r\n", "\n")
        parser = HeaderParser()
        sources = [parser.parsestr(chunk) for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]
    blocks = []
    for source in sources:
        fields = {name.lower(): " ".join(str(value).split()) for name, value in source.items()}
        if fields:
            blocks.append(fields)
    return blocks


def _failure(block: dict[str, str]) -> bool:
    """A recipient's block reporting a failure (not a delivery, relay or expansion)."""
    action = block.get("action", "").lower()
    if action:
        return action in ("failed", "delayed")
    return block.get("status", "")[:1] in ("4", "5")


def _recipient(field: str) -> str:
    return _TYPED.sub("", field).strip().strip("<>").strip().lower()


def _permanent(block: dict[str, str]) -> bool:
    if block.get("action", "").lower() == "delayed":
        return False
    return not block.get("status", "").startswith("4")


# -- non-standard bounces -------------------------------------------------------------------------

_BOUNCE_SUBJECT: Final = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|has failed|failed)"
    r"|mail delivery failed|failure notice|returned mail|returned to sender|nondeliverable"
    r"|non[- ]?remis|unzustellbar|nicht zustellbar|delayed mail|warning: message .* delayed",
    re.I,
)
_FAILURE_TEXT: Final = re.compile(
    r"could not be delivered|couldn't be delivered|delivery has failed|permanent error"
    r"|not yet been delivered|undeliverable|user unknown|mailbox unavailable|no such user"
    r"|address rejected|recipient not found|delivery to the following recipient"
    r"|\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b",
    re.I,
)
_DELAY_TEXT: Final = re.compile(
    r"\bdelayed\b|not yet been delivered|will (?:retry|continue trying|try again)|still trying"
    r"|temporary (?:failure|error|problem)",
    re.I,
)
_ENHANCED: Final = re.compile(r"(?<![\d.])([45])\.\d{1,3}\.\d{1,3}(?![\d.])")
# A line with an SMTP error: "550 5.1.1 <…>: …", or one starting with a reply code.
_SMTP_LINE: Final = re.compile(
    r"^.*\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b.*$|^[ \t]*[45]\d\d[ -]\S.*$", re.M
)
_ADDRESS: Final = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Where a non-standard bounce pastes the original (Exim, qmail, Postfix without DSN, Exchange).
_COPY_MARKER: Final = re.compile(
    r"^.*(?:copy of the (?:original )?message|below this line is a copy|original message"
    r"|message headers follow|returned message|undelivered message).*$",
    re.I | re.M,
)


def _non_standard_bounce(message: Message, envelope_from: str | None) -> Bounce | None:
    failed_header = [
        address for _, address in _addresses([_header(message, "X-Failed-Recipients")]) if address
    ]
    text = _notification_text(message)
    subject = _header(message, "Subject")
    daemon = _from_daemon(message)
    reads_as_failure = bool(_BOUNCE_SUBJECT.search(subject) or _FAILURE_TEXT.search(text))
    attached = any(
        part.get_content_type() in ("message/rfc822", "text/rfc822-headers")
        for part in _parts(message)
    )
    machine = daemon or _null_sender(message, envelope_from)
    if not (failed_header or (machine and reads_as_failure) or (daemon and attached)):
        return None

    notice = text[: m.start()] if (m := _COPY_MARKER.search(text)) else text
    recipients = failed_header
    if not recipients:
        ours = {address.lower() for _, address in _addresses(_all(message, "From", "To"))}
        recipients = [a for a in _ADDRESS.findall(notice) if a.lower() not in ours]
    if not recipients:
        recipients = [address for _, address in _addresses(_original_recipients(message))]

    status = _ENHANCED.search(notice)
    if status:
        permanent = status.group(1) == "5"
    else:
        permanent = not (_DELAY_TEXT.search(subject) or _DELAY_TEXT.search(notice))
    smtp = _SMTP_LINE.search(notice)
    failure = _FAILURE_TEXT.search(notice)
    if smtp:
        reason = smtp.group(0)
    elif failure:
        reason = notice[notice.rfind("\n", 0, failure.start()) + 1 :].split("\n", 1)[0]
    else:
        reason = subject
    return Bounce(
        original_message_ids=_original_ids(message, []),
        recipients=_unique(address.lower() for address in recipients),
        permanent=permanent,
        reason=_short(reason),
    )


def _all(message: Message, *names: str) -> list[str]:
    return [_header(message, name) for name in names]


def _original_recipients(message: Message) -> list[str]:
    return [
        value for original in _originals(message) for value in _all(original, "To", "Cc") if value
    ]


# -- the original message -------------------------------------------------------------------------

_MESSAGE_ID: Final = re.compile(r"<[^<>\s]+>")
_PASTED_ID: Final = re.compile(r"^[ \t]*Message-ID:[ \t]*\n?[ \t]*(<[^<>\s]+>)", re.I | re.M)


def _originals(message: Message) -> Iterator[Message]:
    """The bounced message's headers: an attached message/rfc822 or text/rfc822-headers."""
    for part in _parts(message):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                yield payload[0]
        elif kind in ("text/rfc822-headers", "message/global-headers"):
            yield HeaderParser().parsestr(_text(part).replace("\r\n", "\n"))


def _original_ids(message: Message, reported: list[str]) -> tuple[str, ...]:
    """The bounced mail's Message-IDs: from the attached original, the report's
    X-Original-Message-ID (Gmail), or the original pasted as text; failing those, the bounce's
    In-Reply-To (Exchange sets it)."""
    ids = [_message_id(_header(original, "Message-ID")) for original in _originals(message)]
    ids += [_message_id(value) for value in reported]
    ids += _PASTED_ID.findall(_notification_text(message))
    if not any(ids):
        ids.append(_message_id(_header(message, "In-Reply-To")))
    return _unique(i for i in ids if i)


def _message_id(value: str) -> str:
    match = _MESSAGE_ID.search(value)
    if match:
        return match.group(0)
    value = value.strip()
    return f"<{value}>" if "@" in value and " " not in value else ""


def _unique(values: Iterator[str] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"
