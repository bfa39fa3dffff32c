"""Images re-encoded without their metadata: EXIF (the GPS position a phone writes into a
photo), XMP, comments and text chunks are dropped by writing the pixels out afresh, with the
orientation applied to them. Plus a small JPEG thumbnail for the pages."""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

THUMBNAIL_SIDE = 480
# Pixels one frame may have: a 48-megapixel phone photo passes; a "decompression bomb" (a small
# file that decodes to gigabytes) does not. Well below Pillow's own guard, which would let a
# single upload take ~360 MB of memory.
MAX_PIXELS = 64_000_000
# Pixels over all the frames of an animation, for the same reason.
MAX_ANIMATION_PIXELS = 200_000_000
# Pillow's names for what we store.
_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
}
_heif_ready = False


class ImageRefused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Reencoded:
    data: IO[bytes]
    thumbnail: IO[bytes]
    size: int
    width: int
    height: int


def _register_heif() -> None:
    global _heif_ready
    if not _heif_ready:
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False)
        _heif_ready = True


def reencode(source: BinaryIO, content_type: str) -> Reencoded:
    """Decode ``source`` (already typed as ``content_type`` from its signature) and write it
    out again without metadata. Raises ImageRefused for a file that does not decode, or that
    would decode to too many pixels."""
    if content_type == "image/heic":
        _register_heif()
    with warnings.catch_warnings():
        # Pillow's own bomb guard warns first and raises only at twice its limit: both refuse.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source, formats=[_FORMATS[content_type]]) as image:
                return _reencode_open(image, content_type)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except ImageRefused:
            raise
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise ImageRefused(
                "unsupported_type", "The image is damaged or not what its content claims."
            ) from None


def _too_many_pixels() -> ImageRefused:
    return ImageRefused(
        "too_large", f"The image has too many pixels (at most {MAX_PIXELS:,} per image)."
    )


def _reencode_open(image: Image.Image, content_type: str) -> Reencoded:
    width, height = image.size
    frames = getattr(image, "n_frames", 1)
    if width * height > MAX_PIXELS or width * height * frames > MAX_ANIMATION_PIXELS:
        raise _too_many_pixels()
    icc = image.info.get("icc_profile")
    fmt = _FORMATS[content_type]
    # Handed to the caller, who closes them (store_file, once they are stored).
    data = tempfile.TemporaryFile()  # noqa: SIM115
    thumbnail = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        if frames > 1 and content_type in ("image/gif", "image/webp", "image/png"):
            first = _save_animation(image, fmt, data, icc)
        else:
            first = _upright(image)
            first.load()
            _save_still(first, fmt, data, icc)
        _save_thumbnail(first, thumbnail)
        width, height = first.size
        data.flush()
        return Reencoded(
            data=data,
            thumbnail=thumbnail,
            size=os.fstat(data.fileno()).st_size,
            width=width,
            height=height,
        )
    except BaseException:
        data.close()
        thumbnail.close()
        raise


def _upright(image: Image.Image) -> Image.Image:
    """The pixels turned as the EXIF orientation says, with no metadata left on the copy."""
    turned = ImageOps.exif_transpose(image) or image.copy()
    turned.info = {}
    return turned


def _save_still(image: Image.Image, fmt: str, out: IO[bytes], icc: Any) -> None:
    options: dict[str, Any] = {}
    if isinstance(icc, bytes) and fmt in ("PNG", "JPEG", "WEBP", "HEIF"):
        # The colour profile is how the pixels are meant to look, not metadata about anyone.
        options["icc_profile"] = icc
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=90, **options)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=90, **options)
    elif fmt == "HEIF":
        if image.mode not in ("RGB", "RGBA", "L"):
            image = image.convert("RGB")
        image.save(out, "HEIF", quality=90, exif=None, xmp=None, **options)
    else:
        image.save(out, fmt, **options)


def _save_animation(image: Image.Image, fmt: str, out: IO[bytes], icc: Any) -> Image.Image:
    """Every frame kept, with its duration; nothing else of the original's info."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        durations.append(int(frame.info.get("duration", 100)))
        copy = frame.convert("RGBA")
        copy.info = {}
        frames.append(copy)
    loop = image.info.get("loop", 0)
    first, rest = frames[0], frames[1:]
    options: dict[str, Any] = {"save_all": True, "append_images": rest, "duration": durations}
    if fmt in ("GIF", "WEBP", "PNG"):
        options["loop"] = int(loop) if isinstance(loop, int) else 0
    if fmt == "GIF":
        options["disposal"] = 2
    first.save(out, fmt, **options)
    return first


def _save_thumbnail(image: Image.Image, out: IO[bytes]) -> None:
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    if small.mode in ("RGBA", "LA", "P", "PA"):
        small = small.convert("RGBA")
        background = Image.new("RGB", small.size, (255, 255, 255))
        background.paste(small, mask=small.getchannel("A"))
        small = background
    elif small.mode != "RGB":
        small = small.convert("RGB")
    small.info = {}
    small.save(out, "JPEG", quality=80)
