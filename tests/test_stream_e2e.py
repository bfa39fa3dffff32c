"""The event stream (``GET /api/v1/events``) end to end: real ``jobchat serve`` processes, spoken
to over loopback with httpx and the ``websockets`` client, as a deployment would be.

Servers start once per module on one database: a temporary SQLite file, or, when the suite runs
on PostgreSQL (JOBCHAT_TEST_DATABASE_URL), that database, migrated and emptied first. On
PostgreSQL two processes (A and B) share it and a Redis (JOBCHAT_TEST_REDIS_URL, default
redis://127.0.0.1:6379/0) under a prefix of this run's own; the tests that need two processes
are skipped on SQLite. Every test seeds its own cast (ids carry a fresh tag) through the
integration API, so tests do not see each other's conversations.

The servers poll the event table only every 30 s (JOBCHAT_STREAM_POLL_SECONDS), so a frame that
arrives promptly came through the commit hook or the Redis nudge, not the fallback poll.

"Nothing else arrived" is checked with a barrier: once a member's socket has seen an event, its
process has routed that event to every socket it holds (routing is one event at a time, in id
order, on one loop), so a ``ping`` sent afterwards on another socket of that process is answered
after anything that event put in that socket's queue.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from jobchat.config import Settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.db.models import Base
from tests.support import (
    API_KEY,
    ServedProcess,
    assert_error,
    free_port,
    spawn_serve,
    stop,
    wait_until_serving,
)

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("JOBCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NEEDS_PG = "two server processes need PostgreSQL and Redis: set JOBCHAT_TEST_DATABASE_URL"

# How long an expected frame may take to arrive. Generous: a miss costs this much, a hit nothing.
WAIT = 5.0

Frame = dict[str, Any]


class NoFrame(AssertionError):
    """An expected frame did not arrive in time."""


# --- servers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """Where the servers keep their state."""

    database_url: str
    redis_url: str | None
    redis_prefix: str


@dataclass
class Server(ServedProcess):
    name: str

    def ws_url(self, **params: str | int | None) -> str:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"ws://127.0.0.1:{self.port}/api/v1/events" + (f"?{query}" if query else "")

    def wait_ready(self) -> None:
        response = wait_until_serving(self.process, self.base, self.output)
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            stop(self.process)
        self.log.close()


def launch(name: str, backend: Backend, workdir: Path, **settings: str) -> Server:
    """Start ``jobchat serve`` on a free port (call ``wait_ready`` before using it)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": backend.database_url,
        "JOBCHAT_API_KEY": API_KEY,
        "JOBCHAT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "JOBCHAT_SEND_RATE_PER_MINUTE": "100000",
        "JOBCHAT_STREAM_POLL_SECONDS": "30",
    }
    if backend.redis_url:
        env |= {
            "JOBCHAT_REDIS_URL": backend.redis_url,
            "JOBCHAT_REDIS_PREFIX": backend.redis_prefix,
        }
    env |= {f"JOBCHAT_{key.upper()}": value for key, value in settings.items()}
    workdir.mkdir(parents=True, exist_ok=True)  # also keeps any ./.env out of the servers' way
    process, log = spawn_serve(port, env, workdir, f"{name}.log")
    return Server(port=port, process=process, log=log, name=name)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if not PG_URL:
        path = tmp_path_factory.mktemp("stream-e2e") / "jobchat.db"
        yield Backend(f"sqlite:///{path}", None, "unused")
        return
    # The servers migrate on start, but two starting at once would race; and an emptied schema
    # restarts event ids, which a running server would not expect. So: migrate, empty, then serve.
    db = Database(Settings(database_url=PG_URL, _env_file=None).sqlalchemy_url)
    try:
        upgrade(db.engine)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        db.dispose()
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} (JOBCHAT_TEST_REDIS_URL) does not answer: {exc}")
    prefix = f"jobchat-e2e-{uuid.uuid4().hex}"
    try:
        yield Backend(PG_URL, REDIS_URL, prefix)
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()


@dataclass
class Cluster:
    a: Server
    b: Server | None


