"""Sign-in for a frame in the ATS's pages: which links and sessions are "embed" ones, and where
a sign-in link may send the browser.

An embed link and the session it opens are told apart by their secrets' prefixes. The secret
is ours (made here, stored only as a digest), so the prefix cannot be changed by whoever holds
the link, and the security headers can tell an embed session from its cookie alone, with no
read of the database on every response. No column is needed either: an embed session is an
ordinary session credential in every other respect (expiry, revocation, deactivation).
"""

from __future__ import annotations

from urllib.parse import urlsplit

EMBED_LINK_PREFIX = "jcle_"
EMBED_SESSION_PREFIX = "jcse_"


def is_embed_link(secret: str) -> bool:
    return secret.startswith(EMBED_LINK_PREFIX)


def is_embed_session(secret: str | None) -> bool:
    return secret is not None and secret.startswith(EMBED_SESSION_PREFIX)


def is_local_path(target: str) -> bool:
    """A path on this site and nothing else: no scheme or host, not protocol-relative (``//``),
    no backslash (browsers read ``/\\evil.example`` as ``//evil.example``), and no whitespace
    or control character (browsers drop tabs and newlines from a URL, so ``/<TAB>/evil.example``
    would become ``//evil.example``)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def local_path(target: str | None) -> str:
    """Where to go after signing in: ``target`` when it is a local path, else the start page
    (no open redirect through our sign-in links)."""
    return target if target and is_local_path(target) else "/"
