"""Images re-encoded without their metadata: EXIF (the GPS position a phone writes into a
photo), XMP, comments and text chunks are dropped by writing the pixels out afresh, with the
orientation applied to them. Plus a small JPEG thumbnail for the pages."""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

THUMBNAIL_SIDE = 480
# Pixels one frame may have: a 12-48 megapixel phone photo passes (the 48 MP sensors save 12 MP
# by default); a "decompression bomb" (a small file that decodes to gigabytes) does not. A
# 40 MP RGBA frame is 160 MB decoded, so this is what bounds one upload's memory.
MAX_PIXELS = 40_000_000
# Pixels over all the frames of an animation, for the same reason: a 267 KB file of 49 frames
# of 2000x2000 would otherwise take ~630 MB.
MAX_ANIMATION_PIXELS = 40_000_000
# Frames an animation may have: each frame costs decode time even when tiny (20,000 1x1
# frames took 21 s of CPU), so the count is capped on its own.
MAX_FRAMES = 100
# GIF stores a frame's delay in 16 bits of centiseconds, and Pillow merges identical
# consecutive frames by adding their delays: each delay is clamped so that no sum of them
# can overflow (an overflow was a 500).
_GIF_MAX_TOTAL_MS = 0xFFFF * 10
# Images decoded at once in the process: each may take ~160 MB and seconds of CPU, and the
# uploads run in the server's threadpool, which they must not fill.
_DECODING = threading.BoundedSemaphore(2)
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
    with _DECODING, warnings.catch_warnings():
        # Pillow's own bomb guard warns first and raises only at twice its limit: both refuse.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source, formats=[_FORMATS[content_type]]) as image:
                return _reencode_open(image, content_type)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except ImageRefused:
            raise
        except MemoryError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise _unreadable() from None
        except Exception:
            # A crafted file reaches corners of the decoders (and of EXIF parsing) that raise
            # OverflowError, IndexError, struct.error, TypeError, AttributeError...: whatever
            # the decoder trips on, the file is refused, never a 500.
            raise _unreadable() from None


def _unreadable() -> ImageRefused:
    return ImageRefused("unsupported_type", "This image could not be read.")


def _too_many_pixels() -> ImageRefused:
    return ImageRefused(
        "too_large", f"The image has too many pixels (at most {MAX_PIXELS:,} per image)."
    )


def _reencode_open(image: Image.Image, content_type: str) -> Reencoded:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels()
    # n_frames reads the frame headers only; the frames are counted again while decoding.
    frames = getattr(image, "n_frames", 1)
    if frames > MAX_FRAMES:
        raise _too_many_frames()
    if width * height * frames > MAX_ANIMATION_PIXELS:
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
            _save_still(first, fmt, data, icc)
        width, height = first.size
        _save_thumbnail(first, thumbnail)
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


def _too_many_frames() -> ImageRefused:
    return ImageRefused(
        "too_large", f"The image has too many frames (at most {MAX_FRAMES} per animation)."
    )


def _upright(image: Image.Image) -> Image.Image:
    """The pixels turned as the EXIF orientation says, with no metadata left on them. Without
    an orientation that is the opened image itself, loaded: no second copy of the pixels."""
    image.load()
    turned = ImageOps.exif_transpose(image) or image
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
    """Every frame kept, with its duration; nothing else of the original's info. The frames
    are handed to the writer one at a time, so that (for PNG) only the frame being written is
    held in memory; the count is checked again as they come."""
    loop = image.info.get("loop", 0)
    total = getattr(image, "n_frames", 1)
    longest = _GIF_MAX_TOTAL_MS // max(total, 1) // 10 * 10 if fmt == "GIF" else None
    frames = _frames(image, longest)
    first = next(frames)
    options: dict[str, Any] = {"save_all": True}
    if fmt == "WEBP":
        # The WebP writer takes the durations as a list and lists the frames itself anyway.
        rest = list(frames)
        options["append_images"] = rest
        options["duration"] = [f.info["duration"] for f in [first, *rest]]
    else:
        # GIF and PNG take each frame's duration from its info.
        options["append_images"] = frames
    options["loop"] = int(loop) if isinstance(loop, int) else 0
    if fmt == "GIF":
        options["disposal"] = 2
    first.save(out, fmt, **options)
    return first


def _frames(image: Image.Image, longest: int | None) -> Iterator[Image.Image]:
    for count, frame in enumerate(ImageSequence.Iterator(image), start=1):
        if count > MAX_FRAMES:
            raise _too_many_frames()
        duration = max(0, int(frame.info.get("duration", 100)))
        if longest is not None:
            duration = min(duration, longest)
        copy = frame.convert("RGBA")
        copy.info = {"duration": duration}
        yield copy


def _save_thumbnail(image: Image.Image, out: IO[bytes]) -> None:
    """Made from the already upright, already stored image, which is not needed after: it is
    shrunk in place (thumbnail() reduces before it resamples) rather than copied first."""
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    small = image
    if small.mode in ("RGBA", "LA", "P", "PA"):
        small = small.convert("RGBA")
        background = Image.new("RGB", small.size, (255, 255, 255))
        background.paste(small, mask=small.getchannel("A"))
        small = background
    elif small.mode != "RGB":
        small = small.convert("RGB")
    small.info = {}
    small.save(out, "JPEG", quality=80)
