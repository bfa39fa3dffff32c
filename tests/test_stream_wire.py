"""The event stream's wire protocol (jobchat/realtime/wire.py): uvicorn with permessage-deflate
that keeps no compression state on an idle socket, and frames compressed once however many
sockets they go to."""

from __future__ import annotations

import asyncio
import socket
import zlib
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import PerMessageDeflate

from jobchat.realtime.wire import (
    MIN_COMPRESS_BYTES,
    SHARED_MAX_BYTES,
    WINDOW_BITS,
    SharedCompressor,
    StreamProtocol,
)

BIG = '{"id":1,"type":"message.created","data":{"body":"' + "hello there " * 40 + '"}}'
SMALL = '{"id":null,"type":"pong","conversation":null,"data":{"head":7}}'


def inflate(data: bytes) -> bytes:
    decoder = zlib.decompressobj(wbits=-WINDOW_BITS)
    return decoder.decompress(data + b"\x00\x00\xff\xff")


def test_a_frame_is_compressed_on_its_own_and_once() -> None:
    shared = SharedCompressor(size=2)
    first = shared.compress(BIG.encode())
    assert inflate(first) == BIG.encode()
    assert len(first) < len(BIG)
    # The same bytes again (another socket's copy of the frame): the same result, not redone.
    assert shared.compress(BIG.encode()) is first
    other = (BIG + " ").encode()
    assert inflate(shared.compress(other)) == other
    # Only the last few are remembered.
    shared.compress(b"x" * 300)
    assert shared.compress(BIG.encode()) is not first
    assert inflate(shared.compress(BIG.encode())) == BIG.encode()
    # A long frame is compressed, and not kept.
    long = b"y" * (SHARED_MAX_BYTES + 1)
    assert inflate(shared.compress(long)) == long
    assert shared.compress(long) is not shared.compress(long)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, then answers every text frame with BIG and SMALL."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        assert message["text"] == "hi " * 100
        await send({"type": "websocket.send", "text": BIG})
        await send({"type": "websocket.send", "text": SMALL})


async def exchange(compression: str | None) -> dict[str, Any]:
    port = free_port()
    config = uvicorn.Config(
        echo_app, host="127.0.0.1", port=port, ws=StreamProtocol, lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with connect(f"ws://127.0.0.1:{port}/", compression=compression, proxy=None) as ws:
            await ws.send("hi " * 100)
            received = [await ws.recv(), await ws.recv()]
            await ws.send("hi " * 100)
            received += [await ws.recv(), await ws.recv()]
            # The server's side of this socket, now idle between messages.
            (protocol,) = server.server_state.connections
            assert isinstance(protocol, StreamProtocol)
            return {
                "received": received,
                "client": list(ws.protocol.extensions),
                "server": list(protocol.conn.extensions),
            }
    finally:
        server.should_exit = True
        await serving


def test_compressed_both_ways_with_no_state_kept_between_messages() -> None:
    seen = asyncio.run(exchange("deflate"))
    assert seen["received"] == [BIG, SMALL, BIG, SMALL]
    (client,) = seen["client"]
    assert isinstance(client, PerMessageDeflate)
    # The server asked the client, too, to start each message afresh.
    assert client.local_no_context_takeover and client.remote_no_context_takeover
    (server,) = seen["server"]
    assert isinstance(server, PerMessageDeflate)
    # Neither a compressor nor a decompressor outlives a message.
    assert not hasattr(server, "encoder") and not hasattr(server, "decoder")
    assert len(SMALL) < MIN_COMPRESS_BYTES < len(BIG)


def test_a_client_that_offers_no_compression_gets_plain_frames() -> None:
    seen = asyncio.run(exchange(None))
    assert seen["received"] == [BIG, SMALL, BIG, SMALL]
    assert seen["client"] == [] and seen["server"] == []
