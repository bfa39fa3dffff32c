"""Scheduling a message for later, whichever way it came in (the API or a page's form).

The scheduling work fills this in: ``schedule_as`` checks the caller may post into the
conversation now (and the channel can take it), validates ``send_at`` and stores the scheduled
message with its job, all in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.messages.actions import Limits, Outgoing


def schedule_as(
    session: Session,
    user: User,
    conversation_id: int,
    out: Outgoing,
    *,
    send_at: datetime,
    limits: Limits,
    now: datetime,
) -> object:
    raise NotImplementedError("scheduled send is being built")
