"""Attachments in tests: real files of every allowed type (made with the libraries that write
them, or by hand where a format is simple), uploads through the API, and an S3 server on
loopback (moto in server mode) for the storage tests."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support import As

PNG = "image/png"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
# The EXIF tags a phone writes: where (GPS) and which way up (orientation 6: turn 90° clockwise).
ORIENTATION = 0x0112
GPS_IFD = 0x8825
MAKE = 0x010F


def upload(
    who: As, conversation_id: int, name: str, data: bytes, content_type: str = "text/plain"
) -> httpx.Response:
    """Upload as a browser would, with the name and type the sender claims (both ignored)."""
    response: httpx.Response = who.client.post(
        f"/api/v1/conversations/{conversation_id}/attachments",
        files={"file": (name, data, content_type)},
        headers=who.headers,
    )
    return response


def uploaded(who: As, conversation_id: int, name: str, data: bytes) -> dict[str, Any]:
    r = upload(who, conversation_id, name, data)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


def download(who: As, attachment_id: int, **headers: str) -> httpx.Response:
    response: httpx.Response = who.client.get(
        f"/api/v1/attachments/{attachment_id}", headers={**who.headers, **headers}
    )
    return response


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    # A white left half: the orientation test checks where it ends up.
    image.paste((255, 255, 255), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def phone_photo(size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    """A photo as a phone writes it: sideways pixels with orientation 6, a GPS position, a
    camera make, and an XMP packet where the format has one."""
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "PhoneCo"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    extra: dict[str, Any] = {"exif": exif.tobytes()}
    if fmt in ("JPEG", "WEBP", "HEIF"):
        extra["xmp"] = b"<x:xmpmeta><GPSLatitude>52,31.2N</GPSLatitude></x:xmpmeta>"
    return image_bytes(fmt, size, **extra)


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (20, 20), (i * 60 % 256, 255 - i * 50, 90)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(
        out, "GIF", save_all=True, append_images=images[1:], duration=70, loop=0, comment=b"hi"
    )
    return out.getvalue()


def heic_bytes() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return image_bytes("HEIF", quality=60)


def docx_bytes(text: str = "Curriculum vitae") -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt_bytes() -> bytes:
    """An OpenDocument text: a zip whose first entry, stored uncompressed, is its mimetype."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), ODT, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", "<office:document-content/>")
    return out.getvalue()


def doc_bytes() -> bytes:
    """The start of a Word 97-2003 file: the OLE2 compound-file header, and the Word
    FIB's signature where the first sector begins."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    return header + b"\xec\xa5\xc1\x00" + b"\x00" * 1024


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
RTF = b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}}\\f0 Dear team, my CV.\\par}"
TEXT = "Availability: Tuesday and Thursday.\nGrüße, Carla\n".encode()


def zip_bomb() -> bytes:
    """A small zip that inflates to 50 MB: named .docx by its sender."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"0" * 50_000_000)
    return out.getvalue()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-protocol server on loopback (moto in server mode), for the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
