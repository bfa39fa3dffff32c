"""How the pages show an attachment: a thumbnail for an image, a card for a document (its type
in words, its size for people), and the composer's accept list, matching the contract's
allow-list (the server decides by content; this only steers the file picker)."""

from __future__ import annotations

from jobchat.files.models import Attachment

# Bubble thumbnails fit in this box (CSS pixels); width and height are written on the <img>
# so that the history does not jump when the picture arrives.
THUMB_BOX = 240

# The contract's allow-list, by MIME type, with a word a person knows and an icon's name.
KINDS: dict[str, tuple[str, str]] = {
    "application/pdf": ("PDF", "pdf"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("Word", "doc"),
    "application/msword": ("Word", "doc"),
    "application/vnd.oasis.opendocument.text": ("OpenDocument", "doc"),
    "application/rtf": ("RTF", "doc"),
    "text/rtf": ("RTF", "doc"),
    "text/plain": ("Text", "text"),
    "image/png": ("PNG image", "image"),
    "image/jpeg": ("JPEG image", "image"),
    "image/gif": ("GIF image", "image"),
    "image/webp": ("WebP image", "image"),
    "image/heic": ("HEIC image", "image"),
    "image/heif": ("HEIC image", "image"),
}

# What the file picker offers: the extensions and types of the allow-list.
ACCEPT = ",".join(
    [
        ".pdf",
        ".doc",
        ".docx",
        ".odt",
        ".rtf",
        ".txt",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".webp",
        ".heic",
        ".heif",
        *sorted(KINDS),
    ]
)


def type_label(content_type: str) -> str:
    return KINDS.get(content_type, ("File", "file"))[0]


def type_icon(content_type: str) -> str:
    return KINDS.get(content_type, ("File", "file"))[1]


def is_image(attachment: Attachment) -> bool:
    """Drawn as a picture: an image with a thumbnail (the thumbnail is what the page shows)."""
    return attachment.thumbnail_key is not None


def human_size(size: int) -> str:
    """'820 bytes', '14 KB', '2.4 MB': the units people see in a file manager (1 KB = 1024)."""
    if size < 1024:
        return f"{size} bytes" if size != 1 else "1 byte"
    value = size / 1024
    for unit in ("KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def name_parts(filename: str) -> tuple[str, str]:
    """(stem, extension) of a file's name, so that a long name is cut in the middle: the
    stem ends in an ellipsis and the extension stays seen (".pdf" matters). No extension (or
    a name that is only one, ".profile") gives ("name", "")."""
    dot = filename.rfind(".")
    if dot <= 0 or len(filename) - dot > 6:
        return filename, ""
    return filename[:dot], filename[dot:]


def thumb_size(attachment: Attachment) -> tuple[int, int]:
    """The thumbnail's drawn size: the image's proportions, within THUMB_BOX (a 4:3 box when
    the image's size is not known)."""
    width, height = attachment.width or 0, attachment.height or 0
    if width <= 0 or height <= 0:
        return THUMB_BOX, THUMB_BOX * 3 // 4
    scale = min(1.0, THUMB_BOX / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def shown(attachments: list[Attachment]) -> list[Attachment]:
    """A message's attachments that are still served (not removed by an erasure)."""
    return [a for a in attachments if a.removed_at is None]
