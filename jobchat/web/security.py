"""Security headers on every response: a strict Content-Security-Policy (our own scripts,
styles, service worker and manifest only, no inline code, no framing), no MIME sniffing, no
referrer leaving the site."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # blob: the composer's previews of images being attached (object URLs).
        "img-src 'self' data: blob:",
        "font-src 'self'",
        # 'self' covers ws:/wss: to our own host (CSP level 3).
        "connect-src 'self'",
        "form-action 'self'",
        # The installable app: our own service worker (/sw.js) and manifest, nothing else's.
        "worker-src 'self'",
        "manifest-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, with_headers)
