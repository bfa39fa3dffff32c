"""Errors on our pages are pages: a person who followed a stale link or sent a bad form reads
what went wrong in words, with a way back, instead of the API's JSON."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from jobchat.errors import AppError
from jobchat.web.pages import same_site_referrer
from jobchat.web.templating import render
from jobchat.web.viewer import SignInRequired

_TITLES = {
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    405: "Not found",
    409: "That did not work",
    413: "Too long",
    415: "That type of file cannot be sent",
    422: "Please check what you entered",
    429: "Slow down",
    503: "Try again in a moment",
}
# Not pages: the API and the machine endpoints keep their JSON (or TwiML) answers.
_MACHINE = ("/api/", "/openapi.json", "/docs", "/redoc", "/static/", "/metrics")


def page_error(
    request: Request, status: int, exc: AppError | None, message: str
) -> Response | None:
    path = request.url.path
    # Our own script's requests (fragments) want the JSON error to act on.
    if path.startswith(_MACHINE) or request.headers.get("x-requested-with") == "fetch":
        return None
    hint = ""
    if isinstance(exc, SignInRequired):
        hint = "Your session may have ended. Ask for a new sign-in link."
    elif exc is not None and exc.fields:
        message = exc.message[:1].upper() + exc.message[1:]
    return render(
        "plain.html",
        status,
        title=_TITLES.get(status, "Something went wrong"),
        message=message,
        hint=hint,
        back=same_site_referrer(request) or "/",
    )
