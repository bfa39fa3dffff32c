"""Edges of the attachment API the security review found: HEAD answers as GET without a
body, If-None-Match is matched tag by tag, storage down says when to try again, and a body
that is not multipart is refused before it is read. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.files_support import PDF, download, image_bytes, upload, uploaded
from tests.support import World, assert_error, start


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def test_head_answers_as_get_without_the_body(world: World, chat: int) -> None:
    who = world["cand"]
    cv = uploaded(who, chat, "cv.pdf", PDF)
    photo = uploaded(who, chat, "me.png", image_bytes("PNG"))
    for path in (f"/api/v1/attachments/{cv['id']}", f"/api/v1/attachments/{photo['id']}/thumbnail"):
        get = who.client.get(path, headers=who.headers)
        head = who.client.head(path, headers=who.headers)
        assert head.status_code == 200, head.text
        assert head.content == b""
        for name in ("content-type", "content-length", "etag", "content-disposition"):
            assert head.headers[name] == get.headers[name]


def test_if_none_match_is_matched_tag_by_tag(world: World, chat: int) -> None:
    who = world["cand"]
    cv = uploaded(who, chat, "cv.pdf", PDF)
    tag = download(who, cv["id"]).headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    for header in (tag, "*", f'"other", {tag}', f"W/{tag}", f' "x" ,W/{tag} '):
        assert download(who, cv["id"], **{"If-None-Match": header}).status_code == 304, header
    # A tag containing ours is another tag: the file is sent.
    for header in (f'"x{tag[1:]}', f'{tag[:-1]}x"', '"other"', f"{tag[1:-1]}"):
        assert download(who, cv["id"], **{"If-None-Match": header}).status_code == 200, header


def test_storage_down_says_when_to_try_again(world: World, chat: int, tmp_path: Path) -> None:
    cv = uploaded(world["cand"], chat, "cv.pdf", PDF)
    (tmp_path / "files").rename(tmp_path / "gone")
    (tmp_path / "files").write_bytes(b"not a folder")
    r = upload(world["cand"], chat, "cv.pdf", PDF)
    assert_error(r, 503, "storage_unavailable")
    assert r.headers["retry-after"] == "5"
    r = download(world["cand"], cv["id"])
    assert_error(r, 503, "storage_unavailable")
    assert r.headers["retry-after"] == "5"


def test_a_body_that_is_not_multipart_is_refused_unread(world: World, chat: int) -> None:
    who = world["cand"]
    r = who.client.post(
        f"/api/v1/conversations/{chat}/attachments",
        content=b"file=" + b"x" * 100_000,
        headers={**who.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(r, 415, "unsupported_media_type")
