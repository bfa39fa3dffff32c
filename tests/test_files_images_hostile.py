"""Crafted and oversized images: refused with a clear error, never a 500, and never allowed
to take hundreds of megabytes or seconds of CPU (the security review's repros)."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from tests.files_support import download, upload
from tests.support import World, assert_error, body, start


@pytest.fixture
def chat(world: World) -> int:
    return start(world["emp_team"], "application", application="app1")


def _gif_frame(delay: int) -> bytes:
    control = b"\x21\xf9\x04\x00" + struct.pack("<H", delay) + b"\x00\x00"
    return control + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"


def _gif(frames: int, delay: int) -> bytes:
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    return header + _gif_frame(delay) * frames + b"\x3b"


def test_identical_frames_of_the_longest_delay_are_taken(world: World, chat: int) -> None:
    # 66 bytes: Pillow merges the two frames and sums their delays past GIF's 16 bits (a 500).
    data = _gif(2, 0xFFFF)
    assert len(data) == 66
    answer = body(upload(world["cand"], chat, "long.gif", data), 201)
    image = Image.open(io.BytesIO(download(world["cand"], answer["id"]).content))
    assert image.size == (1, 1)


def test_more_than_100_frames_are_refused(world: World, chat: int) -> None:
    body(upload(world["cand"], chat, "ok.gif", _gif(100, 1)), 201)
    r = upload(world["cand"], chat, "many.gif", _gif(101, 1))
    assert_error(r, 413, "payload_too_large")
    assert "frames" in r.json()["error"]["message"]


def test_an_animation_over_40_megapixels_in_all_is_refused(world: World, chat: int) -> None:
    out = io.BytesIO()
    frames = [Image.new("P", (2000, 2000), i) for i in range(11)]  # 44 MP in a few KB
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    assert_error(upload(world["cand"], chat, "big.gif", out.getvalue()), 413, "payload_too_large")


def test_a_still_over_40_megapixels_is_refused(world: World, chat: int) -> None:
    out = io.BytesIO()
    Image.new("1", (7000, 7000)).save(out, "PNG")  # 49 MP, under Pillow's own guard
    assert_error(upload(world["cand"], chat, "big.png", out.getvalue()), 413, "payload_too_large")
