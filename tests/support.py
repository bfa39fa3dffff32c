"""Test helpers: an API client that speaks as the integration or as one user, and a world.

``build_world`` creates, through the integration API, the cast the authorization matrix and the
scenarios use (see ``World``).
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobchat.db.engine import Database
from jobchat.directory.models import User

API_KEY = "test-integration-key"
# The test client's peer address (conftest's ``client``): the audit log records it.
TEST_CLIENT_ADDRESS = "192.0.2.1"


class Ticks:
    """A monotonic clock the test moves by hand (``at``)."""

    def __init__(self, at: float = 100.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


class As:
    """Requests made with one bearer token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(
            path, params=params or None, headers=self.headers
        )
        return response

    def post(self, path: str, json: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.post(path, json=json, headers=self.headers)
        return response

    def put(self, path: str, json: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.put(path, json=json, headers=self.headers)
        return response

    def patch(self, path: str, json: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.patch(path, json=json, headers=self.headers)
        return response

    def delete(self, path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = self.client.delete(
            path, params=params or None, headers=self.headers
        )
        return response

    # Conveniences for the user endpoints.
    def start(self, kind: str, **refs: str) -> httpx.Response:
        return self.post("/api/v1/conversations", {"kind": kind, **refs})

    def send(self, conversation_id: int, body: str = "Hello", **extra: Any) -> httpx.Response:
        return self.post(
            f"/api/v1/conversations/{conversation_id}/messages", {"body": body, **extra}
        )

    def messages(self, conversation_id: int, **params: Any) -> httpx.Response:
        return self.get(f"/api/v1/conversations/{conversation_id}/messages", **params)

    def inbox(self, **params: Any) -> httpx.Response:
        return self.get("/api/v1/conversations", **params)


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.integration = As(client, API_KEY)

    def org(self, ext_id: str, name: str, kind: str) -> dict[str, Any]:
        return _ok(
            self.integration.put(f"/api/v1/organizations/{ext_id}", {"name": name, "kind": kind})
        )

    def staff(
        self, ext_id: str, name: str, org: str, role: str = "member", **extra: Any
    ) -> dict[str, Any]:
        body = {"name": name, "email": f"{ext_id}@example.com", "organization": org, "role": role}
        return _ok(self.integration.put(f"/api/v1/users/{ext_id}", body | extra))

    def candidate(self, ext_id: str, name: str, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "email": f"{ext_id}@example.org"}
        return _ok(self.integration.put(f"/api/v1/candidates/{ext_id}", body | extra))

    def job(self, ext_id: str, title: str, employer: str, **extra: Any) -> dict[str, Any]:
        body = {"title": title, "employer": employer}
        return _ok(self.integration.put(f"/api/v1/jobs/{ext_id}", body | extra))

    def application(
        self, ext_id: str, job: str, candidate: str, stage: str, **extra: Any
    ) -> dict[str, Any]:
        body = {"job": job, "candidate": candidate, "stage": stage}
        return _ok(self.integration.put(f"/api/v1/applications/{ext_id}", body | extra))

    def as_staff(self, ext_id: str) -> As:
        token = _ok(self.integration.post(f"/api/v1/users/{ext_id}/tokens"))["token"]
        return As(self.client, token)

    def as_candidate(self, ext_id: str) -> As:
        token = _ok(self.integration.post(f"/api/v1/candidates/{ext_id}/tokens"))["token"]
        return As(self.client, token)


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class World:
    """The cast, by role name (the authorization matrix's rows).

    - acme (employer) has job ``job1`` with team [emp_team]; its partners are source partner tbb
      and agency hireco. emp_admin is an acme admin; emp_other an acme member off the team.
    - globex is another employer (other_emp).
    - sp_in works for tbb, the source partner of ``cand`` and a partner of job1; sp_out works for
      crs, a source partner with nothing to do with job1 or cand.
    - agency_user works for hireco and submitted application ``app1``; agency_other is a
      colleague at hireco who did not.
    - cand applied to job1 (``app1``, stage offer_accepted, stage owner emp_team); cand2 applied
      to job1 too (``app2``, stage interview) but is another candidate.
    """

    api: Api
    users: dict[str, As] = field(default_factory=dict)

    def __getitem__(self, role: str) -> As:
        return self.users[role]


ROLES = [
    "emp_admin",
    "emp_team",
    "emp_other",
    "other_emp",
    "sp_in",
    "sp_out",
    "agency_user",
    "agency_other",
    "cand",
    "cand2",
]


def build_world(api: Api) -> World:
    api.org("acme", "Acme Health", "employer")
    api.org("globex", "Globex", "employer")
    api.org("tbb", "Talent Beyond Boundaries", "source_partner")
    api.org("crs", "CRS", "source_partner")
    api.org("hireco", "HireCo Recruiting", "agency")

    api.staff("emp_admin", "Ada Admin", "acme", role="admin")
    api.staff("emp_team", "Tess Team", "acme")
    api.staff("emp_other", "Otto Other", "acme")
    api.staff("other_emp", "Gus Globex", "globex", role="admin")
    api.staff("sp_in", "Sam Partner", "tbb")
    api.staff("sp_out", "Cora Outside", "crs")
    api.staff("agency_user", "Aggie Agent", "hireco")
    api.staff("agency_other", "Alex Otheragent", "hireco")

    api.candidate(
        "cand", "Carla Candidate", source_partner="tbb", phone="+14155550123", sms_consent=True
    )
    api.candidate("cand2", "Dan Candidate", source_partner="crs")

    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], partners=["tbb", "hireco"])
    api.application(
        "app1", "job1", "cand", "offer_accepted", stage_owner="emp_team", agency_user="agency_user"
    )
    api.application("app2", "job1", "cand2", "interview")

    world = World(api=api)
    for role in ROLES:
        world.users[role] = (
            api.as_candidate(role) if role.startswith("cand") else api.as_staff(role)
        )
    return world


# --- assertions shared by the test files ---------------------------------------------------------

E = frozenset({"emp_admin", "emp_team"})  # employer staff with access to job1: team + acme admins
TBB = frozenset({"sp_in"})  # staff of cand's source partner, a partner of job1
HIRECO = frozenset({"agency_user", "agency_other"})  # staff of job1's agency partner


def body(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert the status and return the JSON body."""
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


def start(who: As, kind: str, **refs: str) -> int:
    """Start (or reach) a conversation and return its id."""
    r = who.start(kind, **refs)
    assert r.status_code in (200, 201), r.text
    conv_id: int = r.json()["id"]
    return conv_id


def sent(r: httpx.Response) -> dict[str, Any]:
    """Assert a send was stored and return the message."""
    return body(r, 201)


def members(conv: dict[str, Any]) -> set[str]:
    return {m["id"] for m in conv["members"]}


def inbox_ids(user: As, **params: Any) -> list[int]:
    return [c["id"] for c in body(user.inbox(limit=200, **params), 200)["items"]]


def user_id(db: Database, ext_id: str) -> int:
    """Our internal id of the user with this external id (world ext ids are unique)."""
    with db.read() as s:
        found: int = s.scalars(select(User.id).where(User.ext_id == ext_id)).one()
        return found


def spawn_serve(
    port: int, env: Mapping[str, str], workdir: Path, log_name: str = "serve.log"
) -> tuple[subprocess.Popen[bytes], IO[str]]:
    """Start ``jobchat serve`` on 127.0.0.1:``port`` with exactly ``env``, in ``workdir`` (so no
    ./.env of ours is read), its output going to ``workdir``/``log_name``: (process, log)."""
    log = (workdir / log_name).open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "jobchat", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=dict(env),
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


def wait_until_serving(
    process: subprocess.Popen[Any], base: str, output: Callable[[], str], seconds: float = 60
) -> httpx.Response:
    """Poll ``base``/openapi.json until the server answers; fail if it exits or never does."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, f"the server exited with {process.returncode}:\n{output()}"
        try:
            return httpx.get(f"{base}/openapi.json", timeout=2)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"the server did not answer in time:\n{output()}"
            time.sleep(0.2)


@dataclass
class ServedProcess:
    """A ``jobchat serve`` a test started: its port, process and log, and a client to it."""

    port: int
    process: subprocess.Popen[bytes]
    log: IO[str]
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=15, trust_env=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def terminate(self) -> int:
        """SIGTERM, as a service manager stops it: the exit status. A server that does not stop
        within 20 s is killed, and fails the test."""
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                stop(self.process)
                raise AssertionError(f"serve did not stop on SIGTERM:\n{self.output()}") from None
        self.log.close()
        return self.process.returncode


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(n: int) -> list[int]:
    """``n`` different free ports: each socket is held until all are bound (one after another,
    the kernel may give a port just let go again)."""
    with contextlib.ExitStack() as held:
        sockets = [
            held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)
        ]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
CONTRACT_STATUSES = {401, 403, 404, 405, 409, 413, 422, 429}


def error_problems(response: httpx.Response) -> list[str]:
    """What is wrong with ``response`` as an error in the contract's one shape (empty: nothing)."""
    problems: list[str] = []
    if not response.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type is {response.headers.get('content-type')!r}")
    try:
        body = response.json()
    except ValueError:
        return [*problems, f"body is not JSON: {response.text[:200]!r}"]
    if not isinstance(body, dict) or set(body) != {"error"}:
        return [*problems, f"body is not {{'error': ...}}: {body!r}"[:300]]
    error = body["error"]
    if not isinstance(error, dict):
        return [*problems, f"error is not an object: {error!r}"]
    if not {"code", "message"} <= set(error) <= {"code", "message", "fields"}:
        problems.append(f"error keys are {sorted(error)}")
    code, message = error.get("code"), error.get("message")
    if not (isinstance(code, str) and _SNAKE.match(code)):
        problems.append(f"code {code!r} is not snake_case")
    if not (isinstance(message, str) and message.strip()):
        problems.append(f"message {message!r} is not a sentence")
    if "fields" in error:
        fields = error["fields"]
        if not (
            isinstance(fields, dict)
            and fields
            and all(isinstance(k, str) and isinstance(v, str) and v for k, v in fields.items())
        ):
            problems.append(f"fields {fields!r} is not a non-empty object of strings")
    return problems


def assert_error(
    response: httpx.Response,
    status: int,
    code: str | None = None,
    fields: set[str] | None = None,
) -> dict[str, Any]:
    """Assert an error answer: the status, exactly the one shape, and optionally code and fields.

    ``fields`` must be exactly the set of bad fields named. Returns the inner ``error`` object.
    """
    assert response.status_code == status, (response.status_code, response.text)
    problems = error_problems(response)
    assert not problems, (problems, response.text)
    error: dict[str, Any] = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    if fields is not None:
        assert set(error.get("fields") or {}) == fields, error
    return error


# --- waiting on a real server --------------------------------------------------------------------

T = TypeVar("T")
WAIT = 15.0  # how long an expected outcome may take; a hit costs nothing


def eventually(
    probe: Callable[[], T | None],
    what: str,
    *,
    timeout: float = WAIT,
    log: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something other than None, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            tail = f"\n--- server log ---\n{log()[-6000:]}" if log else ""
            raise AssertionError(f"not within {timeout} s: {what}{tail}")
        time.sleep(0.05)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    timeout: float = WAIT,
    log: Callable[[], str] | None = None,
) -> None:
    eventually(lambda: True if condition() else None, what, timeout=timeout, log=log)


def besides_heartbeats(ws: Any) -> dict[str, Any]:
    """The next frame of a test client's event-stream socket that is not a heartbeat (a
    socket's heartbeat comes whenever its turn in the interval does, even right after it
    connected)."""
    while (frame := ws.receive_json())["type"] == "heartbeat":
        pass
    answer: dict[str, Any] = frame
    return answer
