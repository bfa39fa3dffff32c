"""How event-stream frames go over the wire: uvicorn's WebSocket protocol, with permessage-deflate
set for sockets that live for hours and mostly idle.

uvicorn's own setting keeps a zlib compressor and decompressor per socket for its whole life
(context takeover), about 38 KiB each even when no frame has been sent for an hour: at 10,000
sockets, most of the server's memory. Here both sides are asked to compress each message on its
own (``server_no_context_takeover`` and ``client_no_context_takeover``, RFC 7692 section 7.1.1),
so a socket keeps no zlib state between messages. That costs some ratio on a long stream of
similar frames, which is small for frames of a few hundred bytes of JSON.

It also makes a compressed message a function of its bytes alone, so a frame sent to many
sockets (a message to its conversation's members) is compressed once and the result reused:
``SharedCompressor`` remembers the last few it compressed. It only ever answers a socket with
the compressed form of the exact bytes that socket is sending, so it cannot show anyone
anything. Frames too small to gain (heartbeats, pongs, presence) go uncompressed, which
permessage-deflate allows message by message.

The contract does not mention compression: a client that offers no permessage-deflate gets
plain frames, as before.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.typing import ExtensionParameter

# Our sliding window and memory level while compressing one message: a frame is a few hundred
# bytes to a few KiB, so a 4 KiB window finds what repeats inside it.
WINDOW_BITS = 12
MEM_LEVEL = 5
# Below this many bytes a frame goes as it is: deflate's framing eats most of the gain.
MIN_COMPRESS_BYTES = 160
# Compressed frames remembered for reuse. A message's frames are all sent within one dispatch,
# so a few dozen cover every distinct frame of the events in flight.
SHARED_FRAMES = 64
# Larger frames (a long message) are compressed but not remembered, so what is remembered stays
# under SHARED_FRAMES * 2 * this.
SHARED_MAX_BYTES = 16 * 1024
_EMPTY_BLOCK = b"\x00\x00\xff\xff"


class SharedCompressor:
    """Compresses a message on its own (no context kept), remembering the last results."""

    __slots__ = ("_recent", "_size")

    def __init__(self, size: int = SHARED_FRAMES) -> None:
        self._recent: dict[bytes, bytes] = {}
        self._size = size

    def compress(self, data: bytes) -> bytes:
        found = self._recent.get(data)
        if found is None:
            encoder = zlib.compressobj(wbits=-WINDOW_BITS, memLevel=MEM_LEVEL)
            found = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
            # A sync flush ends with an empty stored block, which the receiver adds back.
            assert found.endswith(_EMPTY_BLOCK)
            found = found[:-4]
            if len(data) > SHARED_MAX_BYTES:
                return found
            if len(self._recent) >= self._size:
                del self._recent[next(iter(self._recent))]  # the oldest
            self._recent[data] = found
        return found


# One per process: the protocol objects all run on the server's event loop.
SHARED = SharedCompressor()


class StreamDeflate(PerMessageDeflate):
    """permessage-deflate that keeps no compressor and compresses through ``SHARED``."""

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY) or not frame.fin:
            return frame  # control frames; we never fragment a message
        if len(frame.data) < MIN_COMPRESS_BYTES:
            return frame
        data = SHARED.compress(bytes(frame.data))
        return Frame(frame.opcode, data, True, True, frame.rsv2, frame.rsv3)


class StreamDeflateFactory(ServerPerMessageDeflateFactory):
    """Negotiates no context takeover both ways, and hands out ``StreamDeflate``."""

    def __init__(self) -> None:
        super().__init__(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=WINDOW_BITS,
            client_max_window_bits=WINDOW_BITS,
        )

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, agreed = super().process_request_params(params, accepted_extensions)
        # With no context takeover on our side the library made no compressor, and
        # StreamDeflate never makes one; its decompressor is made per message and dropped.
        ours = StreamDeflate(
            agreed.remote_no_context_takeover,
            agreed.local_no_context_takeover,
            agreed.remote_max_window_bits,
            agreed.local_max_window_bits,
        )
        return response, ours


class _Inbox:
    """The part of ``asyncio.Queue`` uvicorn's protocol uses for what the client sent, without
    the queue's three deques (760 bytes each, on every socket for its whole life)."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        _wake_all(self._waiters)
        self._waiters = None

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter
        return self._items.pop(0)


class _Flag:
    """The part of ``asyncio.Event`` uvicorn's protocol uses for "the transport takes more",
    without the event's deque."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._set = True
        _wake_all(self._waiters)
        self._waiters = None

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter


def _wake_all(waiters: list[asyncio.Future[None]] | None) -> None:
    for waiter in waiters or ():
        if not waiter.done():
            waiter.set_result(None)


class StreamProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (websockets, sans-I/O), lighter for sockets that live long:
    ``StreamDeflateFactory`` for compression, ``_Inbox`` and ``_Flag`` for its queue and
    event, and the handshake's request and response let go once the socket is accepted."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: Any = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        if config.ws_per_message_deflate:
            self.conn = ServerProtocol(
                extensions=[StreamDeflateFactory()],
                max_size=config.ws_max_size,
                logger=self.logger,
            )

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Only the handshake reads these; the scope keeps the request's headers.
            self.__dict__.pop("request", None)
            self.__dict__.pop("response", None)
            # The server's parser is a generator that read the handshake request and goes on
            # parsing frames with the request still among its locals (2-3 KB of headers, for
            # the socket's whole life). A client sends no frame before it has our answer, so
            # nothing is buffered yet, and a frame parser of its own picks up where it would.
            conn = self.conn
            if not conn.reader.buffer and conn.parser_exc is None:
                conn.parser = Protocol.parse(conn)
                next(conn.parser)
