"""Writing the audit log: the only writer of ``audit_log``.

Every action that the log lists calls ``record`` in its own transaction, so an entry exists
exactly when the change it reports was committed. Where the change came from (the client's
address) is read from the request's context (``jobchat.ops.requests.client_ip``), not passed
down through every action; work the worker or the command line does has none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jobchat.directory.models import User, UserKind
from jobchat.ops.requests import client_ip
from jobchat.privacy.models import AuditAction, AuditEntry, PartyType


@dataclass(frozen=True)
class Party:
    """One side of an entry: its type, our id, and the id an admin knows it by."""

    type: PartyType
    id: int | None = None
    ref: str | None = None

    @classmethod
    def person(cls, user: User) -> Party:
        kind = PartyType.candidate if user.kind == UserKind.candidate else PartyType.staff
        return cls(kind, user.id, user.ext_id)


SYSTEM = Party(PartyType.system)


def record(
    session: Session,
    action: AuditAction,
    *,
    now: datetime,
    actor: Party | None,
    subject: Party | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        action=action,
        actor_type=actor.type if actor else None,
        actor_id=actor.id if actor else None,
        actor_ref=actor.ref if actor else None,
        subject_type=subject.type if subject else None,
        subject_id=subject.id if subject else None,
        subject_ref=subject.ref if subject else None,
        ip=_address(client_ip.get()),
        at=now,
        details=dict(details or {}),
    )
    session.add(entry)
    return entry


def _address(ip: str | None) -> str | None:
    """The client's address, only if it is one. Behind a proxy that appends to
    X-Forwarded-For (with trusted proxies ``*``) the client writes it: junk or a long value
    is not evidence of anything, and must never make the audited change fail (the column
    holds 64 characters)."""
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        address = ipaddress.IPv6Address(int(address))  # a zone (%eth0) may be any length
    return str(address)
