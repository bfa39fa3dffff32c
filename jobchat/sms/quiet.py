"""SMS quiet hours: may we text this candidate now, and if not, from when?

Every text to a candidate asks here: a message sent by SMS (held in its delivery, see
jobchat.messages.actions and jobchat.sms.outbound) and the notification text that announces a
message (jobchat.notifications.texts). The window is JOBCHAT_SMS_QUIET_HOURS (default
21:00-08:00), read in the candidate's local time:

- their time zone, where it was given (by the ATS, or by them in their settings);
- else their phone number's zones, from phonenumbers' data. A number not tied to one place (a
  US toll-free or mobile number without a geographic prefix, an Australian mobile) has several:
  the text waits while it is night in ANY of them, until the latest end, so that it wakes
  nobody;
- a number phonenumbers knows no zone for: its country's zones; failing those (an international
  network's +882), the zones of the default region (JOBCHAT_DEFAULT_PHONE_REGION); failing
  those, the zone stored on the person (UTC unless given).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

from jobchat.directory.models import User
from jobchat.quiet_hours import QuietHours

# With zones far apart (the +1 zones run from Guam to Samoa) the end of one zone's night can
# fall in another's: the end is looked for again from there, a few times, after which the text
# waits for the last end found and the job looks again then (a window too wide for the zones
# to ever share a day holds it on, rather than text anyone at night).
_MAX_STEPS = 8


def sms_hold(
    user: User, now: datetime, window: QuietHours | None, *, default_region: str
) -> datetime | None:
    """When a text to ``user`` may go out (an aware UTC datetime), or None when it may now."""
    if window is None:
        return None
    zones = candidate_zones(user, default_region)
    at = now
    for _ in range(_MAX_STEPS):
        ends = [end for name in zones if (end := window.until(at, name)) is not None]
        if not ends:
            break
        at = max(ends)
    return at if at > now else None


def candidate_zones(user: User, default_region: str | None) -> tuple[str, ...]:
    """The zones whose night holds a text to ``user`` (see the module's docstring). With no
    ``default_region`` there is no falling back to it (for showing a zone, not for holding)."""
    if user.timezone_given:
        return (user.timezone,)
    return _number_zones(user.phone or "", default_region) or (user.timezone,)


def single_zone(user: User) -> str | None:
    """The one zone a hold for ``user`` is reckoned in, for saying "08:00 their time"; None
    where it is several (or only a guess from the default region)."""
    zones = candidate_zones(user, None)
    return zones[0] if len(zones) == 1 and (user.timezone_given or user.phone) else None


@lru_cache(maxsize=4096)
def _number_zones(phone: str, default_region: str | None) -> tuple[str, ...]:
    number: phonenumbers.PhoneNumber | None = None
    if phone:
        try:
            number = phonenumbers.parse(phone, default_region)
        except phonenumbers.NumberParseException:
            number = None
    if number is not None:
        zones = _known(phone_zones.time_zones_for_number(number))
        if not zones and number.country_code:
            zones = _country_zones(number.country_code)
        if zones:
            return zones
    if default_region is None:
        return ()
    return _country_zones(phonenumbers.country_code_for_region(default_region))


def _country_zones(country_code: int) -> tuple[str, ...]:
    """Every zone of a calling code: phonenumbers' table matched on the code alone (a national
    number of 0 matches no longer prefix)."""
    if not country_code:
        return ()
    bare = phonenumbers.PhoneNumber(country_code=country_code, national_number=0)
    return _known(phone_zones.time_zones_for_geographical_number(bare))


def _known(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names this machine's tz database has ("Etc/Unknown" and any too new are dropped)."""
    known = []
    for name in names:
        if name == phone_zones.UNKNOWN_TIMEZONE:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        known.append(name)
    return tuple(known)
