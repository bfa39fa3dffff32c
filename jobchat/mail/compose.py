"""Building the emails we send, as standard-library MIME: a plain text part and an HTML part.

Everything a person wrote is escaped in the HTML part; nothing here reads the database. Every
header value passes through ``_one_line``: names and subjects stored before control characters
were refused (or arriving in an email we answer) must still make a valid email, never an
exception that fails every email of that sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from html import escape

from jobchat.inputs import fold_controls
from jobchat.mail.policy import POLICY

PREVIEW_CHARS = 300


@dataclass(frozen=True)
class Threading:
    """Headers that keep a conversation's emails together in the recipient's mail client."""

    message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Addressing:
    from_name: str
    from_address: str
    to_name: str
    to_address: str
    reply_to: str | None


@dataclass(frozen=True)
class FileLine:
    """One of a message's files as its email names it: attached, or behind a sign-in link."""

    filename: str
    size: int
    link: str | None = None  # None: the file is a part of this email


@dataclass(frozen=True)
class NotifiedMessage:
    author: str
    organization: str | None
    sent_at: str  # already in the recipient's timezone
    preview: str


@dataclass(frozen=True)
class Notification:
    recipient_name: str
    title: str  # what the conversation is about, as the recipient would name it
    about: Sequence[str]  # lines of context: the job, the date applied, the candidate
    messages: Sequence[NotifiedMessage]
    more: int  # unread messages beyond those listed
    link: str  # signs the recipient in, straight into the conversation
    link_hours: int
    settings_hint: str


# Header values have their control characters folded to spaces: a CR or LF would end the header
# (the email package refuses it), and U+2028, U+0085 and friends are line breaks to it as well.
_one_line = fold_controls


def _headers(
    addressing: Addressing, subject: str, threading: Threading, date: datetime
) -> EmailMessage:
    email = EmailMessage(policy=POLICY)
    email["From"] = formataddr(
        (_one_line(addressing.from_name), _one_line(addressing.from_address))
    )
    email["To"] = formataddr((_one_line(addressing.to_name), _one_line(addressing.to_address)))
    if addressing.reply_to:
        email["Reply-To"] = _one_line(addressing.reply_to)
    email["Subject"] = _one_line(subject) or "(no subject)"
    email["Date"] = format_datetime(date)
    email["Message-ID"] = _one_line(threading.message_id)
    if threading.in_reply_to:
        email["In-Reply-To"] = _one_line(threading.in_reply_to)
    if threading.references:
        email["References"] = " ".join(_one_line(r) for r in threading.references)
    return email


def _html(inner: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        '<body style="font:15px/1.5 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;'
        'color:#1d2433;margin:0;padding:16px">'
        f'<div style="max-width:600px">{inner}</div></body></html>'
    )


def _paragraphs(text: str) -> str:
    """Escaped text with its line breaks kept."""
    return escape(text).replace("\n", "<br>\n")


def _muted(text: str) -> str:
    return f'<p style="color:#5b6578;font-size:13px">{_paragraphs(text)}</p>'


def _preview(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1].rstrip() + "…"


def human_size(size: int) -> str:
    """Bytes as people read them: "820 bytes", "14 KB", "2.5 MB"."""
    if size < 1000:
        return f"{size} bytes"
    if size < 10 * 1000:
        return f"{size / 1000:.1f} KB"
    if size < 1000 * 1000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1000 / 1000:.1f} MB"


def _files_text(files: Sequence[FileLine], link_hours: int) -> str:
    if not files:
        return ""
    attached = [f for f in files if f.link is None]
    linked = [f for f in files if f.link is not None]
    lines: list[str] = []
    if attached:
        lines.append("Attached:")
        lines += [f"- {_one_line(f.filename)} ({human_size(f.size)})" for f in attached]
    if linked:
        noun = "file" if len(linked) == 1 else "files"
        lines.append(f"Too large to attach, the {noun} can be downloaded here:")
        lines += [f"- {_one_line(f.filename)} ({human_size(f.size)}): {f.link}" for f in linked]
        lines.append(f"(Each link signs you in; it works for {link_hours} hours.)")
    return "\n".join(lines)


def _files_html(files: Sequence[FileLine], link_hours: int) -> str:
    if not files:
        return ""
    items = []
    for f in files:
        name = escape(_one_line(f.filename))
        size = escape(human_size(f.size))
        if f.link is None:
            items.append(f"<li>{name} ({size}), attached</li>")
        else:
            items.append(f'<li><a href="{escape(f.link, quote=True)}">{name}</a> ({size})</li>')
    linked = any(f.link is not None for f in files)
    hint = _muted(f"The links sign you in; each works for {link_hours} hours.") if linked else ""
    return f'<p>Files:</p><ul style="padding-left:20px">{"".join(items)}</ul>{hint}'


