"""Running the app under uvicorn."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import resource
import socket

import uvicorn
from fastapi import FastAPI

from jobchat.config import Settings
from jobchat.ops.logs import log_config
from jobchat.proxies import trusted_proxies
from jobchat.realtime.hub import Hub
from jobchat.realtime.wire import StreamProtocol

_TOKEN = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Browsers can only pass a token to a WebSocket in its URL, and uvicorn logs URLs: keep the
    token itself out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


class Server(uvicorn.Server):
    """uvicorn, closing the event-stream sockets first when it stops.

    Left to itself, uvicorn drops open WebSockets with 1012 and no reason, and only then runs
    the app's shutdown. Closing them from the hub first sends every client the reason with the
    code, and lets each handler finish cleanly.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub: Hub | None = getattr(self.app.state, "hub", None)
        if hub is not None:
            await hub.close_all()
        await super().shutdown(sockets)


# The collector's thresholds while serving (CPython's defaults: 700, 10, 10). See below.
GC_THRESHOLDS = (700, 100, 100)


def settle_collector() -> None:
    """Keep the cyclic garbage collector's full collections rare and short while serving.

    Everything alive once the app is built (modules, the app, SQLAlchemy's compiled caches)
    lives for good: frozen, it is no longer walked by every full collection, which took 70-150
    ms here and landed on about one inbox page in 25 (bench/bench_inbox.py).

    What a server gathers later cannot be frozen: 1,000 open event-stream sockets keep well over
    100,000 objects alive, and a full collection of them stops the event loop for about 100 ms
    (130-150 ms while sockets still passed through the HTTP layers: realtime/api.py). CPython
    starts one when the objects promoted out of the middle generation since the last reach a
    quarter of the old ones, and a request in flight during a middle collection is promoted.
    Collecting the middle generation ten times less often promotes ten times less: in
    bench/bench_stream.py, at 100 messages a second, the only full collection after startup was
    the one that follows the sockets' connecting, instead of one every 40 s, while middle
    collections stayed under 20 ms.

    And CPython also waits for ten middle collections between two full ones: at 10,000 sockets
    (about 750,000 objects to walk) one full collection stopped the process for 0.6 s, its
    sends piled up past the write queue's limit (503 ``busy``) and deliveries took seconds to
    catch up (bench_stream.py --sockets 10000). Connecting 10,000 sockets runs enough middle
    collections for several full ones, the last of them often just after. A hundred middle
    collections between full ones (at 100 messages a second, one full collection every hour or
    so rather than every few minutes) makes them that much rarer; the garbage they would have
    found sooner is cycles that outlived two collections, which a server makes little of.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


# With no hard limit at all, the soft one goes this high (the kernel's own cap, fs.nr_open, is
# usually 1,048,576).
OPEN_FILES_WITHOUT_LIMIT = 65_536


def raise_open_files() -> tuple[int, int]:
    """Raise this process's soft limit on open files to its hard limit; returns (soft, hard).

    Every event-stream socket is an open file, and a soft limit of 1,024 (a common default)
    would refuse the 1,025th connection, HTTP included, with "too many open files". The hard
    limit is the administrator's word (``ulimit -Hn``, systemd's ``LimitNOFILE``); the soft one
    is only a default that a process may raise up to it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, OPEN_FILES_WITHOUT_LIMIT)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def serve(app: FastAPI, settings: Settings, host: str, port: int) -> None:
    proxies = trusted_proxies(settings.trusted_proxies)  # checked when the settings loaded
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=log_config(settings),
        # Below INFO nothing of the access log is written, but uvicorn would still make each
        # line's client address and quoted path for the logger to drop (0.7% of a send's CPU,
        # bench/bench_send.py --py-spy); off, it makes none.
        access_log=logging.getLevelNamesMapping()[settings.log_level] <= logging.INFO,
        # Client frames are small (typing, presence, ping); protocol pings find dead peers.
        # Compression that keeps no state on idle sockets (realtime/wire.py).
        ws=StreamProtocol,
        ws_max_size=settings.max_request_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=10,
        # The client's address and scheme from X-Forwarded-For/-Proto, only when the peer is a
        # proxy we were told to trust. uvicorn's own default believes any loopback peer.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        # Both pinned dependencies: libuv's loop and the C HTTP parser cost the server less
        # CPU per request than asyncio's loop and h11 (bench/bench_send.py --concurrency).
        loop="uvloop",
        http="httptools",
    )
    settle_collector()
    raise_open_files()
    server = Server(config, app)
    # uvicorn configures its loggers when the config loads; the filter goes on after that.
    config.load()
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactTokens())
    server.run()
