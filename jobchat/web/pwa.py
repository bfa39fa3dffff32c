"""The installable app: its manifest, its service worker and the page it shows offline.

None of these needs a sign-in: a browser fetches the manifest and the worker without cookies,
and the offline page is cached by the worker, so it must never carry anything of a person.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from jobchat.web.templating import ENV, render, static

router = APIRouter(include_in_schema=False)

NAME = "jobchat"
# app.css: the top bar is --card, the page behind it --bg (light theme; the pages' theme-color
# metas give the dark one, which a manifest cannot).
THEME_COLOR = "#ffffff"
BACKGROUND_COLOR = "#f5f7fa"
ICONS = {
    "icon-192.png": ("192x192", "any"),
    "icon-512.png": ("512x512", "any"),
    "maskable-512.png": ("512x512", "maskable"),
}
# What the worker caches on install: enough to draw the offline page, and the icons a
# notification shows. Never a page of anybody's (see sw.js).
SHELL_ASSETS = (
    "app.css",
    "offline.js",
    "favicon.svg",
    "icons/icon-192.png",
    "icons/badge-96.png",
)
NO_CACHE = {"Cache-Control": "no-cache"}


@cache
def manifest() -> dict[str, Any]:
    return {
        "id": "/",
        "name": NAME,
        "short_name": NAME,
        "description": "Talk with candidates, recruiters and caseworkers about jobs.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {
                "src": static(f"icons/{name}"),
                "sizes": sizes,
                "type": "image/png",
                "purpose": purpose,
            }
            for name, (sizes, purpose) in ICONS.items()
        ],
    }


@router.get("/manifest.webmanifest")
def manifest_file() -> Response:
    return Response(
        json.dumps(manifest(), indent=1),
        media_type="application/manifest+json",
        headers=NO_CACHE,
    )


@cache
def service_worker() -> str:
    """sw.js with this build's asset URLs baked in; its cache is named by their hash, so a new
    build installs a new cache and drops the old one."""
    shell = ["/offline", *(static(name) for name in SHELL_ASSETS)]
    version = hashlib.sha256(json.dumps(shell).encode()).hexdigest()[:12]
    return ENV.get_template("sw.js").render(
        version=version,
        shell=shell,
        icon=static("icons/icon-192.png"),
        badge=static("icons/badge-96.png"),
    )


@router.get("/sw.js")
def service_worker_file() -> Response:
    # no-cache: the browser checks for a new worker on every visit (it caps its own HTTP
    # caching of a worker at a day anyway); the worker may control all of the site.
    return Response(
        service_worker(),
        media_type="text/javascript",
        headers=NO_CACHE | {"Service-Worker-Allowed": "/"},
    )


@router.get("/offline")
def offline_page() -> HTMLResponse:
    return render("offline.html", headers=NO_CACHE)
