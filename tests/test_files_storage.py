"""The same scenarios against both storages: a local folder and an S3-protocol server on
loopback (moto in server mode; no network). Each checks the stored objects through the
storage interface itself, so that "gone" means gone from the store, not just unlisted."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from jobchat.app import create_app
from jobchat.background import build_worker
from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.files.location import S3Location, parse_storage_url
from jobchat.files.storage import Missing, Storage, open_storage
from tests.files_support import PDF, download, image_bytes, phone_photo, s3_endpoint, uploaded
from tests.support import World, assert_error, body, free_port, start

__all__ = ["s3_endpoint"]  # the fixture, for pytest


@pytest.fixture(params=["local", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def settings(
    settings: Settings,
    tmp_path: Path,
    storage_kind: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    if storage_kind == "local":
        yield settings.model_copy(update={"storage_url": f"file://{tmp_path}/files"})
        return
    endpoint: str = request.getfixturevalue("s3_endpoint")
    # The standard AWS credential chain: here, the environment.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"jobchat-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    yield settings.model_copy(
        update={"storage_url": f"s3://{bucket}/attachments", "s3_endpoint_url": endpoint}
    )


@pytest.fixture
def storage(client: TestClient) -> Storage:
    found: Storage = client.app.state.jobchat.storage  # type: ignore[attr-defined]
    return found


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def keys(storage: Storage, settings: Settings) -> set[str]:
    """Every object the store holds."""
    location = parse_storage_url(settings.storage_url)
    if isinstance(location, S3Location):
        listed = boto3.client("s3", endpoint_url=settings.s3_endpoint_url).list_objects_v2(
            Bucket=location.bucket
        )
        return {o["Key"].removeprefix(location.prefix) for o in listed.get("Contents", [])}
    folder = Path(settings.storage_url.removeprefix("file://"))
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def drain(client: TestClient) -> int:
    worker = build_worker(client.app.state.mail, name="test")  # type: ignore[attr-defined]
    return asyncio.run(worker.drain())


def test_upload_send_download(
    world: World, chat: int, storage: Storage, settings: Settings
) -> None:
    cv = uploaded(world["cand"], chat, "cv.pdf", PDF)
    body(world["cand"].send(chat, "CV", attachments=[cv["id"]]), 201)
    got = download(world["emp_team"], cv["id"])
    assert got.content == PDF
    assert got.headers["content-length"] == str(len(PDF))
    assert len(keys(storage, settings)) == 1
    if settings.storage_url.startswith("s3://"):
        # Under the URL's prefix, never under the file's name.
        # (Keys are random: a name's "cv" alone may turn up in one by chance.)
        assert all("cv.pdf" not in key for key in keys(storage, settings))


def test_images_are_stored_without_metadata(
    world: World, chat: int, storage: Storage, settings: Settings
) -> None:
    photo = uploaded(world["cand"], chat, "permit.jpg", phone_photo())
    got = download(world["cand"], photo["id"]).content
    assert len(got) == photo["size"]
    assert b"PhoneCo" not in got
    assert len(Image.open(io.BytesIO(got)).getexif()) == 0
    assert len(keys(storage, settings)) == 2  # the image and its thumbnail


def test_ranges(world: World, chat: int) -> None:
    data = bytes(range(32, 127)) * 2000  # printable: a text file of 190 kB
    cv = uploaded(world["cand"], chat, "long.txt", data)
    r = download(world["cand"], cv["id"], Range="bytes=100000-100099")
    assert r.status_code == 206 and r.content == data[100000:100100]
    r = download(world["cand"], cv["id"], Range="bytes=-10")
    assert r.status_code == 206 and r.content == data[-10:]
    r = download(world["cand"], cv["id"], Range="bytes=189990-")
    assert r.status_code == 206 and r.content == data[189990:]
    r = download(world["cand"], cv["id"], Range=f"bytes={len(data)}-")
    assert_error(r, 416)
    assert r.headers["content-range"] == f"bytes */{len(data)}"


def test_deleted_for_everyone_goes_from_the_store(
    world: World, chat: int, client: TestClient, storage: Storage, settings: Settings
) -> None:
    photo = uploaded(world["cand"], chat, "permit.png", image_bytes("PNG"))
    message = body(world["cand"].send(chat, "Permit", attachments=[photo["id"]]), 201)
    before = keys(storage, settings)
    assert len(before) == 2
    r = world["cand"].delete(f"/api/v1/messages/{message['id']}", **{"for": "everyone"})
    assert r.status_code == 204
    assert_error(download(world["emp_team"], photo["id"]), 404, "not_found")
    drain(client)
    assert keys(storage, settings) == set()
    for key in before:
        with pytest.raises(Missing):
            storage.size(key)
        storage.delete(key)  # again: nothing happens


def test_unclaimed_uploads_go_after_a_day(
    world: World,
    chat: int,
    client: TestClient,
    clock: FrozenClock,
    storage: Storage,
    settings: Settings,
) -> None:
    uploaded(world["cand"], chat, "old.pdf", PDF)
    clock.advance(hours=25)
    kept = uploaded(world["cand"], chat, "new.pdf", PDF)
    drain(client)
    assert len(keys(storage, settings)) == 1
    assert download(world["cand"], kept["id"]).content == PDF


def test_the_storage_url_names_the_store(settings: Settings) -> None:
    store = open_storage(settings.storage_url, endpoint_url=settings.s3_endpoint_url)
    from jobchat.files.storage import new_key

    key = new_key()
    size = 9 * 1024 * 1024  # over boto3's multipart threshold: S3 takes it in parts
    store.put(key, io.BytesIO(b"x" * size))
    assert store.size(key) == size
    assert b"".join(store.read(key, size - 10)) == b"x" * 10
    assert b"".join(store.read(key, 5, 5)) == b""
    store.delete(key)
    with pytest.raises(Missing):
        store.size(key)
    with pytest.raises(Missing):
        store.read(key)


def test_a_store_that_cannot_be_used_is_503_and_nothing_is_kept(
    world: World,
    chat: int,
    settings: Settings,
    db: Database,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    if settings.storage_url.startswith("s3://"):
        # Nothing listens there.
        broken = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    else:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the folder should be")
        broken = settings.model_copy(update={"storage_url": f"file://{blocker}"})
    cand = world["cand"]
    with TestClient(create_app(broken, db=db, clock=clock)) as client:
        r = client.post(
            f"/api/v1/conversations/{chat}/attachments",
            files={"file": ("cv.pdf", PDF, "application/pdf")},
            headers=cand.headers,
        )
        assert_error(r, 503, "storage_unavailable")
    # Nothing half-written: no row (the next id is the first), and the working store is fine.
    assert uploaded(cand, chat, "cv.pdf", PDF)["id"] == 1
