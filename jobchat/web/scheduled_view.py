"""Scheduled messages as the pages show them: the author's waiting ones under a thread, the
times in the viewer's own zone, and the composer's "Send later" choices turned into a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from jobchat.directory.models import User
from jobchat.errors import Invalid
from jobchat.localtime import zone
from jobchat.scheduling.models import ScheduledMessage
from jobchat.scheduling.queries import pending_in

# The hour the presets ("Tomorrow", "Monday") send at, in the viewer's zone: the start of a
# working day, when a message is read rather than buried under the night's.
MORNING = time(8, 0)
CHOICES = ("now", "tomorrow", "monday", "custom")


@dataclass(frozen=True)
class ScheduledView:
    row: ScheduledMessage
    when: str  # "Tue 6 Jan, 08:00" in the viewer's zone
    local: str  # the same as a datetime-local input's value, "2026-01-06T08:00"


def when_label(moment: datetime, tz_name: str, since: datetime) -> str:
    """'Tue 6 Jan, 08:00', with the year when it is not the year of ``since`` (when it was
    scheduled, or now)."""
    z = zone(tz_name)
    local = moment.astimezone(z)
    year = "" if local.year == since.astimezone(z).year else f" {local.year}"
    return f"{local:%a} {local.day} {local:%b}{year}, {local:%H:%M}"


def local_value(moment: datetime, tz_name: str) -> str:
    return f"{moment.astimezone(zone(tz_name)):%Y-%m-%dT%H:%M}"


def view_of(row: ScheduledMessage, tz_name: str) -> ScheduledView:
    return ScheduledView(
        row, when_label(row.send_at, tz_name, row.created_at), local_value(row.send_at, tz_name)
    )


def scheduled_in_thread(session: Session, me: User, conversation_id: int) -> list[ScheduledView]:
    """What ``me`` has waiting to be posted here (shown to them alone, under the thread)."""
    return [view_of(r, me.timezone) for r in pending_in(session, me.id, conversation_id)]


def chosen_time(choice: str, custom: str, tz_name: str, now: datetime) -> datetime | None:
    """The composer's "Send later" choice as a time (None: send now). The presets are 08:00
    in the viewer's zone, tomorrow or on the next Monday; "custom" is the date and time they
    picked, read in their zone. Whether it is in the future is the scheduling's check."""
    if choice in ("", "now"):
        return None
    z = zone(tz_name)
    today = now.astimezone(z).date()
    if choice == "tomorrow":
        return _at_morning(today + timedelta(days=1), z)
    if choice == "monday":
        return _at_morning(today + timedelta(days=(7 - today.weekday()) % 7 or 7), z)
    if choice == "custom":
        return parse_local(custom, tz_name)
    raise Invalid({"send_later": "choose when to send it"})


def parse_local(value: str, tz_name: str) -> datetime:
    """A datetime-local input's value ("2026-01-06T08:00") in the viewer's zone, as UTC."""
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid({"send_at": "is not a date and time: choose both"}) from None
    if naive.tzinfo is not None:
        raise Invalid({"send_at": "is not a date and time: choose both"})
    try:
        return naive.replace(tzinfo=zone(tz_name)).astimezone(UTC)
    except OverflowError:
        # The first or last day a datetime holds, moved across an offset, leaves its range.
        raise Invalid({"send_at": "must be within the next year"}) from None


def _at_morning(day: date, z: ZoneInfo) -> datetime:
    return datetime.combine(day, MORNING, tzinfo=z).astimezone(UTC)