def message_email(
    *,
    addressing: Addressing,
    subject: str,
    body: str,
    threading: Threading,
    date: datetime,
    footer: str,
    files: Sequence[FileLine] = (),
    link_hours: int = 0,
) -> EmailMessage:
    """An email-channel message: what the sender wrote, from them, replies into the thread.

    ``files`` are named in both alternatives, attached ones as well as linked ones: a reader
    whose client hides attachments still learns they are there. The parts themselves are added
    by jobchat.mail.attachments (the bytes come from the storage, not from here).
    """
    email = _headers(addressing, subject, threading, date)
    files_text = _files_text(files, link_hours)
    text = "\n\n".join(part for part in (body, files_text) if part)
    email.set_content(f"{text}\n\n-- \n{footer}\n")
    body_html = f"<p>{_paragraphs(body)}</p>" if body else ""
    email.add_alternative(
        _html(f"{body_html}{_files_html(files, link_hours)}<hr>{_muted(footer)}"),
        subtype="html",
    )
    return email


def notification_email(
    *, addressing: Addressing, notification: Notification, threading: Threading, date: datetime
) -> EmailMessage:
    n = notification
    count = len(n.messages) + n.more
    noun = "message" if count == 1 else "messages"
    subject = f"{count} unread {noun}: {n.title}"
    email = _headers(addressing, subject, threading, date)
    # An automatic email: vacation responders must not answer it (RFC 3834). A person's reply
    # still lands in the thread.
    email["Auto-Submitted"] = "auto-generated"
    email["X-Auto-Response-Suppress"] = "All"

    text = [f"Hello {n.recipient_name},", "", f"You have {count} unread {noun} in {n.title}."]
    text += [*n.about, ""]
    html = [
        f"<p>Hello {escape(n.recipient_name)},</p>",
        f"<p>You have {count} unread {noun} in <strong>{escape(n.title)}</strong>.</p>",
    ]
    if n.about:
        html.append(_muted("\n".join(n.about)))
    for item in n.messages:
        who = f"{item.author} ({item.organization})" if item.organization else item.author
        text += [f"{who}, {item.sent_at}:", _preview(item.preview), ""]
        html.append(
            '<div style="border-left:3px solid #c9d2e3;padding:4px 12px;margin:12px 0">'
            f"<strong>{escape(who)}</strong> "
            f'<span style="color:#5b6578">{escape(item.sent_at)}</span>'
            f"<br>{_paragraphs(_preview(item.preview))}</div>"
        )
    if n.more:
        text += [f"... and {n.more} more.", ""]
        html.append(f"<p>… and {n.more} more.</p>")
    text += [
        f"Read and reply: {n.link}",
        f"(This link signs you in; it works for {n.link_hours} hours.)",
        "You can also reply to this email.",
        "",
        n.settings_hint,
    ]
    html += [
        f'<p><a href="{escape(n.link, quote=True)}" style="display:inline-block;'
        "background:#2d5bd7;color:#fff;padding:8px 16px;border-radius:6px;"
        'text-decoration:none">Read and reply</a></p>',
        _muted(
            f"The button signs you in; it works for {n.link_hours} hours. "
            f"You can also reply to this email.\n{n.settings_hint}"
        ),
    ]
    email.set_content("\n".join(text) + "\n")
    email.add_alternative(_html("\n".join(html)), subtype="html")
    return email


def closed_notice_email(
    *,
    addressing: Addressing,
    subject: str,
    title: str,
    threading: Threading,
    date: datetime,
) -> EmailMessage:
    """The one answer to a reply into an ended conversation."""
    email = _headers(addressing, subject, threading, date)
    email["Auto-Submitted"] = "auto-replied"
    email["X-Auto-Response-Suppress"] = "All"
    text = (
        f"Your message was not delivered: the conversation {title} has been closed, "
        "so replies to it are no longer accepted.\n\n"
        "If you still need to reach the team, use the contact details you were given.\n"
    )
    email.set_content(text)
    email.add_alternative(_html(f"<p>{_paragraphs(text)}</p>"), subtype="html")
    return email


def reply_subject(subject: str | None) -> str:
    subject = (subject or "").strip()
    if not subject:
        return "Re: your message"
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"
