"""Helpers (no tests) for the attachment tests of email and SMS: small real documents and images,
made here, and uploading them through the API."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from jobchat.config import Settings
from tests.support import As, body


def pdf(text: str = "Curriculum vitae") -> bytes:
    """A small PDF (its signature is what the type is read from)."""
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% "
        + text.encode()
        + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def jpeg(color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, "JPEG")
    return out.getvalue()


def png_with_gps() -> bytes:
    """A PNG carrying EXIF with a GPS position, as a phone's screenshot of a photo might."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "blue").save(out, "PNG", exif=exif)
    return out.getvalue()


def has_gps(data: bytes) -> bool:
    exif = Image.open(io.BytesIO(data)).getexif()
    return 0x8825 in exif or bool(exif.get_ifd(0x8825))


def upload(who: As, conv_id: int, filename: str, data: bytes, content_type: str) -> int:
    response = who.client.post(
        f"/api/v1/conversations/{conv_id}/attachments",
        files={"file": (filename, data, content_type)},
        headers=who.headers,
    )
    return int(body(response, 201)["id"])


def download(who: As, attachment_id: int) -> bytes:
    response = who.get(f"/api/v1/attachments/{attachment_id}")
    assert response.status_code == 200, response.text
    return response.content


def follow_link(client: TestClient, link: str) -> Any:
    """A sign-in link followed in a browser of its own (no cookies of the test's client)."""
    assert link.startswith("http://testserver/"), link
    fresh = TestClient(client.app)
    return fresh.get(link.removeprefix("http://testserver"), follow_redirects=True)


def with_storage(settings: Settings, tmp_path: Path, **extra: Any) -> Settings:
    """``settings`` keeping attachments in this test's own folder."""
    return settings.model_copy(update={"storage_url": f"file://{tmp_path / 'files'}", **extra})


def stored_objects(tmp_path: Path) -> list[str]:
    """The objects the test's storage folder holds (not the half-written ones)."""
    folder = tmp_path / "files"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
