"""The files of an inbound email reply: found in the MIME tree, checked and stored as uploads
are (jobchat.files.intake: type by content, the size limit, images without their metadata),
at most ten, and a note for each one left out, so nobody is left thinking a file arrived.

What counts as a file: a part marked ``attachment``, or any part with a filename (a photo a
phone mail app puts inline in the HTML is the candidate's photo all the same), or a leaf that
is neither text nor multipart (an unnamed inline image). Not files: the text/plain and
text/html bodies. A forwarded email (message/rfc822) is one file, not looked into.

The files are stored before the transaction that posts the message (storage is no database:
it cannot roll back), and deleted again by the caller when the mail is not posted after all.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from jobchat.files import intake
from jobchat.files.intake import FileRejected, StoredFile, store_file
from jobchat.files.storage import Storage, StorageUnavailable
from jobchat.inputs import fold_controls

log = logging.getLogger("jobchat.mail")

MAX_FILES = 10  # as a message sent in the API takes
MAX_NAME = 255  # the attachments table's filename column
MAX_NOTE_NAME = 80  # in a note, a longer name is cut


@dataclass(frozen=True)
class IncomingFile:
    filename: str
    data: bytes


def _parts(part: Message) -> Iterator[Message]:
    """Leaves of the MIME tree, in order; a message/* part is one leaf (not looked into)."""
    if part.is_multipart() and part.get_content_maintype() != "message":
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from _parts(child)
        return
    yield part


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # a malformed parameter is a nameless part, not a failed mail
        return None
    if not name:
        return None
    name = fold_controls(str(name)).replace("/", "_").replace("\\", "_").strip(". ")
    return name[:MAX_NAME] or None


def _is_file(part: Message, name: str | None) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment" or name is not None:
        return True
    return part.get_content_maintype() not in ("text", "multipart")


def _data(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else payload
        return inner.as_bytes() if isinstance(inner, Message) else b""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


def _default_name(part: Message, number: int) -> str:
    if part.get_content_maintype() == "message":
        return f"forwarded-{number}.eml"
    subtype = "".join(c for c in part.get_content_subtype() if c.isalnum())[:10] or "bin"
    return f"attachment-{number}.{subtype}"


def files_in(message: EmailMessage) -> list[IncomingFile]:
    """The reply's files, in the order the sender attached them. Empty ones are ignored (as
    an empty upload is refused, and a zero-byte part is no file anyone sent on purpose)."""
    found: list[IncomingFile] = []
    number = 0
    for part in _parts(message):
        name = _filename(part)
        if not _is_file(part, name):
            continue
        number += 1
        data = _data(part)
        if not data:
            continue
        found.append(IncomingFile(name or _default_name(part, number), data))
    return found


def note(filename: str, reason: str) -> str:
    """The line the message gets for a file left out (staff and the sender see it)."""
    name = filename if len(filename) <= MAX_NOTE_NAME else filename[: MAX_NOTE_NAME - 1] + "…"
    return f"[Not attached: {name} — {reason}]"


@dataclass
class StoredFiles:
    """A reply's files once stored: those taken, in order, and a note for each left out."""

    accepted: list[StoredFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# Why a file was refused, as the thread says it (FileRejected's codes).
_REASONS = {
    "unsupported_type": "this type of file is not accepted",
    "too_large": "larger than the limit of {limit}",
    "empty": "the file is empty",
}


def _reason(rejected: FileRejected, max_bytes: int) -> str:
    reason = _REASONS.get(rejected.code)
    if reason is None:
        return rejected.reason.rstrip(".")
    return reason.format(limit=_size(max_bytes))


def _size(limit: int) -> str:
    """A limit as it is usually set: 10 MiB is "10 MB", 64 KiB "64 KB"."""
    if limit >= 1024 * 1024:
        return f"{limit / 1024 / 1024:.3g} MB"
    if limit >= 1024:
        return f"{limit / 1024:.3g} KB"
    return f"{limit} bytes"


def store_files(storage: Storage, message: EmailMessage, *, max_bytes: int) -> StoredFiles:
    """Each of the reply's files through the same checks as an upload, stored when it passes.
    Past the tenth taken, each is left out with a note. Anything the storage raises
    propagates, after what was stored is deleted again (the mail server is told to try later
    and nothing is left behind)."""
    result = StoredFiles()
    try:
        for incoming in files_in(message):
            if len(result.accepted) >= MAX_FILES:
                reason = f"a message takes at most {MAX_FILES} files"
                result.notes.append(note(incoming.filename, reason))
                continue
            try:
                stored = store_file(
                    storage,
                    io.BytesIO(incoming.data),
                    filename=incoming.filename,
                    max_bytes=max_bytes,
                )
            except FileRejected as rejected:
                log.info("inbound file %r not taken: %s", incoming.filename, rejected.code)
                result.notes.append(note(incoming.filename, _reason(rejected, max_bytes)))
                continue
            except StorageUnavailable:
                raise
            except Exception:
                # A file our checks trip over is this file's problem, not the mail's: answering
                # 451/500 would have the mail server retry the same mail forever.
                log.exception("inbound file %r could not be read", incoming.filename)
                result.notes.append(note(incoming.filename, "this file could not be read"))
                continue
            result.accepted.append(stored)
    except BaseException:
        discard(storage, result)
        raise
    return result


def discard(storage: Storage, files: StoredFiles) -> None:
    """Delete stored files no message took. A failure is logged, not raised: the caller is
    already answering (or failing) for the mail, and an orphan costs only space."""
    for stored in files.accepted:
        try:
            intake.discard(storage, stored)
        except Exception:
            log.exception("could not delete the stored file %s", stored.storage_key)
    files.accepted.clear()
