"""Revocation across server processes: real ``jobchat serve`` processes on one PostgreSQL
database and one Redis (the servers of tests/test_stream_e2e.py, under a Redis prefix of this
module's own). A token revoked, or a person deactivated, through process A gets 401 on process B
at once (B had just accepted the token, and remembers tokens for 5 s), and the sockets it opened
on B are closed with 4401. Process C shares the database but not the Redis prefix, so the news
reaches it only through the ``access.revoked`` event in the table: the fallback when the bus
loses a message. (One process: tests/test_tokens.py and tests/test_deactivation.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.test_stream_e2e import (
    NEEDS_PG,
    Backend,
    Caller,
    Cast,
    Server,
    Sockets,
    backend,
    cluster,
    is_type,
    launch,
    server_a,
    server_b,
    sockets,
)

# The fixtures, used by name: this module gets servers of its own.
__all__ = ["backend", "cluster", "server_a", "server_b", "sockets"]

pytestmark = pytest.mark.slow

CLOSE_WAIT = 15.0  # a generous deadline: a close that comes costs nothing


@pytest.fixture(scope="module")
def server_c(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Beside A and B on the database, deaf to their Redis channels; it reads the event table
    twice a second unwoken."""
    if backend.redis_url is None:
        pytest.skip(NEEDS_PG)
    alone = replace(backend, redis_prefix=f"{backend.redis_prefix}-deaf-{uuid.uuid4().hex[:6]}")
    server = launch("C", alone, tmp_path_factory.mktemp("server-c"), stream_poll_seconds="0.5")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def issue(cast: Cast, role: str) -> tuple[int, Caller]:
    """A fresh token for ``role`` (through A): its id, and a caller with it."""
    kind = "candidates" if role.startswith("cand") else "users"
    issued = cast.integration.ok("POST", f"/api/v1/{kind}/{cast.ext(role)}/tokens")
    return issued["id"], Caller(cast.server, issued["token"], cast.ext(role))


def test_a_token_revoked_through_one_process_fails_at_once_on_the_others(
    server_a: Server, server_b: Server, server_c: Server, sockets: Sockets
) -> None:
    cast = Cast(server_a)
    token_id, tess = issue(cast, "emp_team")
    colleague = cast.user("emp_team")  # the same person's other token
    for server in (server_a, server_b, server_c):
        # Used on every process: each remembers it now.
        assert tess.on(server).request("GET", "/api/v1/me").status_code == 200
    on_b, _, _ = sockets.follow(server_b, tess)
    on_c, _, _ = sockets.follow(server_c, tess)
    kept, _, _ = sockets.follow(server_b, colleague)

    revoked = cast.integration.request("DELETE", f"/api/v1/tokens/{token_id}")
    assert revoked.status_code == 204, revoked.text

    # At once: the very next request on B, which accepted the token a moment ago.
    assert tess.on(server_b).request("GET", "/api/v1/me").status_code == 401
    assert tess.on(server_a).request("GET", "/api/v1/me").status_code == 401
    code, _ = on_b.closed(CLOSE_WAIT)
    assert code == 4401, on_b.close_reason
    # C never heard it on the bus: the stored event closed its socket.
    code, _ = on_c.closed(CLOSE_WAIT)
    assert code == 4401, server_c.output()[-3000:]
    assert tess.on(server_c).request("GET", "/api/v1/me").status_code == 401
    # The person's other token, and its socket, carry on.
    assert colleague.on(server_b).request("GET", "/api/v1/me").status_code == 200
    kept.send({"type": "ping"})
    kept.take(is_type("pong"), "pong")


def test_a_person_deactivated_through_one_process_is_shut_out_of_the_others(
    server_a: Server, server_b: Server, sockets: Sockets
) -> None:
    cast = Cast(server_a)
    admin = cast.user("emp_admin")
    cand = cast.user("cand")
    chat = admin.start("application", application=cast.ext("app1"))
    assert cand.on(server_b).request("GET", "/api/v1/me").status_code == 200
    cand_socket, _, _ = sockets.follow(server_b, cand.on(server_b))
    admin_socket, _, _ = sockets.follow(server_b, admin.on(server_b))

    gone = cast.integration.request("DELETE", f"/api/v1/candidates/{cast.ext('cand')}")
    assert gone.status_code == 204, gone.text

    assert cand.on(server_b).request("GET", "/api/v1/me").status_code == 401
    code, _ = cand_socket.closed(CLOSE_WAIT)
    assert code == 4401
    left = admin_socket.take(
        lambda f: f["type"] == "member.removed" and f["conversation"] == chat,
        "the candidate leaving",
        CLOSE_WAIT,
    )
    assert left["data"]["member"]["id"] == cast.ext("cand")
