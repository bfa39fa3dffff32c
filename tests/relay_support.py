"""A TCP relay on loopback, in front of a real server (PostgreSQL), that a test cuts and restores.

The shared PostgreSQL server must keep running for everyone else, so an outage is made here:
``cut()`` closes every relayed connection and stops listening (a new connection is refused:
nothing listens on the port), ``restore()`` listens on the same port again. ``hang()`` is the
nastier outage: connections are taken (by the kernel) and never answered. ``stall(n)`` holds
the next ``n`` connections silent (accepted, never relayed) and relays the ones after;
``accepted`` counts the connections taken, ``sent`` the bytes relayed from clients to the server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.support import free_port


@pytest.fixture
def relay(database_url: str) -> Iterator[Relay]:
    """A relay in front of the test's PostgreSQL server (import it into the test module)."""
    url = make_url(database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield relay
    finally:
        relay.close()


def through(relay: Relay, database_url: str) -> str:
    """The database URL, by way of the relay."""
    return make_url(database_url).set(port=relay.port).render_as_string(hide_password=False)


class Relay:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._black_hole: socket.socket | None = None
        self._stalling = 0
        self.accepted = 0
        self.sent = 0
        self.restore()

    @property
    def up(self) -> bool:
        return self._listener is not None

    def restore(self) -> None:
        self._close_black_hole()
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            relayed, self._open = self._open, set()
        for sock in relayed:
            _close(sock)

    def hang(self) -> None:
        """Cut, then listen without ever accepting: a connection attempt waits for an answer
        that never comes (a database host that stopped answering)."""
        self.cut()
        hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hole.bind(("127.0.0.1", self.port))
        hole.listen(128)
        self._black_hole = hole

    def stall(self, connections: int) -> None:
        with self._lock:
            self._stalling = connections

    def close(self) -> None:
        self.cut()
        self._close_black_hole()

    def _close_black_hole(self) -> None:
        hole, self._black_hole = self._black_hole, None
        if hole is not None:
            hole.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            with self._lock:
                self.accepted += 1
                stalled = self._stalling > 0
                if stalled:
                    self._stalling -= 1
                    self._open.add(client)  # held silent until cut or closed
            if stalled:
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._open |= {client, upstream}
            for source, sink, upward in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pipe, args=(source, sink, upward), daemon=True
                ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        try:
            while data := source.recv(65536):
                if upward:
                    with self._lock:
                        self.sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {source, sink}
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
