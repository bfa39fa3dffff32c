"""The one small interface attachments are kept behind: a local folder, or any S3-compatible
store. Keys are random (``new_key``), never a file's name, so nothing a user typed becomes a
path or an object name."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from jobchat.files.location import LocalLocation, S3Location, parse_storage_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from jobchat.config import Settings

CHUNK = 64 * 1024
_KEY = re.compile(r"[A-Za-z0-9_-]{16,100}")


class Missing(Exception):
    """The storage holds nothing under this key (deleted, or never written)."""


class StorageUnavailable(Exception):
    """The storage could not be used just now (S3 unreachable, a full or read-only disk):
    worth trying again later, not the caller's fault."""


@contextmanager
def _local_failures() -> Iterator[None]:
    try:
        yield
    except (FileNotFoundError, Missing):
        raise
    except OSError as error:
        raise StorageUnavailable(f"the attachment folder cannot be used: {error}") from error


@contextmanager
def _s3_failures(key: str) -> Iterator[None]:
    from boto3.exceptions import Boto3Error  # type: ignore[import-untyped]
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise Missing(key) from None
        raise StorageUnavailable(f"the S3 store refused: {error}") from error
    except (BotoCoreError, Boto3Error) as error:
        raise StorageUnavailable(f"the S3 store cannot be reached: {error}") from error


class Storage(Protocol):
    def put(self, key: str, source: IO[bytes]) -> None:
        """Store ``source`` (read from where it is to its end, in chunks) under ``key``."""

    def read(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """The bytes ``start`` up to (not including) ``stop`` (None: the end), in chunks.
        Raises Missing before the first chunk if there is no such object."""

    def size(self, key: str) -> int:
        """The stored object's size in bytes; raises Missing."""

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens if it is not there (jobs may run twice)."""


def new_key() -> str:
    return secrets.token_urlsafe(24)


def _checked(key: str) -> str:
    # Keys come from new_key(); anything else (a path, a dot) never reaches the disk or S3.
    if not _KEY.fullmatch(key):
        raise ValueError("not a storage key")
    return key


class LocalStorage:
    """A folder: each object one file, written to a temporary name and renamed into place, so
    a reader never sees half a file; readable by this user only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / _checked(key)

    def put(self, key: str, source: IO[bytes]) -> None:
        path = self._path(key)
        with _local_failures():
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".upload-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except OSError as error:
            Path(temp).unlink(missing_ok=True)
            raise StorageUnavailable(f"the attachment folder cannot be written: {error}") from error
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def read(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        try:
            with _local_failures():
                handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise Missing(key) from None
        return _file_chunks(handle, start, stop)

    def size(self, key: str) -> int:
        try:
            with _local_failures():
                return self._path(key).stat().st_size
        except FileNotFoundError:
            raise Missing(key) from None

    def delete(self, key: str) -> None:
        with _local_failures():
            self._path(key).unlink(missing_ok=True)


def _file_chunks(handle: IO[bytes], start: int, stop: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = None if stop is None else max(stop - start, 0)
        while left is None or left > 0:
            chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


class S3Storage:
    """Any S3-compatible store. Uploads go up in parts (boto3's managed transfer), reads come
    down as ranged GETs, streamed: neither holds a whole file in memory."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return self.prefix + _checked(key)

    def put(self, key: str, source: IO[bytes]) -> None:
        with _s3_failures(key):
            self.client.upload_fileobj(source, self.bucket, self._name(key))

    def read(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        if stop is not None and stop <= start:
            return iter(())
        wanted = f"bytes={start}-{'' if stop is None else stop - 1}"
        with _s3_failures(key):
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key), Range=wanted)
        body = answer["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return chunks()

    def size(self, key: str) -> int:
        with _s3_failures(key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success: idempotent as it is.
        with _s3_failures(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))


def configured_storage(settings: Settings) -> Storage:
    """The storage this deployment's settings name (JOBCHAT_STORAGE_URL and
    JOBCHAT_S3_ENDPOINT_URL)."""
    return open_storage(settings.storage_url, endpoint_url=settings.s3_endpoint_url)


def open_storage(url: str, *, endpoint_url: str | None = None) -> Storage:
    """The storage JOBCHAT_STORAGE_URL names (validated already by the settings)."""
    location = parse_storage_url(url)
    if isinstance(location, LocalLocation):
        return LocalStorage(location.folder.absolute())
    assert isinstance(location, S3Location)
    # Only deployments that use S3 pay for importing it.
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    # Bounded waits: a store that does not answer fails the request (503) or the job (retried
    # later) instead of holding a thread for ever.
    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3})
    client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
    return S3Storage(client, location.bucket, location.prefix)
