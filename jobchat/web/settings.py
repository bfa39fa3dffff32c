"""The settings page: the user's time zone and email notifications."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from jobchat.directory.actions import do_update_preferences
from jobchat.directory.schemas import PreferencesIn
from jobchat.errors import Invalid
from jobchat.web.layout import frame
from jobchat.web.templating import render
from jobchat.web.viewer import FormViewer, PageViewer, Viewer

router = APIRouter(include_in_schema=False)

ZONE_PROBLEM = "is not a time zone we know: choose one from the list, for example Europe/Berlin"


@cache
def time_zones() -> list[str]:
    """Every IANA zone tzdata knows, but the legacy aliases (``US/Eastern``, ``EST5EDT``) that
    would only make the list longer."""
    legacy = ("Etc/", "SystemV/", "US/", "posix/", "right/")
    named = (z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(legacy))
    return [*sorted(named), "UTC"]


def _page(
    viewer: Viewer,
    *,
    saved: bool = False,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    with viewer.read() as (session, user):
        entered = {"timezone": user.timezone, "email_notifications": user.email_notifications}
        return render(
            "settings.html",
            status,
            zones=time_zones(),
            saved=saved,
            timezone_chosen=user.timezone != "UTC",
            errors=errors or {},
            values=entered | (values or {}),
            **frame(session, user, viewer, "settings"),
        )


@router.get("/settings")
def settings_page(viewer: PageViewer, saved: bool = False) -> HTMLResponse:
    return _page(viewer, saved=saved)


@router.post("/settings")
def save_settings(
    viewer: FormViewer,
    # No max_length here: a wrong value of any length gets the inline error below (from
    # PreferencesIn), not an error page. Starlette caps a form field at 1 MB.
    timezone: Annotated[str, Form()] = "",
    email_notifications: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    """Save, then show the page again; a bad value is the page again with the problem beside
    the field and what was entered kept (422), never an error page."""
    values = {"timezone": timezone, "email_notifications": email_notifications == "on"}
    try:
        prefs = PreferencesIn(
            timezone=timezone.strip(), email_notifications=email_notifications == "on"
        )
        with viewer.write() as (session, user):
            do_update_preferences(session, user, prefs)
    except ValidationError:
        return _page(viewer, status=422, errors={"timezone": ZONE_PROBLEM}, values=values)
    except Invalid as exc:
        fields = exc.fields or {"timezone": exc.message}
        return _page(viewer, status=422, errors=fields, values=values)
    return RedirectResponse("/settings?saved=true", status_code=303)
