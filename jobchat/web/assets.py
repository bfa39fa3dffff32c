"""Serving the pages' own CSS, JS and icons: cached for good when the URL names the content,
compressed on the way out.

Pages link every asset as ``/static/NAME?v=HASH`` (templating.static), so a URL whose hash is
this file's never changes meaning and the browser may keep it for a year without asking again.
Any other URL (no version, or a hash this process does not have: a page from a newer process
asking an older one during a rolling deploy) is revalidated each time, so a stale file is never
kept under a new name. Only these files are gzipped: our HTML is not, because it
carries the CSRF token beside text a visitor can make the page echo (a search), which is what
the BREACH attack needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs

from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import ASGIApp, Scope

from jobchat.web.templating import asset_version

FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class VersionedStatic(StaticFiles):
    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
        # The name under /static/ (icons/ has its own folder), as templating.static names it.
        name = Path(full_path).resolve().relative_to(Path(self.directory or ".").resolve())
        current = asset_version(name.as_posix())
        response.headers["Cache-Control"] = FOREVER if asked == current else REVALIDATE
        return response


def static_files(directory: str) -> ASGIApp:
    return GZipMiddleware(VersionedStatic(directory=directory), minimum_size=500)
