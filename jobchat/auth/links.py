"""Sign-in links into a conversation or to a file, as emails and texts carry them.

One helper for both channels. A link is a one-time login credential; only its digest is stored.
The email and text jobs make the secret first and record it in the transaction that records
the email or text (``do_record_sign_in_link``), so a retried send leaves no unused credentials
behind.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from jobchat.auth.actions import do_issue_credential, new_secret
from jobchat.auth.api import login_url
from jobchat.auth.models import CredentialKind


def conversation_link(public_url: str, secret: str, conv_id: int) -> str:
    return f"{login_url(public_url, secret)}?next=/conversations/{conv_id}"


def attachment_link(public_url: str, secret: str, attachment_id: int) -> str:
    """Signs its owner in and downloads the file (GET /api/v1/attachments/{id} with the new
    session): an email or text names a file with this, never a bare file address."""
    return f"{login_url(public_url, secret)}?next=/api/v1/attachments/{attachment_id}"


def new_sign_in_secret() -> str:
    """A secret for a sign-in link not yet recorded (``do_record_sign_in_link`` does)."""
    return new_secret(CredentialKind.login_link)


def do_record_sign_in_link(
    session: Session, *, user_id: int, secret: str, now: datetime, hours: float
) -> None:
    do_issue_credential(
        session,
        user_id=user_id,
        kind=CredentialKind.login_link,
        now=now,
        lifetime=timedelta(hours=hours),
        secret=secret,
    )
