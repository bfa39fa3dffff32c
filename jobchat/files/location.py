"""Where attachments are kept, parsed from JOBCHAT_STORAGE_URL (stdlib only: the settings
validate it at startup, so a bad URL is a clear error before anything is served)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

# An S3 bucket name (the rules AWS states; other S3-compatible stores accept a subset).
_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


@dataclass(frozen=True)
class LocalLocation:
    folder: Path


@dataclass(frozen=True)
class S3Location:
    bucket: str
    # Ends with "/" unless empty: keys are stored as prefix + key.
    prefix: str


StorageLocation = LocalLocation | S3Location


def parse_storage_url(url: str) -> StorageLocation:
    """``file://./folder`` (relative to the working directory), ``file:///absolute/folder`` or
    ``s3://bucket/optional/prefix``; anything else raises ValueError saying what is expected."""
    parts = urlsplit(url.strip())
    if parts.scheme == "file":
        if parts.query or parts.fragment:
            raise ValueError("a file:// storage URL takes no query or fragment")
        # file://./x keeps "." as the netloc; file:///abs has an empty one.
        if parts.netloc not in ("", ".", "localhost"):
            raise ValueError(
                "use file://./folder (relative to the working directory) or file:///absolute"
            )
        path = unquote(parts.path)
        if parts.netloc == ".":
            path = "." + path
        if path in ("", "/", "./", "."):
            raise ValueError("name a folder: file://./jobchat-files or file:///var/lib/jobchat")
        return LocalLocation(Path(path))
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not (3 <= len(bucket) <= 63) or not set(bucket) <= _BUCKET_CHARS:
            raise ValueError(
                "s3://bucket/prefix needs a bucket name of 3 to 63 lowercase letters, digits, "
                "dots and hyphens"
            )
        if parts.query or parts.fragment:
            raise ValueError("an s3:// storage URL takes no query or fragment")
        prefix = parts.path.strip("/")
        return S3Location(bucket=bucket, prefix=f"{prefix}/" if prefix else "")
    raise ValueError("use file://./folder, file:///absolute/folder or s3://bucket/prefix")
