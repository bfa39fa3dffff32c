"""How a thread tells staff that a text waits for the candidate's morning."""

from __future__ import annotations

from datetime import datetime

from jobchat.directory.models import User
from jobchat.localtime import zone
from jobchat.messages.models import Delivery
from jobchat.sms.quiet import single_zone


def _at(moment: datetime, tz_name: str) -> str:
    local = moment.astimezone(zone(tz_name))
    return f"{local:%a %H:%M}"


def held_line(delivery: Delivery, viewer: User) -> str:
    """ "SMS held for quiet hours until Tue 08:00 Carla's time (Mon 23:00 yours)": the
    candidate's morning is what the sender thinks in, their own clock what they plan by. Where
    the candidate's zone is not one (a number spanning several) only the viewer's is given."""
    until = delivery.held_until
    if until is None:
        return "SMS held for quiet hours"
    theirs = single_zone(delivery.recipient)
    mine = _at(until, viewer.timezone)
    if theirs is None:
        return f"SMS held for quiet hours until {mine} your time"
    first_name = delivery.recipient.name.split()[0] if delivery.recipient.name.split() else ""
    whose = f"{first_name}'s time" if first_name else "their time"
    local = _at(until, theirs)
    if local == mine:
        return f"SMS held for quiet hours until {local} ({whose} and yours)"
    return f"SMS held for quiet hours until {local} {whose} ({mine} yours)"
