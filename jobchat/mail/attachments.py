"""A message's files in the email that carries it to a candidate.

Up to JOBCHAT_MAX_EMAIL_ATTACHMENT_BYTES in all they travel inside the email, one part each,
read from the storage when the delivery job runs (the send only stored the message). Beyond
it, none does: each is named with a link that signs the candidate in and downloads it, since
a mail server refusing a large email would lose the message with its files. All or none, so
the candidate never has to wonder why some came attached and some did not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from jobchat.files.models import Attachment
from jobchat.inputs import fold_controls
from jobchat.mail.compose import FileLine


@dataclass(frozen=True)
class EmailFile:
    """What the job needs of an attachment once its database session is closed."""

    id: int
    filename: str
    content_type: str
    size: int
    storage_key: str


def files_of(attachments: Sequence[Attachment]) -> list[EmailFile]:
    """The files still there, in their order (one removed since the send is left out)."""
    return [
        EmailFile(a.id, a.filename, a.content_type, a.size, a.storage_key)
        for a in attachments
        if a.removed_at is None
    ]


def fit_inside(files: Sequence[EmailFile], max_bytes: int) -> bool:
    """Whether the files go inside the email (else each is a link)."""
    return sum(f.size for f in files) <= max_bytes


def file_lines(files: Sequence[EmailFile], links: dict[int, str] | None) -> list[FileLine]:
    """How the email's text names the files: attached (``links`` None) or each by its link."""
    return [FileLine(f.filename, f.size, None if links is None else links[f.id]) for f in files]


def add_parts(
    email: EmailMessage, files: Sequence[EmailFile], read: Callable[[str], bytes]
) -> None:
    """Each file as an ``attachment`` part of its stored type. The email package writes the
    name RFC 2231-encoded (filename*=utf-8''...) where it is not plain ASCII."""
    for f in files:
        maintype, _, subtype = f.content_type.partition("/")
        email.add_attachment(
            read(f.storage_key),
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=fold_controls(f.filename) or "file",
            # Plain text is taken only as UTF-8 (jobchat.files.intake): say so.
            params={"charset": "utf-8"} if maintype == "text" else None,
        )


def with_file_names(body: str, filenames: Sequence[str]) -> str:
    """A message's text as a notification previews it: its files named after it (a message of
    only files would otherwise preview as nothing)."""
    if not filenames:
        return body
    noun = "File" if len(filenames) == 1 else "Files"
    names = f"[{noun}: {', '.join(fold_controls(name) for name in filenames)}]"
    return f"{body} {names}" if body else names
