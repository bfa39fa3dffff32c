"""Quiet hours: the part of a person's day, in their own time zone, when nothing may buzz.

Stored as two "HH:MM" strings on the person. A window may cross midnight (21:00-08:00 is the
candidates' default); start == end is no window at all, which the input refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from jobchat.localtime import zone

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def hhmm_problem(value: str) -> str | None:
    if not _HHMM.match(value):
        return "is not a time of day as HH:MM (24-hour, like 21:00)"
    return None


def _time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class QuietHours:
    start: str  # "HH:MM", in the person's time zone
    end: str

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """``"21:00-08:00"`` → a window; ``"off"`` (or empty) → None. ValueError otherwise."""
        text = text.strip()
        if text.lower() in ("", "off", "none"):
            return None
        start, sep, end = text.partition("-")
        start, end = start.strip(), end.strip()
        if not sep or hhmm_problem(start) or hhmm_problem(end):
            raise ValueError("must be HH:MM-HH:MM (like 21:00-08:00), or off")
        if start == end:
            raise ValueError("starts and ends at the same time: use off for no quiet hours")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"

    def until(self, now: datetime, tz_name: str) -> datetime | None:
        """When the window ``now`` falls in ends (an aware datetime, in UTC), or None when ``now``
        is outside it. Computed in the person's zone, so it follows their daylight saving."""
        tz = zone(tz_name)
        local = now.astimezone(tz)
        start, end = _time(self.start), _time(self.end)
        clock = local.time().replace(tzinfo=None)
        if start < end:
            inside = start <= clock < end
            end_day = local.date()
        else:  # crosses midnight: inside late in the evening or early in the morning
            inside = clock >= start or clock < end
            end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
        if not inside:
            return None
        # A wall time that does not exist that day (a spring-forward gap) resolves forward.
        ends = datetime.combine(end_day, end, tzinfo=tz).astimezone(UTC)
        if ends <= now:
            # An end in the hour the clocks repeat (fall back): now is in the second pass of
            # that hour, and the first occurrence (fold=0) is already behind us; the window
            # ends at the second one. Never an end in the past, which would re-queue forever.
            ends = datetime.combine(end_day, end, tzinfo=tz).replace(fold=1).astimezone(UTC)
        return ends if ends > now else None


def quiet_hours_of(start: str | None, end: str | None) -> QuietHours | None:
    """The window stored as two columns (both set, or neither)."""
    if start is None or end is None:
        return None
    return QuietHours(start, end)
