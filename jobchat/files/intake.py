"""Taking a file in: bounded in size, typed by its content, images re-encoded without their
metadata, stored under random keys. Synchronous and slow (callers run it off the event loop,
and outside the database's write turn)."""

from __future__ import annotations

import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import IO, BinaryIO

import filetype  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from jobchat.files.images import ImageRefused, reencode
from jobchat.files.models import Attachment
from jobchat.files.storage import CHUNK, Storage, new_key

# The allow-list (the contract's): what filetype names each, as stored and served.
DOCUMENT_TYPES = {
    "application/pdf": "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    ),
    "application/msword": "application/msword",
    "application/vnd.oasis.opendocument.text": "application/vnd.oasis.opendocument.text",
    "application/rtf": "application/rtf",
}
IMAGE_TYPES = {
    "image/png": "image/png",
    "image/apng": "image/png",  # an animated PNG is a PNG
    "image/jpeg": "image/jpeg",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
    "image/heic": "image/heic",
}
TEXT_TYPE = "text/plain"  # UTF-8, checked; served with its charset
ALLOWED_NAMES = (
    "PDF, Word (.docx, .doc), OpenDocument text, RTF, plain text, PNG, JPEG, GIF, WebP, HEIC"
)

# Enough for every signature filetype knows (it reads this much of a file itself).
_HEAD = 8192
# Text that a browser or an editor would take for markup or a script: served as text/plain it
# would be harmless to us, but it is not the kind of file a conversation carries, and an HTML
# page named cv.pdf is the classic way to smuggle one in.
_MARKUP = re.compile(
    rb"<\s*(?:!doctype|\?xml|html|head|body|script|svg|iframe|object|embed|meta|link|style|"
    rb"form|img|a\s|math|xsl|template|base)\b|<!--|\bjavascript:",
    re.IGNORECASE,
)
# Control characters other than tab, line feed, form feed and carriage return.
_CONTROLS = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BOM = b"\xef\xbb\xbf"
DEFAULT_FILENAME = "file"


class FileRejected(Exception):
    """The file is not taken: ``code`` is "unsupported_type", "empty" or "too_large";
    ``reason`` says why in words a person can act on."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class StoredFile:
    storage_key: str
    thumbnail_key: str | None
    filename: str
    content_type: str
    size: int
    width: int | None
    height: int | None


def store_file(storage: Storage, source: BinaryIO, *, filename: str, max_bytes: int) -> StoredFile:
    """Check ``source`` and store it (and an image's thumbnail). Raises FileRejected; reads at
    most ``max_bytes`` + 1 bytes of it, a chunk at a time."""
    name = clean_filename(filename)
    with tempfile.TemporaryFile() as spooled:
        size = _copy_bounded(source, spooled, max_bytes)
        if size == 0:
            raise FileRejected("empty", "The file is empty.")
        spooled.seek(0)
        content_type = detect_type(spooled)
        spooled.seek(0)
        if content_type in IMAGE_TYPES.values():
            try:
                image = reencode(spooled, content_type)
            except ImageRefused as refused:
                raise FileRejected(refused.code, refused.reason) from None
            with image.data, image.thumbnail:
                return _put(
                    storage,
                    image.data,
                    image.thumbnail,
                    StoredFile(
                        storage_key=new_key(),
                        thumbnail_key=new_key(),
                        filename=name,
                        content_type=content_type,
                        size=image.size,
                        width=image.width,
                        height=image.height,
                    ),
                )
        return _put(
            storage,
            spooled,
            None,
            StoredFile(
                storage_key=new_key(),
                thumbnail_key=None,
                filename=name,
                content_type=content_type,
                size=size,
                width=None,
                height=None,
            ),
        )


def _put(
    storage: Storage, data: IO[bytes], thumbnail: IO[bytes] | None, stored: StoredFile
) -> StoredFile:
    data.seek(0)
    storage.put(stored.storage_key, data)
    if thumbnail is not None and stored.thumbnail_key is not None:
        try:
            thumbnail.seek(0)
            storage.put(stored.thumbnail_key, thumbnail)
        except BaseException:
            storage.delete(stored.storage_key)
            raise
    return stored


def discard(storage: Storage, stored: StoredFile) -> None:
    """Delete what store_file stored, when the row that was to point at it was not written."""
    storage.delete(stored.storage_key)
    if stored.thumbnail_key is not None:
        storage.delete(stored.thumbnail_key)


def _copy_bounded(source: BinaryIO, target: BinaryIO, max_bytes: int) -> int:
    size = 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise FileRejected(
                "too_large", f"The file is larger than the limit of {max_bytes} bytes."
            )
        target.write(chunk)
    return size


def detect_type(data: BinaryIO) -> str:
    """The allowed type the content is (never the name's or the sender's word for it), or
    FileRejected("unsupported_type")."""
    head = data.read(_HEAD)
    kind = filetype.guess(head)
    if kind is not None:
        mime = str(kind.mime)
        allowed = DOCUMENT_TYPES.get(mime) or IMAGE_TYPES.get(mime)
        if allowed is None:
            raise _unsupported(f"This kind of file ({mime}) cannot be attached.")
        return allowed
    data.seek(0)
    if _is_plain_text(data):
        return TEXT_TYPE
    raise _unsupported("This kind of file cannot be attached.")


def _unsupported(first: str) -> FileRejected:
    return FileRejected("unsupported_type", f"{first} Allowed: {ALLOWED_NAMES}.")


def _is_plain_text(data: BinaryIO) -> bool:
    """UTF-8 (a BOM is fine) without NULs or control characters other than tab, line breaks
    and form feed, and not markup or a script: read in chunks, never whole."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    tail = b""
    while True:
        chunk = data.read(CHUNK)
        if first:
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
            stripped = chunk.lstrip()
            if stripped.startswith((b"<", b"#!")):
                return False
            first = False
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            return False
        if _CONTROLS.search(chunk):
            return False
        # The overlap finds a tag split across two chunks.
        if _MARKUP.search(tail + chunk):
            return False
        if not chunk:
            return True
        tail = chunk[-64:]


def clean_filename(filename: str) -> str:
    """The name shown and offered on download: its last path part only, without control
    characters, at most 255 characters; "file" when nothing is left."""
    name = unicodedata.normalize("NFC", filename or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".").strip()
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        keep_ext = bool(dot) and 0 < len(ext) <= 16
        name = stem[: 255 - len(ext) - 1] + "." + ext if keep_ext else name[:255]
    return name or DEFAULT_FILENAME


def add_attachment(
    session: Session,
    *,
    conversation_id: int,
    uploader_id: int,
    stored: StoredFile,
    now: datetime,
    message_id: int | None = None,
    position: int = 0,
) -> Attachment:
    """The row for a stored file (an action: in the caller's transaction). If that transaction
    does not commit, the caller deletes the stored objects (``discard``)."""
    attachment = Attachment(
        conversation_id=conversation_id,
        uploader_id=uploader_id,
        message_id=message_id,
        position=position,
        filename=stored.filename,
        content_type=stored.content_type,
        size=stored.size,
        storage_key=stored.storage_key,
        thumbnail_key=stored.thumbnail_key,
        width=stored.width,
        height=stored.height,
        created_at=now,
    )
    session.add(attachment)
    session.flush()
    return attachment
