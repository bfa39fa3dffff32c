"""The settings page: the user's time zone and email notifications."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jobchat.directory.actions import do_update_preferences
from jobchat.directory.schemas import PreferencesIn
from jobchat.errors import Invalid
from jobchat.web.layout import frame
from jobchat.web.templating import render
from jobchat.web.viewer import FormViewer, PageViewer

router = APIRouter(include_in_schema=False)


@cache
def time_zones() -> list[str]:
    """Every IANA zone tzdata knows, but the legacy aliases (``US/Eastern``, ``EST5EDT``) that
    would only make the list longer."""
    legacy = ("Etc/", "SystemV/", "US/", "posix/", "right/")
    named = (z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(legacy))
    return [*sorted(named), "UTC"]


@router.get("/settings")
def settings_page(viewer: PageViewer, saved: bool = False) -> HTMLResponse:
    with viewer.read() as (session, user):
        return render(
            "settings.html",
            zones=time_zones(),
            saved=saved,
            timezone_chosen=user.timezone != "UTC",
            **frame(session, user, viewer, "settings"),
        )


@router.post("/settings")
def save_settings(
    viewer: FormViewer,
    timezone: Annotated[str, Form(max_length=64)] = "",
    email_notifications: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    try:
        prefs = PreferencesIn(
            timezone=timezone.strip(), email_notifications=email_notifications == "on"
        )
    except ValueError:
        raise Invalid({"timezone": "is not a time zone name, e.g. Europe/Berlin"}) from None
    with viewer.write() as (session, user):
        do_update_preferences(session, user, prefs)
    return RedirectResponse("/settings?saved=true", status_code=303)