@pytest.fixture(scope="module")
def cluster(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Server A, and on PostgreSQL server B beside it (same database, same Redis prefix)."""
    workdir = tmp_path_factory.mktemp("servers")
    servers = [launch("A", backend, workdir)]
    if backend.redis_url:
        servers.append(launch("B", backend, workdir))
    try:
        for server in servers:
            server.wait_ready()
        yield Cluster(servers[0], servers[1] if len(servers) > 1 else None)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def server_a(cluster: Cluster) -> Server:
    return cluster.a


@pytest.fixture
def server_b(cluster: Cluster) -> Server:
    if cluster.b is None:
        pytest.skip(NEEDS_PG)
    return cluster.b


@pytest.fixture(params=["one process", "two processes"])
def pair(request: pytest.FixtureRequest, cluster: Cluster) -> tuple[Server, Server]:
    """(first, second): the same server, or A and B."""
    if request.param == "one process":
        return cluster.a, cluster.a
    if cluster.b is None:
        pytest.skip(NEEDS_PG)
    return cluster.a, cluster.b


@pytest.fixture
def aux_dir(tmp_path: Path) -> Path:
    return tmp_path / "aux"


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Requests with one bearer token to one server."""

    server: Server
    token: str
    ext: str = ""

    def on(self, server: Server) -> Caller:
        return Caller(server, self.token, self.ext)

    def request(self, method: str, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self.server.http.request(
            method,
            path,
            json=json,
            params=params or None,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def ok(self, method: str, path: str, json: Any = None, **params: Any) -> dict[str, Any]:
        response = self.request(method, path, json, **params)
        assert response.status_code in (200, 201), (method, path, response.text)
        body: dict[str, Any] = response.json()
        return body

    def start(self, kind: str, **refs: str) -> int:
        conv_id: int = self.ok("POST", "/api/v1/conversations", {"kind": kind, **refs})["id"]
        return conv_id

    def send(self, conv: int, body: str = "Hello") -> dict[str, Any]:
        return self.ok("POST", f"/api/v1/conversations/{conv}/messages", {"body": body})


NAMES = {
    "emp_admin": "Ada Admin",
    "emp_team": "Tess Team",
    "emp_other": "Otto Other",
    "other_emp": "Gus Globex",
    "sp_in": "Sam Partner",
    "sp_out": "Cora Outside",
    "agency_user": "Aggie Agent",
    "agency_other": "Alex Otheragent",
    "cand": "Carla Candidate",
    "cand2": "Dan Candidate",
}


class Cast:
    """``tests.support.build_world``'s cast, seeded over HTTP, every id carrying a fresh tag.

    acme (employer) has job ``job1`` with team [emp_team] and partners tbb (source partner of
    cand) and hireco (agency); emp_admin is an acme admin, emp_other an acme member off the
    team; other_emp is at globex; sp_in is at tbb, sp_out at crs; agency_user and agency_other
    are at hireco. ``app1``: cand on job1 at offer_accepted (stage owner emp_team, agency user
    agency_user); ``app2``: cand2 (source partner crs) on job1 at interview.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.tag = f"e2e{uuid.uuid4().hex[:10]}"
        self.integration = Caller(server, API_KEY)
        self._tokens: dict[str, str] = {}
        put = self.put
        for org, name, kind in [
            ("acme", "Acme Health", "employer"),
            ("globex", "Globex", "employer"),
            ("tbb", "Talent Beyond Boundaries", "source_partner"),
            ("crs", "CRS", "source_partner"),
            ("hireco", "HireCo Recruiting", "agency"),
        ]:
            put("organizations", org, {"name": name, "kind": kind})
        for role, org, admin in [
            ("emp_admin", "acme", True),
            ("emp_team", "acme", False),
            ("emp_other", "acme", False),
            ("other_emp", "globex", True),
            ("sp_in", "tbb", False),
            ("sp_out", "crs", False),
            ("agency_user", "hireco", False),
            ("agency_other", "hireco", False),
        ]:
            put(
                "users",
                role,
                {
                    "name": NAMES[role],
                    "email": f"{self.ext(role)}@example.com",
                    "organization": self.ext(org),
                    "role": "admin" if admin else "member",
                },
            )
        for role, partner in [("cand", "tbb"), ("cand2", "crs")]:
            put(
                "candidates",
                role,
                {
                    "name": NAMES[role],
                    "email": f"{self.ext(role)}@example.org",
                    "source_partner": self.ext(partner),
                },
            )
        put(
            "jobs",
            "job1",
            {
                "title": "Registered Nurse",
                "employer": self.ext("acme"),
                "team": [self.ext("emp_team")],
                "partners": [self.ext("tbb"), self.ext("hireco")],
            },
        )
        self.stage(
            "app1",
            "cand",
            "offer_accepted",
            stage_owner=self.ext("emp_team"),
            agency_user=self.ext("agency_user"),
        )
        self.stage("app2", "cand2", "interview")

    def ext(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def put(self, collection: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.integration.ok("PUT", f"/api/v1/{collection}/{self.ext(name)}", body)

    def stage(self, app: str, cand: str, stage: str, **extra: str) -> None:
        body = {"job": self.ext("job1"), "candidate": self.ext(cand), "stage": stage}
        self.put("applications", app, body | extra)

    def user(self, role: str, server: Server | None = None) -> Caller:
        """A caller acting as ``role`` (one token per role, issued on first use)."""
        if role not in self._tokens:
            kind = "candidates" if role.startswith("cand") else "users"
            path = f"/api/v1/{kind}/{self.ext(role)}/tokens"
            self._tokens[role] = self.integration.ok("POST", path)["token"]
        return Caller(server or self.server, self._tokens[role], self.ext(role))

    def public(self, role: str) -> dict[str, str]:
        """The user as presence and typing frames name them."""
        kind = "candidate" if role.startswith("cand") else "staff"
        return {"id": self.ext(role), "name": NAMES[role], "kind": kind}


# --- sockets ------------------------------------------------------------------------------------


def is_type(type_: str) -> Callable[[Frame], bool]:
    return lambda frame: frame["type"] == type_


def created(message: int) -> Callable[[Frame], bool]:
    return lambda frame: frame["type"] == "message.created" and frame["data"]["id"] == message


def stored(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["id"] is not None]


def summary(frames: list[Frame]) -> list[tuple[Any, str, Any]]:
    return [(f["id"], f["type"], f["conversation"]) for f in frames]


def close_code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd is not None else None


class Stream:
    """One client socket, read selectively: frames read while looking for another one wait in
    ``inbox`` for a later look."""

    def __init__(self, ws: ClientConnection, label: str) -> None:
        self.ws = ws
        self.label = label
        self.inbox: list[Frame] = []
        self.close_reason: str | None = None

    def _read(self, deadline: float, what: str) -> Frame:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            raw = self.ws.recv(timeout=left)
        except TimeoutError:
            raise NoFrame(
                f"{self.label}: no {what} in time; unconsumed: {summary(self.inbox)}"
            ) from None
        frame = json.loads(raw)
        assert isinstance(frame, dict), raw
        assert set(frame) - {"unread"} == {"id", "type", "conversation", "data"}, frame
        return frame

    def upto(self, match: Callable[[Frame], bool], what: str, timeout: float = WAIT) -> list[Frame]:
        """Every frame up to and including the first that matches (all consumed)."""
        deadline = time.monotonic() + timeout
        while not any(match(f) for f in self.inbox):
            self.inbox.append(self._read(deadline, what))
        end = next(i for i, f in enumerate(self.inbox) if match(f)) + 1
        frames, self.inbox = self.inbox[:end], self.inbox[end:]
        return frames

    def take(self, match: Callable[[Frame], bool], what: str, timeout: float = WAIT) -> Frame:
        """The first frame that matches; the others stay in the inbox."""
        deadline = time.monotonic() + timeout
        while True:
            for i, frame in enumerate(self.inbox):
                if match(frame):
                    return self.inbox.pop(i)
            self.inbox.append(self._read(deadline, what))

    def take_stored(self, count: int, timeout: float = WAIT) -> list[Frame]:
        deadline = time.monotonic() + timeout
        return [
            self.take(
                lambda f: f["id"] is not None,
                f"stored frame {i + 1} of {count}",
                max(deadline - time.monotonic(), 0),
            )
            for i in range(count)
        ]

    def barrier(self) -> list[Frame]:
        """Ping, wait for the pong, and return (consuming) everything not consumed before it."""
        self.send({"type": "ping"})
        self.take(is_type("pong"), "pong")
        rest, self.inbox = self.inbox, []
        return rest

    def send(self, frame: Frame) -> None:
        self.ws.send(json.dumps(frame))

    def closed(self, timeout: float = WAIT) -> tuple[int | None, list[Frame]]:
        """Read until the server closes the socket: (close code, frames read before it)."""
        deadline = time.monotonic() + timeout
        frames: list[Frame] = []
        try:
            while True:
                frames.append(self._read(deadline, f"close (after {len(frames)} frames)"))
        except ConnectionClosed as exc:
            self.close_reason = exc.rcvd.reason if exc.rcvd is not None else None
            return close_code(exc), frames

    def close(self) -> None:
        self.ws.close()


def open_socket(
    server: Server,
    token: str | None = None,
    *,
    after: int | str | None = None,
    query_token: str | None = None,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    **options: Any,
) -> ClientConnection:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    settings: dict[str, Any] = {"open_timeout": 10, "close_timeout": 3, "ping_interval": None}
    return connect(
        server.ws_url(after=after, token=query_token),
        additional_headers=all_headers,
        origin=Origin(origin) if origin is not None else None,
        proxy=None,
        legacy=True,
        **(settings | options),
    )


def refused(server: Server, token: str | None = None, **kwargs: Any) -> httpx.Response:
    """Assert the handshake is refused; its HTTP answer, as an httpx response."""
    with pytest.raises(InvalidStatus) as info:
        open_socket(server, token, **kwargs).close()
    answer = info.value.response
    return httpx.Response(
        answer.status_code, headers=list(answer.headers.raw_items()), content=bytes(answer.body)
    )


class Sockets:
    """Opens streams for a test and closes them all at its end."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []

    def open(self, server: Server, who: Caller | None = None, **kwargs: Any) -> Stream:
        token = who.token if who is not None else None
        label = f"{who.ext if who else 'anonymous'}@{server.name}"
        stream = Stream(open_socket(server, token, **kwargs), label)
        self.streams.append(stream)
        return stream

    def follow(
        self, server: Server, who: Caller, *, after: int | None = None, **kwargs: Any
    ) -> tuple[Stream, list[Frame], Frame]:
        """Connect and read up to ``ready``: (stream, the frames before it, the ready frame)."""
        stream = self.open(server, who, after=after, **kwargs)
        frames = stream.upto(is_type("ready"), "ready")
        backlog, ready = frames[:-1], frames[-1]
        assert all(f["id"] is not None for f in backlog), summary(backlog)
        assert ready["data"]["resumed_after"] == after, ready
        assert ready["data"]["replayed"] == len(backlog), (ready, summary(backlog))
        return stream, backlog, ready

    def close_all(self) -> None:
        for stream in self.streams:
            stream.close()


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    opened = Sockets()
    try:
        yield opened
    finally:
        opened.close_all()


# --- 1. who receives what -----------------------------------------------------------------------

E = {"emp_admin", "emp_team"}
# kind -> (refs by cast name, who starts it, who sends its message, its members)
KINDS: dict[str, tuple[dict[str, str], str, str, set[str]]] = {
    "job_partner": ({"job": "job1", "partner": "tbb"}, "emp_team", "sp_in", E | {"sp_in"}),
    "job_partners": (
        {"job": "job1"},
        "emp_team",
        "agency_other",
        E | {"sp_in", "agency_user", "agency_other"},
    ),
    "job_relocation": (
        {"job": "job1"},
        "emp_admin",
        "cand",
        E | {"sp_in", "agency_user", "agency_other", "cand"},
    ),
    "candidate_partner": ({"candidate": "cand"}, "sp_in", "cand", {"sp_in", "cand"}),
    "case": ({"application": "app1"}, "emp_team", "emp_admin", E | {"sp_in", "cand"}),
    "application": ({"application": "app1"}, "emp_team", "emp_team", E | {"cand"}),
    "agency": ({"application": "app1"}, "emp_team", "agency_user", E | {"agency_user"}),
    "agency_private": (
        {"application": "app1"},
        "emp_team",
        "agency_user",
        {"emp_team", "agency_user"},
    ),
}


def test_members_receive_exactly_the_events_of_their_conversations(
    pair: tuple[Server, Server], sockets: Sockets
) -> None:
    """Ten users (the candidate on two devices, split over the processes) follow the stream
    while a message goes into a conversation of every kind, a message is read, deleted for
    everyone and deleted for one user, and a conversation is ended. Each socket receives
    exactly the stored frames of its user's conversations (private ones only for that user),
    in id order, each message as the REST API shows it to that user; users in none of them
    receive nothing."""
    first, second = pair
    cast = Cast(first)
    convs: dict[str, int] = {}
    for kind, (refs, starter, _, members) in KINDS.items():
        convs[kind] = cast.user(starter).start(kind, **{k: cast.ext(v) for k, v in refs.items()})
        shown = cast.user(starter).ok("GET", f"/api/v1/conversations/{convs[kind]}")
        assert {m["id"] for m in shown["members"]} == {cast.ext(r) for r in members}, kind

    streams: dict[str, list[Stream]] = {}
    for i, role in enumerate(NAMES):
        server = first if i % 2 == 0 else second
        streams[role] = [sockets.follow(server, cast.user(role))[0]]
    streams["cand"].append(sockets.follow(second, cast.user("cand"))[0])

    expected: dict[str, Counter[tuple[str, int]]] = {role: Counter() for role in NAMES}
    messages: dict[str, dict[str, Any]] = {}
    for i, (kind, (_, _, sender, members)) in enumerate(KINDS.items()):
        on = first if i % 2 == 0 else second
        messages[kind] = cast.user(sender, on).send(convs[kind], f"{kind} {secrets.token_hex(4)}")
        for role in members:
            expected[role][("message.created", convs[kind])] += 1
    app_conv, case_conv = convs["application"], convs["case"]
    app_members = KINDS["application"][3]
    cast.user("cand", second).ok("POST", f"/api/v1/conversations/{app_conv}/read", {})
    expected["cand"][("conversation.read", app_conv)] += 1
    deleted = messages["application"]["id"]
    gone = cast.user("emp_team").request(
        "DELETE", f"/api/v1/messages/{deleted}", **{"for": "everyone"}
    )
    assert gone.status_code == 204, gone.text
    hidden = messages["case"]["id"]
    gone = cast.user("emp_admin", second).request(
        "DELETE", f"/api/v1/messages/{hidden}", **{"for": "me"}
    )
    assert gone.status_code == 204, gone.text
    expected["emp_admin"][("message.deleted", case_conv)] += 1
    cast.user("emp_team").ok("POST", f"/api/v1/conversations/{app_conv}/end")
    for role in app_members:
        expected[role][("message.deleted", app_conv)] += 1
        expected[role][("conversation.updated", app_conv)] += 1

    # Each socket takes as many stored frames as it should get; once all have, every process
    # has routed the last event, and a barrier shows whatever else came.
    taken = {
        role: [s.take_stored(sum(expected[role].values())) for s in ss]
        for role, ss in streams.items()
    }
    received: dict[str, list[list[Frame]]] = {}
    for role, user_streams in streams.items():
        received[role] = [
            frames + stored(stream.barrier())
            for stream, frames in zip(user_streams, taken[role], strict=True)
        ]
        for stream, frames in zip(user_streams, received[role], strict=True):
            got = Counter((f["type"], f["conversation"]) for f in frames)
            assert got == expected[role], (stream.label, got, expected[role])
            ids = [f["id"] for f in frames]
            assert ids == sorted(set(ids)), (stream.label, ids)
    for outsider in ("emp_other", "other_emp", "sp_out", "cand2"):
        assert received[outsider] == [[]], outsider
    # Both of the candidate's devices got the same frames.
    assert received["cand"][0] == received["cand"][1]

    for role in NAMES:
        me = cast.user(role)
        frames = received[role][0]
        for frame in frames:
            data = frame["data"]
            if frame["type"] == "message.created" and data["id"] not in (deleted, hidden):
                page = me.ok("GET", f"/api/v1/conversations/{frame['conversation']}/messages")
                shown = {m["id"]: m for m in page["items"]}
                assert data == shown[data["id"]], (role, data, shown.get(data["id"]))
                if role.startswith("cand"):
                    assert data["deliveries"] is None, data
            elif frame["type"] == "message.deleted" and frame["conversation"] == app_conv:
                assert data["id"] == deleted and data["for"] == "everyone", data
                assert data["message"]["deleted"] is True and data["message"]["body"] == "", data
            elif frame["type"] == "message.deleted":
                assert role == "emp_admin" and data["id"] == hidden and data["for"] == "me", data
                assert "last_message" in data, data
            elif frame["type"] == "conversation.read":
                assert role == "cand" and data["unread_count"] == 0, data
            elif frame["type"] == "conversation.updated":
                assert data["status"] == "ended" and data["ended_by"] == cast.ext("emp_team"), data
        # The counts on the last frame that carried them are the badge now.
        counted = [f["unread"] for f in frames if "unread" in f]
        if counted:
            badge = me.ok("GET", "/api/v1/unread")
            assert {k: counted[-1][k] for k in ("conversations", "messages")} == badge, (
                role,
                counted,
            )


# --- 2. resuming --------------------------------------------------------------------------------


def test_resume_replays_exactly_what_was_missed_then_ready_then_live(
    pair: tuple[Server, Server], sockets: Sockets
) -> None:
    """The candidate reads three messages, disconnects from the first process, misses three
    more and a deletion, and resumes on the second with ``?after=<last id>``: exactly the
    missed frames come first, in id order, identical to what a device that stayed connected
    got (unread counts included), then ``ready``, then live frames. Resuming from before the
    first message replays the deleted one as its tombstone."""
    first, second = pair
    cast = Cast(first)
    team, cand = cast.user("emp_team"), cast.user("cand")
    conv = team.start("application", application=cast.ext("app1"))
    witness, _, ready_before = sockets.follow(first, cand)
    stream, backlog, ready = sockets.follow(first, cand)
    assert backlog == []
    assert ready["data"]["resumed_after"] is None

    before = [team.send(conv, f"before {i}")["id"] for i in range(3)]
    seen = stream.take_stored(3)
    assert [(f["type"], f["data"]["id"]) for f in seen] == [("message.created", m) for m in before]
    last = seen[-1]["id"]
    stream.close()

    missed = [team.on(second).send(conv, f"missed {i}")["id"] for i in range(3)]
    gone = team.request("DELETE", f"/api/v1/messages/{before[0]}", **{"for": "everyone"})
    assert gone.status_code == 204, gone.text
    witnessed = witness.take_stored(7)
    assert witnessed[:3] == seen

    resumed, backlog, ready = sockets.follow(second, cand, after=last)
    assert [(f["type"], f["data"]["id"]) for f in backlog] == [
        *[("message.created", m) for m in missed],
        ("message.deleted", before[0]),
    ]
    assert backlog == witnessed[3:]
    assert ready["data"]["head"] >= backlog[-1]["id"]

    live = team.on(second).send(conv, "live")["id"]
    frame = resumed.take_stored(1)[0]
    assert (frame["type"], frame["data"]["id"]) == ("message.created", live)
    assert frame["id"] > backlog[-1]["id"]
    assert frame == witness.take_stored(1)[0]
    assert stored(resumed.barrier()) == []

    # From before it all: the deleted message's message.created replays as its tombstone (the
    # event log keeps no deleted content); everything else as it was sent live.
    _, history, _ = sockets.follow(second, cand, after=ready_before["data"]["head"])
    assert [f["id"] for f in history] == [f["id"] for f in [*witnessed, frame]]
    tombstone = history[0]["data"]
    assert (tombstone["id"], tombstone["deleted"], tombstone["body"]) == (before[0], True, "")
    assert history[1:] == [*witnessed[1:], frame]


def test_resuming_over_and_over_while_messages_flow_loses_and_repeats_nothing(
    pair: tuple[Server, Server], sockets: Sockets
) -> None:
    """While messages are sent without pause (through both processes in turn), a device
    disconnects every few frames and resumes from the last frame it took, each time on the
    other process: everything it took, in order, equals what a device that stayed connected
    received, with no gap and no duplicate."""
    first, second = pair
    cast = Cast(first)
    team, cand = cast.user("emp_team"), cast.user("cand")
    conv = team.start("application", application=cast.ext("app1"))
    witness, _, _ = sockets.follow(first, cand)
    stream, _, _ = sockets.follow(second, cand)
    total = 40
    failures: list[str] = []

    def send_all() -> None:
        clients = {s.name: httpx.Client(base_url=s.base, timeout=15) for s in (first, second)}
        try:
            for i in range(total):
                client = clients[(first, second)[i % 2].name]
                response = client.post(
                    f"/api/v1/conversations/{conv}/messages",
                    json={"body": f"flow {i}"},
                    headers={"Authorization": f"Bearer {team.token}"},
                )
                if response.status_code != 201:
                    failures.append(response.text)
                time.sleep(0.01)
        finally:
            for client in clients.values():
                client.close()

    sender = threading.Thread(target=send_all)
    sender.start()
    try:
        took: list[Frame] = []
        reconnects = 0
        while len(took) < total:
            took += stream.take_stored(min(1 + reconnects % 4, total - len(took)), timeout=10)
            if len(took) == total:
                break
            stream.close()
            reconnects += 1
            server = (first, second)[reconnects % 2]
            stream, backlog, _ = sockets.follow(server, cand, after=took[-1]["id"])
            took += backlog
    finally:
        sender.join(timeout=30)
    assert not failures, failures
    assert reconnects >= 5
    everything = witness.take_stored(total, timeout=10)
    assert [f["data"]["body"] for f in everything] == [f"flow {i}" for i in range(total)]
    assert took == everything
    assert stored(stream.barrier()) == []


# --- 3. membership ------------------------------------------------------------------------------


def test_membership_changes_reach_the_stream_at_once(
    pair: tuple[Server, Server], sockets: Sockets
) -> None:
    """cand2, connected to the second process, reaches offer_accepted: they join the job's
    relocation chat (member.added carrying the conversation as they now see it) and receive
    its messages; rejected, they get member.removed and nothing of it after. The other members
    see both changes. Resuming from before it all replays exactly that, not the later message."""
    first, second = pair
    cast = Cast(first)
    team, admin = cast.user("emp_team"), cast.user("emp_admin")
    conv = team.start("job_relocation", job=cast.ext("job1"))
    newcomer = cast.ext("cand2")
    cand2 = cast.user("cand2", second)
    stream, _, ready = sockets.follow(second, cand2)
    since = ready["data"]["head"]
    admin_stream, _, _ = sockets.follow(first, admin)
    team_stream, _, _ = sockets.follow(second, team)

    cast.stage("app2", "cand2", "offer_accepted")
    added = stream.take_stored(1)[0]
    assert (added["type"], added["conversation"]) == ("member.added", conv), added
    assert added["data"]["member"]["id"] == newcomer
    shown = added["data"]["conversation"]
    assert (shown["id"], shown["kind"]) == (conv, "job_relocation")
    assert newcomer in {m["id"] for m in shown["members"]}
    for other in (admin_stream, team_stream):
        seen = other.take_stored(1)[0]
        assert (seen["type"], seen["id"], seen["data"]["member"]["id"]) == (
            "member.added",
            added["id"],
            newcomer,
        )
        assert "conversation" not in seen["data"]

    welcome = team.on(second).send(conv, "Welcome to the relocation chat")["id"]
    message = stream.take_stored(1)[0]
    assert (message["type"], message["data"]["id"]) == ("message.created", welcome)

    cast.stage("app2", "cand2", "rejected")
    removed = stream.take_stored(1)[0]
    assert (removed["type"], removed["conversation"]) == ("member.removed", conv), removed
    assert removed["data"]["member"]["id"] == newcomer
    later = team.send(conv, "After you left")["id"]
    for other in (admin_stream, team_stream):
        frames = other.take_stored(3)
        assert [f["type"] for f in frames] == [
            "message.created",
            "member.removed",
            "message.created",
        ]
        assert frames[-1]["data"]["id"] == later
    assert stored(stream.barrier()) == []
    assert cand2.request("GET", f"/api/v1/conversations/{conv}").status_code == 404

    _, backlog, _ = sockets.follow(first, cand2, after=since)
    assert backlog == [added, message, removed]


# --- 4. two processes, one Redis -----------------------------------------------------------------


def test_messages_cross_between_processes_within_a_second(
    server_a: Server, server_b: Server, sockets: Sockets
) -> None:
    """A message sent through one process reaches a socket on the other well before the
    30-second fallback poll: the Redis nudge carries it. Both directions, ten messages each;
    every latency (from before the POST to the frame's arrival) is under a second."""
    cast = Cast(server_a)
    team, cand = cast.user("emp_team", server_b), cast.user("cand", server_a)
    conv = team.start("application", application=cast.ext("app1"))
    on_a, _, _ = sockets.follow(server_a, cand)
    on_b, _, _ = sockets.follow(server_b, team)
    latencies: dict[str, list[float]] = {"B->A": [], "A->B": []}
    after_reply: dict[str, list[float]] = {"B->A": [], "A->B": []}
    for direction, sender, reader in (("B->A", team, on_a), ("A->B", cand, on_b)):
        for i in range(10):
            started = time.monotonic()
            message = sender.send(conv, f"{direction} {i}")["id"]
            replied = time.monotonic()
            reader.take(created(message), f"message {message}")
            arrived = time.monotonic()
            latencies[direction].append(arrived - started)
            after_reply[direction].append(arrived - replied)
            time.sleep(0.05)
    for direction, values in latencies.items():
        waited = after_reply[direction]
        print(
            f"cross-process latency {direction}: send to frame median "
            f"{statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms; "
            f"after the POST's 201: median {statistics.median(waited) * 1000:.1f} ms, "
            f"max {max(waited) * 1000:.1f} ms"
        )
    assert max(max(values) for values in latencies.values()) < 1.0, latencies


def test_typing_reaches_the_other_members_only(
    pair: tuple[Server, Server], sockets: Sockets
) -> None:
    """Typing sent on one process reaches the conversation's other members on both processes
    (passed on once while typing continues, and at once when it stops), not the sender and not
    a non-member; typing in a conversation one is not in is answered with not_found."""
    first, second = pair
    cast = Cast(first)
    conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
    typist, _, _ = sockets.follow(first, cast.user("cand"))
    member_there, _, _ = sockets.follow(second, cast.user("emp_team"))
    member_here, _, _ = sockets.follow(first, cast.user("emp_admin"))
    outsider_there, _, _ = sockets.follow(second, cast.user("emp_other"))
    outsider_here, _, _ = sockets.follow(first, cast.user("cand2"))

    typist.send({"type": "typing", "conversation": conv})
    typist.send({"type": "typing", "conversation": conv, "typing": True})
    typist.send({"type": "typing", "conversation": conv, "typing": False})
    who = cast.public("cand")
    for member in (member_there, member_here):
        frames = member.upto(lambda f: f["type"] == "typing" and not f["data"]["typing"], "typing")
        typing = [f for f in frames if f["type"] == "typing"]
        assert typing == [
            {"id": None, "type": "typing", "conversation": conv, "data": {"user": who, "typing": t}}
            for t in (True, False)
        ], member.label
    for stream in (typist, outsider_here, outsider_there, member_here, member_there):
        assert [f for f in stream.barrier() if f["type"] == "typing"] == [], stream.label

    outsider_there.send({"type": "typing", "conversation": conv})
    error = outsider_there.take(is_type("error"), "error")
    assert error["data"]["error"]["code"] == "not_found", error
    assert [f for f in member_there.barrier() if f["type"] == "typing"] == []


def presence_of(cast: Cast, role: str, online: bool) -> Callable[[Frame], bool]:
    def match(frame: Frame) -> bool:
        return bool(
            frame["type"] == "presence"
            and frame["data"] == {"user": cast.public(role), "online": online}
        )

    return match


def ask_presence(stream: Stream, conv: int) -> list[str]:
    stream.send({"type": "presence", "conversation": conv})
    answer = stream.take(
        lambda f: f["type"] == "presence" and f["conversation"] == conv, "presence answer"
    )
    online: list[str] = answer["data"]["online"]
    return online


def test_presence_comes_online_across_processes_and_answers_questions(
    pair: tuple[Server, Server], sockets: Sockets
) -> None:
    """The candidate connects to the first process: a fellow member on the second gets a
    presence frame (online true, no conversation), a user who shares nothing with them does
    not; asked, the process names the conversation's members online."""
    first, second = pair
    cast = Cast(first)
    conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
    fellow, _, _ = sockets.follow(second, cast.user("emp_team"))
    outsider, _, _ = sockets.follow(second, cast.user("cand2"))
    sockets.follow(first, cast.user("cand"))

    came = fellow.take(presence_of(cast, "cand", True), "presence of cand")
    assert came["id"] is None and came["conversation"] is None
    assert [f for f in outsider.barrier() if f["type"] == "presence"] == []
    assert ask_presence(fellow, conv) == sorted([cast.ext("cand"), cast.ext("emp_team")])

    outsider.send({"type": "presence", "conversation": conv})
    error = outsider.take(is_type("error"), "error")
    assert error["data"]["error"]["code"] == "not_found", error


def test_presence_goes_offline_when_the_last_socket_closes(
    pair: tuple[Server, Server], sockets: Sockets
) -> None:
    """The candidate has a socket on each process. Closing one leaves them online (no offline
    frame); closing the last one makes the process stop naming them online, and a fellow member
    gets a presence frame with online false. (Until 1153c82 the hub cleared the socket's
    conversations before announcing, so nobody got that frame.)"""
    first, second = pair
    cast = Cast(first)
    conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
    fellow, _, _ = sockets.follow(second, cast.user("emp_team"))
    phone, _, _ = sockets.follow(first, cast.user("cand"))
    fellow.take(presence_of(cast, "cand", True), "presence of cand")
    laptop, _, _ = sockets.follow(second, cast.user("cand"))
    phone.close()
    for _ in range(5):
        assert cast.ext("cand") in ask_presence(fellow, conv)
        time.sleep(0.1)
    laptop.close()

    deadline = time.monotonic() + WAIT
    while cast.ext("cand") in ask_presence(fellow, conv):
        assert time.monotonic() < deadline, "the candidate still looks online"
        time.sleep(0.1)
    went = fellow.upto(presence_of(cast, "cand", False), "presence of cand going offline")
    assert not any(presence_of(cast, "cand", False)(f) for f in went[:-1]), summary(went)


# --- 5. a slow reader ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_queue_server(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of the same deployment on which a socket may have 5 frames waiting."""
    workdir = tmp_path_factory.mktemp("small-queue")
    server = launch("small-queue", backend, workdir, stream_queue_frames="5")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def slow_message_count(frame_bytes: int) -> int:
    """Enough messages to fill the kernel's buffers for the stalled socket (they grow up to
    tcp_wmem's maximum: 4 MiB by default, of which ~2.8 MB of frames fit here) and then the
    server's queue of 5, with room to spare."""
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        wmem_max = 4 * 1024 * 1024
    return max(60, wmem_max // frame_bytes + 40)


def wide_body(i: int) -> str:
    """10,000 characters of 4 UTF-8 bytes each (CJK extension B), incompressible: ~40 KB."""
    prefix = f"{i} "
    return prefix + "".join(
        chr(0x20000 + secrets.randbelow(0xA6E0)) for _ in range(10_000 - len(prefix))
    )


class StillOnline(AssertionError):
    """A user the server had closed out still counts as online."""


def stalled_client(server: Server, cast: Cast, sockets: Sockets) -> Stream:
    """The candidate's socket, which stops reading once ``ready`` is in: a receive buffer of
    4 KiB and a client queue of one frame, then nothing read (and no compression)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", server.port))
    stream, _, _ = sockets.follow(
        server, cast.user("cand"), sock=raw, max_queue=1, compression=None, close_timeout=0.5
    )
    return stream


def flood(server: Server, cast: Cast, conv: int, reader: Stream) -> tuple[list[int], list[float]]:
    """Send enough ~40 KB messages to overflow a stalled socket; the reader must receive each
    before the next is sent. The sent ids, and the delay from each send to its arrival."""
    team = cast.user("emp_team", server)
    sent: list[int] = []
    delays: list[float] = []
    for i in range(slow_message_count(40_000)):
        started = time.monotonic()
        sent.append(team.send(conv, wide_body(i))["id"])
        frame = reader.take_stored(1)[0]
        assert frame["data"]["id"] == sent[-1]
        delays.append(time.monotonic() - started)
    return sent, delays


def test_a_client_that_stops_reading_is_closed_with_4000_and_holds_nobody_back(
    small_queue_server: Server, sockets: Sockets
) -> None:
    """With JOBCHAT_STREAM_QUEUE_FRAMES=5, a candidate's socket stops reading (a tiny receive
    buffer, a client queue of one frame) while 10,000-character messages pour in. A member
    reading on the same process gets every one promptly. When the slow client reads again it
    finds an unbroken prefix of the frames, then close code 4000; resuming from the last one it
    got yields exactly the rest."""
    server = small_queue_server
    cast = Cast(server)
    team = cast.user("emp_team")
    conv = team.start("application", application=cast.ext("app1"))
    reader, _, _ = sockets.follow(server, cast.user("emp_admin"))
    slow = stalled_client(server, cast, sockets)
    sent, delays = flood(server, cast, conv, reader)
    print(
        f"reader: median {statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms"
    )
    # Promptly: a reader held back behind the stalled socket would wait for the server to give
    # that socket up. Alone on a slow 2-core machine the worst delay was 0.13 s; beside a loaded
    # CI run there (both passes and the browser tests at once) one reached 1.19 s, so the bound
    # leaves room for that.
    assert max(delays) < 3.0, delays

    code, frames = slow.closed(timeout=15)
    got = [f["data"]["id"] for f in stored(frames)]
    print(f"slow client got {len(got)} of {len(sent)} frames, then {code}")
    assert code == 4000, (code, got)
    assert 0 < len(got) < len(sent)
    assert got == sent[: len(got)]

    _, backlog, _ = sockets.follow(server, cast.user("cand"), after=stored(frames)[-1]["id"])
    assert [f["data"]["id"] for f in backlog] == sent[len(got) :]


def test_a_client_closed_for_falling_behind_no_longer_counts_as_online(
    small_queue_server: Server, sockets: Sockets
) -> None:
    """A client that stopped reading altogether (a frozen app) is closed with 4000 when its
    queue overflows; from then on the server no longer counts that socket: its user stops
    being named online within ten seconds, whether or not the peer ever reads again."""
    server = small_queue_server
    cast = Cast(server)
    conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
    fellow, _, _ = sockets.follow(server, cast.user("emp_admin"))
    stalled_client(server, cast, sockets)
    assert cast.ext("cand") in ask_presence(fellow, conv)
    flood(server, cast, conv, fellow)
    deadline = time.monotonic() + 10
    while cast.ext("cand") in (online := ask_presence(fellow, conv)):
        if time.monotonic() > deadline:
            raise StillOnline(f"the stalled candidate is still online: {online}")
        time.sleep(0.5)


# --- 6. shutting down, and a deployment's other settings ----------------------------------------


@pytest.fixture
def doomed_server(backend: Backend, aux_dir: Path) -> Iterator[Server]:
    """A server of the same deployment that the test stops."""
    server = launch("doomed", backend, aux_dir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_sigterm_closes_every_socket_with_1012_and_they_resume_elsewhere(
    doomed_server: Server, server_a: Server, sockets: Sockets
) -> None:
    """SIGTERM: every socket of the process is closed with 1012 (service restart) and the
    process shuts down cleanly; a client then resumes on another process of the same database
    with ``?after=`` and gets what was sent meanwhile."""
    server = doomed_server
    cast = Cast(server)
    conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
    team, _, _ = sockets.follow(server, cast.user("emp_team"))
    phone, _, ready = sockets.follow(server, cast.user("cand"))
    laptop, _, _ = sockets.follow(server, cast.user("cand"))

    server.process.send_signal(signal.SIGTERM)
    for stream in (team, phone, laptop):
        code, frames = stream.closed(timeout=10)
        assert code == 1012, (stream.label, code)
        assert "after" in (stream.close_reason or ""), stream.close_reason
        assert stored(frames) == [], stream.label
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    output = server.output()
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output and "ERROR" not in output, output

    meanwhile = cast.user("emp_team", server_a).send(conv, "While you were away")["id"]
    _, backlog, _ = sockets.follow(server_a, cast.user("cand"), after=ready["data"]["head"])
    assert [(f["type"], f["data"]["id"]) for f in backlog] == [("message.created", meanwhile)]


def test_a_stopped_process_no_longer_shows_its_users_online(
    backend: Backend, server_a: Server, aux_dir: Path, sockets: Sockets
) -> None:
    """The candidate's only socket is on a process that is stopped (SIGTERM, a graceful stop,
    not a crash): a fellow member on the remaining process is told they went offline, and that
    process stops naming them online at once, without waiting for JOBCHAT_PRESENCE_TTL_SECONDS
    (meant for crashed processes)."""
    if backend.redis_url is None:
        pytest.skip(NEEDS_PG)
    doomed = launch("doomed", backend, aux_dir)
    try:
        doomed.wait_ready()
        cast = Cast(server_a)
        conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
        fellow, _, _ = sockets.follow(server_a, cast.user("emp_team"))
        leaving, _, _ = sockets.follow(doomed, cast.user("cand"))
        fellow.take(presence_of(cast, "cand", True), "presence of cand")
        assert cast.ext("cand") in ask_presence(fellow, conv)
        doomed.process.send_signal(signal.SIGTERM)
        assert leaving.closed(timeout=10)[0] == 1012
        doomed.process.wait(timeout=15)
    finally:
        doomed.stop()
    fellow.take(presence_of(cast, "cand", False), "presence of cand going offline")
    deadline = time.monotonic() + WAIT
    while cast.ext("cand") in (online := ask_presence(fellow, conv)):
        assert time.monotonic() < deadline, f"still online after the stop: {online}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def tight_server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of the same deployment with a heartbeat every half second and resumes of at
    most three events."""
    workdir = tmp_path_factory.mktemp("tight")
    server = launch(
        "tight", backend, workdir, stream_heartbeat_seconds="0.5", stream_max_backlog="3"
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_heartbeats_name_the_newest_event(tight_server: Server, sockets: Sockets) -> None:
    """With JOBCHAT_STREAM_HEARTBEAT_SECONDS=0.5, every socket gets ``heartbeat`` frames
    carrying the newest event id, which follows new events."""
    cast = Cast(tight_server)
    conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
    stream, _, ready = sockets.follow(tight_server, cast.user("cand"))
    beat = stream.take(is_type("heartbeat"), "heartbeat")
    assert beat == {"id": None, "type": "heartbeat", "conversation": None, "data": beat["data"]}
    assert beat["data"]["head"] >= ready["data"]["head"]
    cast.user("emp_team").send(conv, "Tick")
    newest = stream.take_stored(1)[0]["id"]
    stream.inbox.clear()
    assert stream.take(is_type("heartbeat"), "heartbeat")["data"]["head"] >= newest


def test_a_resume_longer_than_the_backlog_limit_is_closed_with_4001(
    tight_server: Server, sockets: Sockets
) -> None:
    """With JOBCHAT_STREAM_MAX_BACKLOG=3, a resume that would replay three events does; one that
    would replay four is closed with 4001 (reload instead)."""
    cast = Cast(tight_server)
    team = cast.user("emp_team")
    conv = team.start("application", application=cast.ext("app1"))
    _, _, ready = sockets.follow(tight_server, cast.user("cand"))
    since = ready["data"]["head"]
    sent = [team.send(conv, f"Missed {i}")["id"] for i in range(3)]
    _, backlog, _ = sockets.follow(tight_server, cast.user("cand"), after=since)
    assert [f["data"]["id"] for f in backlog] == sent
    team.send(conv, "One too many")
    code, frames = sockets.open(tight_server, cast.user("cand"), after=since).closed()
    assert (code, frames) == (4001, [])


# --- 7. refusals --------------------------------------------------------------------------------


def session_cookie(cast: Cast, role: str) -> str:
    """Sign in through a one-time link, as a browser would, and return the session cookie."""
    link = cast.integration.ok("POST", f"/api/v1/users/{cast.ext(role)}/login-links")["url"]
    assert link.startswith(cast.server.base + "/"), link
    response = cast.server.http.get(link, follow_redirects=False)
    assert response.status_code == 303, response.text
    cookie = response.cookies.get("jobchat_session")
    assert cookie, response.headers
    return cookie


def test_the_handshake_refuses_bad_credentials_in_the_error_shape(
    server_a: Server, sockets: Sockets
) -> None:
    """No credentials or a bad token: HTTP 401; the integration key: 403; a malformed
    ``after``: 422; a session cookie from a foreign Origin: 403 — each in the one error shape.
    The same cookie from the server's own origin, and a token in ``?token=``, are accepted and
    follow the right user's conversations."""
    cast = Cast(server_a)
    cand = cast.user("cand")
    assert_error(refused(server_a), 401)
    assert_error(refused(server_a, "not-a-token"), 401)
    assert_error(refused(server_a, query_token="not-a-token"), 401)
    assert_error(refused(server_a, API_KEY), 403)
    assert_error(refused(server_a, query_token=API_KEY), 403)
    assert_error(refused(server_a, cand.token, after="abc"), 422, fields={"after"})
    assert_error(refused(server_a, cand.token, after="-1"), 422, fields={"after"})

    cookie = {"Cookie": f"jobchat_session={session_cookie(cast, 'emp_team')}"}
    foreign = refused(server_a, headers=cookie, origin="http://evil.example")
    assert_error(foreign, 403, code="cross_site")
    assert_error(refused(server_a, headers={"Cookie": "jobchat_session=forged"}), 401)

    # Each socket follows its own user: a thread of emp_team's without the candidate, and the
    # candidate's one-to-one with their partner without emp_team.
    private = cast.user("emp_team").start("agency_private", application=cast.ext("app1"))
    one_to_one = cast.user("sp_in").start("candidate_partner", candidate=cast.ext("cand"))
    by_cookie = sockets.open(server_a, headers=cookie, origin=server_a.base)
    by_query = sockets.open(server_a, query_token=cand.token)
    for stream in (by_cookie, by_query):
        stream.upto(is_type("ready"), "ready")
    for_team = cast.user("agency_user").send(private, "For the team only")["id"]
    for_cand = cast.user("sp_in").send(one_to_one, "For the candidate only")["id"]
    assert [f["data"]["id"] for f in by_cookie.take_stored(1)] == [for_team]
    assert [f["data"]["id"] for f in by_query.take_stored(1)] == [for_cand]
    for stream in (by_cookie, by_query):
        assert stored(stream.barrier()) == []
    # uvicorn logs the URL of every socket; the token in it is not written down.
    assert "token=[redacted]" in server_a.output()
    assert cand.token not in server_a.output()


# --- 8. what cannot be resumed, and what clients may send ---------------------------------------


def test_after_newer_than_anything_stored_is_closed_with_4001(
    server_a: Server, sockets: Sockets
) -> None:
    """``?after=`` beyond the newest event (another database's id) cannot be resumed: the socket
    is accepted and closed at once with 4001, before any frame."""
    cast = Cast(server_a)
    _, _, ready = sockets.follow(server_a, cast.user("cand"))
    head = ready["data"]["head"]
    code, frames = sockets.open(server_a, cast.user("cand"), after=head + 1000).closed()
    assert (code, frames) == (4001, [])
    _, backlog, again = sockets.follow(server_a, cast.user("cand"), after=head)
    assert backlog == [] and again["data"]["head"] >= head


def test_more_than_twenty_frames_a_second_closes_with_4008(
    server_a: Server, sockets: Sockets
) -> None:
    """A client that sends frames faster than anyone types is closed with 4008."""
    cast = Cast(server_a)
    stream, _, _ = sockets.follow(server_a, cast.user("cand"))
    for _ in range(30):
        try:
            stream.send({"type": "ping"})
        except ConnectionClosed:
            # The server may close it before the 30th is written: the frames it answered
            # before closing are still there to read, with the close code.
            break
    code, frames = stream.closed()
    assert code == 4008, code
    # (A heartbeat may come at any moment: the sockets' heartbeats are spread.)
    frames = [f for f in frames if f["type"] != "heartbeat"]
    assert 0 < len(frames) <= 20 and all(f["type"] == "pong" for f in frames), summary(frames)


def test_frames_the_server_does_not_understand_are_answered_with_errors(
    server_a: Server, sockets: Sockets
) -> None:
    """Malformed or unknown client frames get an ``error`` frame each, and the socket stays
    open and in the stream; one over JOBCHAT_MAX_REQUEST_BYTES closes it (1009, too big)."""
    cast = Cast(server_a)
    conv = cast.user("emp_team").start("application", application=cast.ext("app1"))
    stream, _, _ = sockets.follow(server_a, cast.user("cand"))
    stream.ws.send("not json")
    stream.ws.send(b"\x00binary")
    stream.send({"type": "dance"})
    stream.send({"type": "typing", "conversation": conv, "typing": "yes"})
    stream.send({"type": "typing", "conversation": str(conv)})
    codes = [
        stream.take(is_type("error"), f"error {i + 1}")["data"]["error"]["code"] for i in range(5)
    ]
    assert codes == ["invalid_frame", "invalid_frame", "unknown_type", "invalid_frame", "not_found"]
    message = cast.user("emp_team").send(conv, "Still there?")["id"]
    assert stream.take_stored(1)[0]["data"]["id"] == message
    # A frame larger than a request may be (JOBCHAT_MAX_REQUEST_BYTES) closes the socket.
    stream.send({"type": "ping", "padding": "x" * 70_000})
    assert stream.closed()[0] == 1009
