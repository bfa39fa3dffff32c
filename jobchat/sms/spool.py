"""Twilio's webhooks, kept on disk before the database is asked to take them.

Twilio does not retry an incoming-message webhook that is answered 5xx or not answered in time:
it logs error 11200 and calls the number's fallback URL once, if one is set. A text that met a
busy or unreachable database would be lost for good. So each signed webhook is first written to a
file in the spool folder (``JOBCHAT_SPOOL_DIR``, one per deployment, shared by its processes):
written whole to a temporary name, fsynced, renamed into place, the folder fsynced. Only then is
it stored in the database, and the file removed once that committed. What the database could not
take now, ``SpoolIngester`` takes as soon as it can; a file left by a process that died is taken
by the next one to look. Taking a file twice is harmless: a text is stored once per MessageSid,
and a status report applied twice changes nothing (statuses only move forward).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jobchat.clock import Clock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.failures import is_outage
from jobchat.errors import AppError
from jobchat.messages.actions import Limits
from jobchat.sms.identity import DEFAULT_NAME, SenderSettings
from jobchat.sms.inbound import do_receive_sms, do_record_sms_status

log = logging.getLogger("jobchat.sms")

Kind = Literal["inbound", "status"]

# How soon the ingester looks again while files wait (doubling up to the longest), and how often
# it looks when none did (files another process or an earlier run left).
RETRY_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
IDLE_SECONDS = 10.0
# A file that fails this many times for a reason of its own (not the database's) is set aside in
# failed/ for an admin, so that it neither blocks nor slows the files behind it.
MAX_FILE_ATTEMPTS = 5
# Where files that could not be taken are set aside for an admin, in the spool folder.
FAILED = "failed"
UNREADABLE = "unreadable"
SET_ASIDE = (FAILED, UNREADABLE)


@dataclass(frozen=True)
class Spooled:
    path: Path
    kind: Kind
    params: dict[str, str]


class Spool:
    """The folder of webhooks not yet in the database, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, kind: Kind, params: dict[str, str]) -> Path:
        """Write one webhook durably: once this returns, a crash does not lose it."""
        # Texts and phone numbers: for this service's eyes only.
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Named by arrival time, so that texts are taken in the order they came.
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}-{kind}"
        temporary = self.folder / f".{name}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(json.dumps({"kind": kind, "params": params}).encode())
            file.flush()
            os.fsync(file.fileno())
        final = self.folder / f"{name}.json"
        os.rename(temporary, final)
        _fsync_folder(self.folder)
        return final

    def pending(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.json"))

    def load(self, path: Path) -> Spooled | None:
        """The webhook in ``path``; None if it is gone (taken meanwhile) or unreadable (set
        aside in ``unreadable/`` for an operator, and logged)."""
        try:
            data = json.loads(path.read_bytes())
            kind, params = data["kind"], data["params"]
            if kind not in ("inbound", "status") or not isinstance(params, dict):
                raise ValueError(f"not a spooled webhook: kind {kind!r}")
            return Spooled(path, kind, {str(k): str(v) for k, v in params.items()})
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.folder / UNREADABLE
            aside.mkdir(exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, aside / path.name)
            log.error("spooled webhook %s is unreadable (%s): moved to %s", path, exc, aside)
            return None

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def forget_number(self, number: str) -> int:
        """For an erasure: remove the webhooks set aside for an admin (``failed/``,
        ``unreadable/``) that name ``number`` (with or without its +). They never reach the
        database, where the erasure found the rest of what came from that number; pending ones
        are left to be taken as usual (a STOP among them must still count). How many went."""
        digits = number.removeprefix("+").encode()
        if not digits:
            return 0
        gone = 0
        for folder in (self.folder / name for name in SET_ASIDE):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    if path.is_file() and digits in path.read_bytes():
                        path.unlink(missing_ok=True)
                        gone += 1
                except OSError as exc:
                    log.error("could not remove %s for an erasure: %s", path, exc)
        return gone


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def database_trouble(exc: Exception) -> bool:
    """Busy, locked or unreachable: worth waiting for, and no use trying the next file now.
    Any other error (a value the schema refuses, a fault of ours) is about the one file."""
    return is_outage(exc) or (isinstance(exc, AppError) and exc.status == 503)


class SpoolIngester:
    """Moves spooled webhooks into the database: at once for the webhook that wrote one (its
    TwiML reply needs the outcome), and in the background for what could not go in then."""

    def __init__(
        self,
        spool: Spool,
        db: Database,
        clock: Clock,
        limits: Limits,
        sender: SenderSettings | None = None,
    ) -> None:
        self.spool = spool
        self.db = db
        self.clock = clock
        self.limits = limits
        self.sender = sender if sender is not None else SenderSettings(DEFAULT_NAME, None)
        self._wake = asyncio.Event()
        # Files a webhook is taking itself right now: the background leaves them to it.
        self._in_hand: set[Path] = set()
        self._lock = threading.Lock()
        # Failures of single files for reasons of their own, by file.
        self._failures: dict[Path, int] = {}

    def take(self, path: Path) -> str | None:
        """Store the spooled webhook in ``path`` and remove the file: the TwiML reply to give,
        if any. Raises if the database cannot take it now (the file stays)."""
        with self._lock:
            self._in_hand.add(path)
        try:
            return self._take(path)
        finally:
            with self._lock:
                self._in_hand.discard(path)

    def _take(self, path: Path) -> str | None:
        spooled = self.spool.load(path)
        if spooled is None:
            return None
        reply = self.store(spooled.kind, spooled.params)
        self.spool.remove(path)  # only once committed: a crash before this takes it again
        return reply

    def store(self, kind: Kind, params: dict[str, str]) -> str | None:
        """Store one webhook in the database (straight, when it could not be spooled)."""
        with self.db.write() as session:
            now = self.clock.now()
            if kind == "inbound":
                return do_receive_sms(
                    session, params, now=now, limits=self.limits, sender=self.sender
                ).reply
            do_record_sms_status(session, params, now=now)
            return None

    def take_pending(self) -> int:
        """One pass over the spool, oldest first: how many files are still waiting."""
        pending = self.spool.pending()
        for index, path in enumerate(pending):
            with self._lock:
                if path in self._in_hand:
                    continue  # a webhook (or another pass) is taking it
                self._in_hand.add(path)
            try:
                self._take(path)
                self._failures.pop(path, None)
            except Exception as exc:
                if database_trouble(exc):
                    log.warning("the database cannot take spooled webhooks yet: %s", exc)
                    return len(pending) - index
                self._file_failed(path)
            finally:
                with self._lock:
                    self._in_hand.discard(path)
        return len(self.spool.pending())

    def _file_failed(self, path: Path) -> None:
        """Something about this one file: kept and tried again a few times, then set aside;
        either way the files behind it go on."""
        attempts = self._failures.get(path, 0) + 1
        if attempts < MAX_FILE_ATTEMPTS:
            self._failures[path] = attempts
            log.exception("spooled webhook %s could not be stored (attempt %d)", path, attempts)
            return
        self._failures.pop(path, None)
        aside = self.spool.folder / FAILED
        aside.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, aside / path.name)
        log.exception(
            "spooled webhook %s failed %d times: moved to %s for an admin", path, attempts, aside
        )

    def wake(self) -> None:
        """A webhook left a file behind: look now (call on the event loop)."""
        self._wake.set()

    async def run(self) -> None:
        wait = RETRY_SECONDS
        while True:
            self._wake.clear()
            try:
                left = await asyncio.to_thread(self.take_pending)
            except Exception:
                # The folder itself (unreadable, its disk gone): keep trying, never stop for good.
                log.exception("the SMS spool %s cannot be read", self.spool.folder)
                left = 1
            if left:
                timeout, wait = wait, min(wait * 2, RETRY_MAX_SECONDS)
            else:
                timeout, wait = IDLE_SECONDS, RETRY_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


def spool_ingester(db: Database, clock: Clock, settings: Settings) -> SpoolIngester:
    return SpoolIngester(
        Spool(Path(settings.spool_dir)),
        db,
        clock,
        Limits.of(settings),
        SenderSettings.of(settings),
    )
