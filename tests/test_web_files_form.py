"""The composer's form post without our script, at its edges: a real CV fits through the
body limit, more than a message's files are refused before any is stored, storage down is
the API's 503 with nothing left behind, and a resubmitted form is a success, not a 409.
On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.files_support import PDF
from tests.support import World, body, start
from tests.web_support import ORIGIN, Browser

Files = list[tuple[str, tuple[str, bytes, str]]]


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def _post(tess: Browser, chat: int, files: Files, **fields: str) -> tuple[int, str, str]:
    r = tess.client.post(
        f"/conversations/{chat}/messages",
        data={"csrf": tess.csrf, "body": "My CV", "channel": "app", **fields},
        files=files,
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    return r.status_code, r.text, r.headers.get("retry-after", "")


def _items(world: World, chat: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = body(
        world["cand"].get(f"/api/v1/conversations/{chat}/messages"), 200
    )["items"]
    return items


def _stored(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "files"
    return list(folder.rglob("*")) if folder.is_dir() else []


def test_a_200_kb_cv_goes_through_the_form(tess: Browser, world: World, chat: int) -> None:
    cv = PDF + b"%" + b"x" * 200_000 + b"\n"  # over the general 64 KiB request limit
    status, text, _ = _post(tess, chat, [("file", ("cv.pdf", cv, "application/pdf"))])
    assert status == 303, text
    last = _items(world, chat)[-1]
    assert [a["size"] for a in last["attachments"]] == [len(cv)]  # type: ignore[attr-defined]


def test_more_than_ten_files_are_refused_before_any_is_stored(
    tess: Browser, world: World, chat: int, tmp_path: Path
) -> None:
    count = len(_items(world, chat))
    files: Files = [("file", (f"cv{i}.pdf", PDF, "application/pdf")) for i in range(11)]
    status, text, _ = _post(tess, chat, files)
    assert status == 422, text
    assert "at most 10 files" in text
    assert len(_items(world, chat)) == count
    assert [p for p in _stored(tmp_path) if p.is_file()] == []


def test_storage_down_is_503_with_nothing_sent(
    tess: Browser, world: World, chat: int, tmp_path: Path
) -> None:
    count = len(_items(world, chat))
    (tmp_path / "files").write_bytes(b"not a folder")  # the storage cannot be written
    status, text, retry = _post(tess, chat, [("file", ("cv.pdf", PDF, "application/pdf"))])
    assert status == 503, text
    assert retry == "5"
    assert len(_items(world, chat)) == count


def test_a_resubmitted_form_is_a_success_and_stores_nothing_again(
    tess: Browser, world: World, chat: int, tmp_path: Path
) -> None:
    files: Files = [("file", ("cv.pdf", PDF, "application/pdf"))]
    assert _post(tess, chat, files, idempotency_key="form-key-123456")[0] == 303
    stored = [p for p in _stored(tmp_path) if p.is_file()]
    count = len(_items(world, chat))
    status, text, _ = _post(tess, chat, files, idempotency_key="form-key-123456")
    assert status == 303, text
    assert len(_items(world, chat)) == count
    assert [p for p in _stored(tmp_path) if p.is_file()] == stored
