"""Security headers on every response: a strict Content-Security-Policy (our own scripts,
styles, service worker and manifest only, no inline code, no framing), no MIME sniffing, no
referrer leaving the site.

The one exception to "no framing": a request of an embed session (its cookie, or the embed
sign-in link that opens it inside the ATS's frame) may be framed by JOBCHAT_EMBED_ORIGINS, and
only those: ``frame-ancestors 'self' <origins>`` and no X-Frame-Options (which knows no list of
origins, and would win over the CSP in older browsers)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobchat.auth.deps import SESSION_COOKIE
from jobchat.auth.embed import EMBED_LINK_PREFIX, is_embed_session

_POLICY = [
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
CSP = "; ".join(_POLICY)
_EMBED_LINK_PATH = f"/login/{EMBED_LINK_PREFIX}"


def embed_csp(origins: tuple[str, ...]) -> str:
    """The policy of an embed session's responses: framed by us and ``origins`` only."""
    ancestors = " ".join(("frame-ancestors", "'self'", *origins))
    return "; ".join(ancestors if rule.startswith("frame-ancestors") else rule for rule in _POLICY)


def _embedded(scope: Scope) -> bool:
    """Is this request one of an embed session? Its cookie says, or its path is the embed
    sign-in link itself (opened in the frame before there is any cookie)."""
    if str(scope.get("path", "")).startswith(_EMBED_LINK_PATH):
        return True
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie = cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE)
            if is_embed_session(cookie):
                return True
    return False


class SecurityHeaders:
    def __init__(self, app: ASGIApp, embed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.embed_csp = embed_csp(embed_origins) if embed_origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        framed = self.embed_csp if self.embed_csp and _embedded(scope) else None

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if framed is None or "content-security-policy" in headers:
                    # A route's own policy (a file served sandboxed) says nothing of framing:
                    # such a response stays unframeable in an embed session too.
                    headers.setdefault("Content-Security-Policy", CSP)
                    headers.setdefault("X-Frame-Options", "DENY")
                else:
                    headers["Content-Security-Policy"] = framed
            await send(message)

        await self.app(scope, receive, with_headers)
