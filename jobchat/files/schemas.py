"""An attachment as the API shows it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from jobchat.files.models import Attachment


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str = Field(description="Read from the file's content.")
    size: int = Field(description="Bytes of the stored file (images without their metadata).")
    url: str | None = Field(
        default=None,
        description="Where members download it (GET, streamed); absent in the upload's answer "
        "until a message takes it.",
    )

    @classmethod
    def of(cls, attachment: Attachment, *, with_url: bool = True) -> AttachmentOut:
        return cls(
            id=attachment.id,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=attachment.size,
            url=f"/api/v1/attachments/{attachment.id}" if with_url else None,
        )
