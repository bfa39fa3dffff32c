"""How a stored file goes out: the headers that keep a browser from running it, and byte
ranges (RFC 9110) so that a large PDF or a resumed download fetches only what it needs."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

from jobchat.files.models import Attachment

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# Inside a quoted filename= only these pass; the filename*= form carries the real name.
_ASCII_SAFE = re.compile(r"[^A-Za-z0-9 !#$&+\-.^_`|~(),;=@\[\]{}]")


class Unsatisfiable(Exception):
    """A range wholly past the end of the file: 416."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    stop: int  # exclusive

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range a ``Range`` header asks for, or None for the whole file (no header, a
    form we do not serve, or several ranges: answered whole, which RFC 9110 allows). Raises
    Unsatisfiable for a well-formed range that lies outside the file."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None  # several ranges, another unit, or garbage: the whole file
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        # "-n": the last n bytes.
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(size - length, 0), size)
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    if not last:
        return ByteRange(start, size)
    end = int(last)
    if end < start:
        return None  # invalid, so ignored
    return ByteRange(start, min(end + 1, size))


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="…"; filename*=UTF-8''…``: an ASCII stand-in for old clients and
    the exact name, percent-encoded (RFC 6266, RFC 5987), whatever characters it has."""
    fallback = _ASCII_SAFE.sub("_", filename) or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def etag(key: str) -> str:
    # Stored objects never change (a new upload gets a new key); the key itself stays private.
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def none_match(header: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names ``tag``: ``*``, or one of a comma list of tags,
    compared weakly (``W/"x"`` matches ``"x"``, RFC 9110 13.1.2), each exactly."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def served_type(attachment: Attachment) -> str:
    if attachment.content_type == "text/plain":
        return "text/plain; charset=utf-8"
    return attachment.content_type


SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Should a browser render it after all, it renders in an origin of its own with no script.
    "Content-Security-Policy": "sandbox",
    # Revalidated (ETag) on each use: a file deleted for everyone must stop being shown.
    "Cache-Control": "private, no-cache",
    "Cross-Origin-Resource-Policy": "same-origin",
}
