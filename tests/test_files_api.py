"""Attachments through the API: upload checked by content, members-only download with safe
headers and ranges, sending with a message, deleting for everyone."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from jobchat.config import Settings
from tests.files_support import (
    DOCX,
    GPS_IFD,
    ODT,
    PDF,
    RTF,
    TEXT,
    animated_gif,
    doc_bytes,
    docx_bytes,
    download,
    heic_bytes,
    image_bytes,
    odt_bytes,
    phone_photo,
    upload,
    uploaded,
    zip_bomb,
)
from tests.support import World, assert_error, body, start
from tests.web_support import ORIGIN, Browser

LIMIT = 200_000


@pytest.fixture
def send_rate() -> int:
    return 120  # the default; a test may parametrize it


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, send_rate: int) -> Settings:
    return settings.model_copy(
        update={
            "storage_url": f"file://{tmp_path}/files",
            "max_attachment_bytes": LIMIT,
            "send_rate_per_minute": send_rate,
        }
    )


@pytest.fixture
def chat(world: World) -> int:
    """An application chat: acme's hiring team (emp_team, emp_admin) and the candidate."""
    return start(world["emp_team"], "application", application="app1")


def stored_files(settings: Settings) -> list[Path]:
    folder = Path(settings.storage_url.removeprefix("file://"))
    return sorted(p for p in folder.iterdir()) if folder.exists() else []


# --- types, read from the content ---------------------------------------------------------------


ALLOWED: list[tuple[str, Callable[[], bytes], str]] = [
    ("cv.pdf", lambda: PDF, "application/pdf"),
    ("cv.docx", docx_bytes, DOCX),
    ("cv.doc", doc_bytes, "application/msword"),
    ("cv.odt", odt_bytes, ODT),
    ("letter.rtf", lambda: RTF, "application/rtf"),
    ("notes.txt", lambda: TEXT, "text/plain"),
    ("photo.png", lambda: image_bytes("PNG"), "image/png"),
    ("photo.jpg", lambda: image_bytes("JPEG"), "image/jpeg"),
    ("anim.gif", animated_gif, "image/gif"),
    ("photo.webp", lambda: image_bytes("WEBP"), "image/webp"),
    ("photo.heic", heic_bytes, "image/heic"),
]


def test_each_allowed_type_is_taken_and_read_back(world: World, chat: int) -> None:
    # One world for all of them (building it is what costs, on PostgreSQL above all).
    for name, make, content_type in ALLOWED:
        data = make()
        answer = body(upload(world["cand"], chat, name, data, "application/octet-stream"), 201)
        assert answer["filename"] == name
        assert answer["content_type"] == content_type, name
        assert set(answer) == {"id", "filename", "content_type", "size"}
        got = download(world["cand"], answer["id"])
        assert got.status_code == 200, name
        assert len(got.content) == answer["size"], name
        if not content_type.startswith("image/"):
            assert got.content == data, name  # documents are stored as they came


def test_the_type_comes_from_the_content_not_the_name(world: World, chat: int) -> None:
    answer = body(upload(world["cand"], chat, "cv.pdf", image_bytes("PNG"), "application/pdf"), 201)
    assert answer["content_type"] == "image/png"
    assert download(world["cand"], answer["id"]).headers["content-type"] == "image/png"


