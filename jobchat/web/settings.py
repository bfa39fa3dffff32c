"""The settings page: the user's time zone and how jobchat tells them of new messages (which
channels, and quiet hours). Whether this very device gets push notifications is the browser's
business (push.js); everything else works as a plain form."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from jobchat.directory.actions import do_update_preferences
from jobchat.directory.models import User
from jobchat.directory.quiet_hours import hhmm_problem
from jobchat.directory.schemas import NotificationsIn, PreferencesIn, QuietHoursIO
from jobchat.errors import Invalid
from jobchat.web.layout import frame
from jobchat.web.templating import render
from jobchat.web.viewer import FormViewer, PageViewer, Viewer

router = APIRouter(include_in_schema=False)

ZONE_PROBLEM = "is not a time zone we know: choose one from the list, for example Europe/Berlin"
# What the time boxes start with when someone has no quiet hours yet.
SUGGESTED_QUIET = ("21:00", "08:00")


@cache
def time_zones() -> list[str]:
    """Every IANA zone tzdata knows, but the legacy aliases (``US/Eastern``, ``EST5EDT``) that
    would only make the list longer."""
    legacy = ("Etc/", "SystemV/", "US/", "posix/", "right/")
    named = (z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(legacy))
    return [*sorted(named), "UTC"]


def _stored(user: User, default: tuple[str, str]) -> dict[str, Any]:
    quiet = user.quiet_start is not None and user.quiet_end is not None
    return {
        "timezone": user.timezone,
        "email_notifications": user.email_notifications,
        "push_notifications": user.push_notifications,
        "sms_notifications": user.sms_notifications,
        "quiet": quiet,
        "quiet_start": user.quiet_start if quiet else default[0],
        "quiet_end": user.quiet_end if quiet else default[1],
    }


def _delay(seconds: float) -> str:
    minutes = round(timedelta(seconds=seconds).total_seconds() / 60)
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _page(
    viewer: Viewer,
    *,
    saved: bool = False,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    settings = viewer.caller.state.settings
    candidate_default = settings.candidate_quiet_window
    default = (
        (candidate_default.start, candidate_default.end) if candidate_default else SUGGESTED_QUIET
    )
    with viewer.read() as (session, user):
        return render(
            "settings.html",
            status,
            zones=time_zones(),
            saved=saved,
            timezone_chosen=user.timezone != "UTC",
            errors=errors or {},
            values=_stored(user, default) | (values or {}),
            candidate_default=candidate_default,
            sms_delay=_delay(settings.notify_sms_delay_seconds),
            **frame(session, user, viewer, "settings"),
        )


@router.get("/settings")
def settings_page(viewer: PageViewer, saved: bool = False) -> HTMLResponse:
    return _page(viewer, saved=saved)


def _time_problems(quiet: bool, start: str, end: str) -> dict[str, str]:
    if not quiet:
        return {}  # the boxes are ignored while quiet hours are off
    problems = {
        name: problem
        for name, value in (("quiet_start", start), ("quiet_end", end))
        if (problem := hhmm_problem(value)) is not None
    }
    if not problems and start == end:
        problems["quiet_end"] = "is the same as the start: choose a later or earlier time"
    return problems


# No max_length on the text fields: a wrong value of any length gets the inline error below,
# not an error page. Starlette caps a form field at 1 MB.
Checkbox = Annotated[str | None, Form(max_length=10)]


@router.post("/settings")
def save_settings(
    viewer: FormViewer,
    timezone: Annotated[str, Form()] = "",
    email_notifications: Checkbox = None,
    push_notifications: Checkbox = None,
    sms_notifications: Checkbox = None,
    quiet: Checkbox = None,
    quiet_start: Annotated[str, Form()] = "",
    quiet_end: Annotated[str, Form()] = "",
) -> Response:
    """Save, then show the page again; a bad value is the page again with the problem beside
    the field and what was entered kept (422), never an error page."""
    start, end = quiet_start.strip(), quiet_end.strip()
    values = {
        "timezone": timezone,
        "email_notifications": email_notifications == "on",
        "push_notifications": push_notifications == "on",
        "sms_notifications": sms_notifications == "on",
        "quiet": quiet == "on",
        "quiet_start": start,
        "quiet_end": end,
    }
    if problems := _time_problems(quiet == "on", start, end):
        return _page(viewer, status=422, errors=problems, values=values)
    try:
        with viewer.write() as (session, user):
            prefs = PreferencesIn(
                timezone=timezone.strip(),
                notifications=NotificationsIn(
                    push=push_notifications == "on",
                    email=email_notifications == "on",
                    # Texts are for candidates; a staff form has no such box to leave unticked.
                    sms=None if user.is_staff else sms_notifications == "on",
                ),
                quiet_hours=QuietHoursIO(start=start, end=end) if quiet == "on" else None,
            )
            do_update_preferences(session, user, prefs)
    except ValidationError:
        return _page(viewer, status=422, errors={"timezone": ZONE_PROBLEM}, values=values)
    except Invalid as exc:
        fields = dict(exc.fields or {"timezone": exc.message})
        if "quiet_hours" in fields:
            fields["quiet_end"] = fields.pop("quiet_hours")
        return _page(viewer, status=422, errors=fields, values=values)
    return RedirectResponse("/settings?saved=true", status_code=303)