HOSTILE: list[tuple[str, bytes]] = [
    ("cv.pdf", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"),
    ("cv.pdf", b"   <html><body>hello</body></html>"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("notes.txt", b"Looks like text, then <script>fetch('/api')</script>"),
    ("cv.docx", zip_bomb()),
    ("run.exe", b"MZ\x90\x00" + b"\x00" * 300),
    ("data.bin", bytes(range(256)) * 4),
    ("cv.pdf", b"\x89PNG\r\n\x1a\nbut not an image at all"),
]


def test_anything_else_is_415(world: World, chat: int, settings: Settings) -> None:
    for name, data in HOSTILE:
        r = upload(world["cand"], chat, name, data, "application/pdf")
        assert_error(r, 415, "unsupported_type")
        assert r.json()["error"]["message"]
    assert stored_files(settings) == []


def test_an_empty_file_is_422(world: World, chat: int) -> None:
    r = upload(world["cand"], chat, "empty.txt", b"")
    assert_error(r, 422, "empty_file")
    assert r.json()["error"]["fields"] == {"file": "The file is empty."}


def test_a_file_of_exactly_the_limit_is_taken_one_byte_more_is_413(
    world: World, chat: int, settings: Settings
) -> None:
    exact = b"a" * (LIMIT - 1) + b"\n"
    assert body(upload(world["cand"], chat, "big.txt", exact), 201)["size"] == LIMIT
    r = upload(world["cand"], chat, "big.txt", exact + b"a")
    assert_error(r, 413, "payload_too_large")
    assert len(stored_files(settings)) == 1


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the server's temporary files go during the test."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_body_far_over_the_limit_is_cut_off_with_413(
    world: World, chat: int, settings: Settings, temp_dir: Path
) -> None:
    r = upload(world["cand"], chat, "huge.txt", b"a" * (LIMIT * 3))
    assert_error(r, 413, "payload_too_large")
    assert stored_files(settings) == []
    assert list(temp_dir.iterdir()) == []


def test_a_streamed_body_without_a_length_is_cut_off_too(
    world: World, chat: int, settings: Settings, temp_dir: Path
) -> None:
    def multipart() -> Iterator[bytes]:
        yield (
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; '
            b'filename="huge.txt"\r\nContent-Type: text/plain\r\n\r\n'
        )
        for _ in range(30):
            yield b"a" * (LIMIT // 10)
        yield b"\r\n--b0undary--\r\n"

    who = world["cand"]
    r = who.client.post(
        f"/api/v1/conversations/{chat}/attachments",
        content=multipart(),
        headers={**who.headers, "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert_error(r, 413, "payload_too_large")
    assert stored_files(settings) == []
    assert list(temp_dir.iterdir()) == []


@pytest.mark.parametrize("send_rate", [3])
def test_uploads_count_against_the_send_rate(world: World, chat: int, settings: Settings) -> None:
    cand = world["cand"]
    body(cand.send(chat, "Here it comes"), 201)
    uploaded(cand, chat, "a.txt", TEXT)
    uploaded(cand, chat, "b.txt", TEXT)
    assert_error(upload(cand, chat, "c.txt", TEXT), 429, "rate_limited")
    assert len(stored_files(settings)) == 2


def test_the_missing_file_field_is_422(world: World, chat: int) -> None:
    who = world["cand"]
    r = who.client.post(
        f"/api/v1/conversations/{chat}/attachments",
        files={"other": ("a.txt", b"hello", "text/plain")},
        headers=who.headers,
    )
    assert_error(r, 422, "invalid")
    assert "file" in r.json()["error"]["fields"]
    r = who.post(f"/api/v1/conversations/{chat}/attachments", {"file": "x"})
    assert_error(r, 415, "unsupported_media_type")


def test_the_general_body_limit_does_not_apply_to_uploads(world: World, chat: int) -> None:
    # 64 KiB is the general limit; an upload is bounded by its own.
    data = b"b" * 150_000
    assert body(upload(world["cand"], chat, "long.txt", data), 201)["size"] == 150_000


def test_the_filename_is_cleaned(world: World, chat: int) -> None:
    names = {
        "../../etc/passwd.txt": "passwd.txt",
        "C:\\Users\\me\\cv.txt": "cv.txt",
        "a\nb\rc\u202e.txt": "abc.txt",
        "...": "file",
        "x" * 300 + ".txt": "x" * 251 + ".txt",
    }
    for sent_name, kept in names.items():
        assert body(upload(world["cand"], chat, sent_name, TEXT), 201)["filename"] == kept


# --- images without metadata ----------------------------------------------------------------------


def test_a_phone_photo_is_stored_upright_without_metadata(world: World, chat: int) -> None:
    for fmt in ("JPEG", "PNG", "WEBP", "HEIF"):
        original = phone_photo((64, 48), fmt)
        assert b"PhoneCo" in original
        answer = body(upload(world["cand"], chat, "permit", original), 201)
        got = download(world["cand"], answer["id"])
        assert len(got.content) == answer["size"]
        image = Image.open(io.BytesIO(got.content))
        assert image.size == (48, 64), fmt  # turned as orientation 6 said
        exif = image.getexif()
        assert len(exif) == 0 and not exif.get_ifd(GPS_IFD), fmt
        for trace in (b"PhoneCo", b"Exif", b"GPSLatitude", b"xmpmeta"):
            assert trace not in got.content, (fmt, trace)
        # Orientation 6 turns the picture clockwise: its white left half is now on top.
        top = image.convert("RGB").getpixel((24, 5))
        bottom = image.convert("RGB").getpixel((24, 58))
        assert isinstance(top, tuple) and isinstance(bottom, tuple)
        assert min(top) > 200 and bottom[1] < 100, fmt


def test_an_animated_gif_keeps_its_frames_and_loses_its_comment(world: World, chat: int) -> None:
    answer = body(upload(world["cand"], chat, "wave.gif", animated_gif(4)), 201)
    image = Image.open(io.BytesIO(download(world["cand"], answer["id"]).content))
    assert getattr(image, "n_frames", 1) == 4
    assert "comment" not in image.info


def test_a_decompression_bomb_is_refused(world: World, chat: int) -> None:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")  # 400 megapixels in ~50 KB
    r = upload(world["cand"], chat, "bomb.png", out.getvalue())
    assert_error(r, 413, "payload_too_large")


def test_images_have_a_thumbnail_documents_do_not(world: World, chat: int) -> None:
    who = world["cand"]
    photo = body(upload(who, chat, "big.png", image_bytes("PNG", (1200, 600))), 201)
    r = who.client.get(f"/api/v1/attachments/{photo['id']}/thumbnail", headers=who.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(r.content)).size == (480, 240)
    doc = body(upload(who, chat, "cv.pdf", PDF), 201)
    r = who.client.get(f"/api/v1/attachments/{doc['id']}/thumbnail", headers=who.headers)
    assert_error(r, 404, "not_found")
    r = world["sp_out"].client.get(
        f"/api/v1/attachments/{photo['id']}/thumbnail", headers=world["sp_out"].headers
    )
    assert_error(r, 404, "not_found")


# --- who may fetch -----------------------------------------------------------------


def test_only_the_uploader_fetches_an_upload_no_message_took(world: World, chat: int) -> None:
    answer = uploaded(world["cand"], chat, "cv.pdf", PDF)
    assert download(world["cand"], answer["id"]).status_code == 200
    for other in ("emp_team", "emp_admin", "sp_out", "other_emp", "cand2"):
        assert_error(download(world[other], answer["id"]), 404, "not_found")


def test_members_fetch_a_sent_file_and_nobody_else(world: World, chat: int) -> None:
    answer = uploaded(world["cand"], chat, "cv.pdf", PDF)
    body(world["cand"].send(chat, "My CV", attachments=[answer["id"]]), 201)
    for member in ("cand", "emp_team", "emp_admin"):
        assert download(world[member], answer["id"]).content == PDF
    for outsider in ("emp_other", "sp_out", "other_emp", "cand2", "agency_user"):
        assert_error(download(world[outsider], answer["id"]), 404, "not_found")
    assert_error(download(world["cand"], 999_999), 404, "not_found")
    r = world["cand"].client.get(f"/api/v1/attachments/{answer['id']}")
    assert r.status_code == 401


def test_a_candidate_cannot_fetch_from_a_staff_only_chat(world: World) -> None:
    staff_only = start(world["emp_team"], "agency", application="app1")
    answer = uploaded(world["emp_team"], staff_only, "offer.pdf", PDF)
    body(world["emp_team"].send(staff_only, "Offer draft", attachments=[answer["id"]]), 201)
    assert download(world["agency_user"], answer["id"]).status_code == 200
    assert_error(download(world["cand"], answer["id"]), 404, "not_found")


def test_only_members_who_may_post_upload(world: World, chat: int) -> None:
    assert_error(upload(world["sp_out"], chat, "x.txt", TEXT), 404, "not_found")
    assert_error(upload(world["cand"], 999_999, "x.txt", TEXT), 404, "not_found")
    r = world["emp_team"].post(f"/api/v1/conversations/{chat}/end")
    assert r.status_code in (200, 204), r.text
    assert_error(upload(world["cand"], chat, "x.txt", TEXT), 409, "conversation_ended")


def test_the_pages_upload_and_download_with_the_session_cookie(
    world: World, chat: int, carla: Browser
) -> None:
    path = f"/api/v1/conversations/{chat}/attachments"
    files = {"file": ("cv.pdf", PDF, "application/pdf")}
    r = carla.client.post(path, files=files, headers={"Origin": ORIGIN})
    assert_error(r, 403, "csrf_failed")
    r = carla.client.post(path, files=files, headers={"Origin": ORIGIN, "X-CSRF-Token": carla.csrf})
    answer = body(r, 201)
    assert carla.client.get(f"/api/v1/attachments/{answer['id']}").content == PDF
    # A token in the address is no credential here (it would end up in logs and histories).
    token = world["cand"].headers["Authorization"].removeprefix("Bearer ")
    r = world["cand"].client.get(f"/api/v1/attachments/{answer['id']}", params={"token": token})
    assert_error(r, 401, "unauthorized")


# --- served safely --------------------------------------------------------------------------------


def test_the_download_headers(world: World, chat: int) -> None:
    answer = uploaded(world["cand"], chat, 'Lebenslauf Grüße "final".pdf', PDF)
    r = download(world["cand"], answer["id"])
    h = r.headers
    assert h["content-type"] == "application/pdf"
    assert h["content-disposition"] == (
        'attachment; filename="Lebenslauf Gr__e _final_.pdf"; '
        "filename*=UTF-8''Lebenslauf%20Gr%C3%BC%C3%9Fe%20%22final%22.pdf"
    )
    assert h["x-content-type-options"] == "nosniff"
    assert h["content-security-policy"] == "sandbox"
    assert h["content-length"] == str(len(PDF))
    assert h["accept-ranges"] == "bytes"
    assert h["cache-control"].startswith("private")
    assert h["etag"].startswith('"')
    again = download(world["cand"], answer["id"], **{"If-None-Match": h["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_text_is_served_as_utf8_text(world: World, chat: int) -> None:
    answer = uploaded(world["cand"], chat, "notes.txt", TEXT)
    assert download(world["cand"], answer["id"]).headers["content-type"] == (
        "text/plain; charset=utf-8"
    )


RANGES: list[tuple[str, int, slice, str | None]] = [
    ("bytes=0-9", 206, slice(0, 10), "bytes 0-9/{n}"),
    ("bytes=10-", 206, slice(10, None), "bytes 10-{last}/{n}"),
    ("bytes=-7", 206, slice(-7, None), "bytes {tail}-{last}/{n}"),
    ("bytes=5-100000", 206, slice(5, None), "bytes 5-{last}/{n}"),
    ("bytes=0-1,4-5", 200, slice(None), None),
    ("pages=1", 200, slice(None), None),
    ("bytes=9-3", 200, slice(None), None),
]


def test_ranges(world: World, chat: int) -> None:
    answer = uploaded(world["cand"], chat, "cv.pdf", PDF)
    n = len(PDF)
    for wanted, status, part, content_range in RANGES:
        r = download(world["cand"], answer["id"], Range=wanted)
        assert r.status_code == status, wanted
        assert r.content == PDF[part], wanted
        assert r.headers["content-length"] == str(len(PDF[part]))
        if content_range is None:
            assert "content-range" not in r.headers
        else:
            assert r.headers["content-range"] == content_range.format(n=n, last=n - 1, tail=n - 7)
    for wanted in ("bytes=100000-", f"bytes={n}-", "bytes=-0"):
        r = download(world["cand"], answer["id"], Range=wanted)
        assert_error(r, 416, "range_not_satisfiable")
        assert r.headers["content-range"] == f"bytes */{n}"
