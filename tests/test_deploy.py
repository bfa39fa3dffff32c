"""The deployment of deploy/, run for real on loopback: Debian's nginx, configured from the
shipped site file (deploy/nginx/jobchat.conf), in front of two ``jobchat serve`` processes
(JOBCHAT_RUN_WORKER=false) and one ``jobchat worker``, on PostgreSQL and Redis.

The test changes only what a real machine would have differently in the site file: the ports
(free ones on 127.0.0.1), the upstream addresses (the two servers) and the certificate paths
(a self-signed certificate made here with the openssl CLI, which the clients verify). nginx
runs in the foreground with its own prefix, pid file and logs in the test's directory.

The database is a new one on the suite's PostgreSQL server (JOBCHAT_TEST_DATABASE_URL),
dropped afterwards; Redis keys carry a prefix of this run's own. Mail goes to a loopback SMTP
server (tests/mail_support.py). So the module runs in the suite's PostgreSQL pass.

Addresses: nginx reaches the servers from 127.0.0.1, which the servers trust
(JOBCHAT_TRUSTED_PROXIES); the test's client talks to nginx from 127.0.0.5, and straight to a
server from 127.0.0.3, so the access logs show whose address a server believed. A request is
found in the servers' logs by a unique ``probe``, sent both as a query parameter (uvicorn's access
log shows it) and as its X-Request-ID (jobchat's own log lines name that): it also tells which of
the two processes nginx sent it to.

The tests share one deployment and run in file order; the last two kill a server, then stop
both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fresh_database import fresh_postgres
from tests.mail_support import SmtpSink
from tests.support import (
    API_KEY,
    ServedProcess,
    assert_error,
    eventually,
    free_ports,
    spawn_serve,
    stop,
    wait_until_serving,
)

PG_URL = os.environ.get("JOBCHAT_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("JOBCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PG_URL,
        reason="the deployment runs on PostgreSQL and Redis: it runs in the suite's PostgreSQL "
        "pass (JOBCHAT_TEST_DATABASE_URL)",
    ),
]

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "jobchat.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CLIENT_ADDRESS = "127.0.0.5"  # the test's client, through nginx
DIRECT_ADDRESS = "127.0.0.3"  # the test's client, straight to a server
SPOOFED = "198.51.100.9"  # what a client claims in X-Forwarded-For (TEST-NET-2)
CANDIDATE_EMAIL = "carla@example.org"
WAIT = 20.0  # a generous deadline: a hit costs nothing

Frame = dict[str, Any]


# --- nginx ----------------------------------------------------------------------------------


def site_for_test(https_port: int, http_port: int, upstreams: list[int], tls: Path) -> str:
    """The shipped site file with this machine's ports, servers and certificate: every
    replaced line must be there exactly once, so the test follows the file an operator gets."""
    text = SITE.read_text()
    replacements = [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        # Loopback only: no IPv6 wildcard listener in a test.
        ("listen [::]:80;", ""),
        ("listen [::]:443 ssl http2;", ""),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstreams[0]};"),
        ("server 127.0.0.1:8002;", f"server 127.0.0.1:{upstreams[1]};"),
        ("/etc/ssl/jobchat/fullchain.pem", str(tls / "fullchain.pem")),
        ("/etc/ssl/jobchat/privkey.pem", str(tls / "privkey.pem")),
    ]
    for old, new in replacements:
        assert text.count(old) == 1, f"deploy/nginx/jobchat.conf no longer has {old!r} once"
        text = text.replace(old, new)
    return text


def nginx_main_config(prefix: Path, site: Path) -> str:
    """A main nginx.conf of the test's own, as Debian's includes sites-enabled."""
    # As root, nginx's workers would run as nobody, who cannot write the test's directory.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def self_signed_certificate(directory: Path) -> Path:
    directory.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(directory / "privkey.pem"),
            "-out",
            str(directory / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory


@dataclass
class Nginx:
    prefix: Path
    https_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        config = self.prefix / "nginx.conf"
        return [NGINX, "-p", str(self.prefix), "-c", str(config), "-e", str(self.error_log)]

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, "-t"], capture_output=True, text=True, timeout=60, check=False
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def log(self) -> str:
        return self.error_log.read_text() if self.error_log.exists() else ""


# --- the deployment -------------------------------------------------------------------------


@dataclass
class Server(ServedProcess):
    name: str = ""

    def direct(self) -> httpx.Client:
        """A client that connects to this server itself, from DIRECT_ADDRESS."""
        transport = httpx.HTTPTransport(local_address=DIRECT_ADDRESS)
        return httpx.Client(base_url=self.base, transport=transport, timeout=15, trust_env=False)


@dataclass
class Deployment:
    nginx: Nginx
    servers: list[Server]
    worker: subprocess.Popen[bytes]
    worker_log: IO[str]
    sink: SmtpSink
    tls: ssl.SSLContext
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        transport = httpx.HTTPTransport(verify=self.tls, local_address=CLIENT_ADDRESS)
        self.http = httpx.Client(
            base_url=self.base, transport=transport, timeout=30, trust_env=False
        )

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.nginx.https_port}"

    def logs(self) -> str:
        parts = [f"--- {s.name} ---\n{s.output()[-4000:]}" for s in self.servers]
        self.worker_log.flush()
        self.worker_log.seek(0)
        parts.append(f"--- worker ---\n{self.worker_log.read()[-3000:]}")
        parts.append(f"--- nginx ---\n{self.nginx.log()[-3000:]}")
        return "\n".join(parts)

    def logged(self, probe: str) -> tuple[Server, str]:
        """The server whose log has the request marked ``probe``, and its lines naming it."""

        def find() -> tuple[Server, str] | None:
            for server in self.servers:
                lines = [line for line in server.output().splitlines() if probe in line]
                if lines:
                    return server, "\n".join(lines)
            return None

        return eventually(find, f"a server logged the request {probe}", log=self.logs)

    def socket(self, token: str, after: int | None = None) -> Stream:
        probe = uuid.uuid4().hex
        query = f"token={token}&probe={probe}" + (f"&after={after}" if after is not None else "")
        url = f"wss://127.0.0.1:{self.nginx.https_port}/api/v1/events?{query}"
        socket = connect(
            url,
            ssl=self.tls,
            additional_headers={"X-Request-ID": probe},
            open_timeout=WAIT,
            close_timeout=2,
            proxy=None,
            legacy=True,
        )
        stream = Stream(socket)
        stream.holder, _ = self.logged(probe)
        return stream


@dataclass
class Stream:
    """An event-stream socket held through nginx, and every frame it got."""

    ws: ClientConnection
    frames: list[Frame] = field(default_factory=list)
    holder: Server | None = None

    def until(self, found: Callable[[Frame], bool], what: str, timeout: float = WAIT) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no frame in {timeout} s: {what}; got {self.frames[-5:]}")
            try:
                raw = self.ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            frame: Frame = json.loads(raw)
            self.frames.append(frame)
            if found(frame):
                return frame

    def until_all(self, done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Read frames until ``done()`` holds (at once, if it already does)."""
        if not done():
            self.until(lambda _frame: done(), what, timeout)

    def message_ids(self) -> list[int]:
        return [f["data"]["id"] for f in self.frames if f["type"] == "message.created"]

    def last_event_id(self) -> int | None:
        ids = [f["id"] for f in self.frames if f["id"] is not None]
        return ids[-1] if ids else None

    def close(self) -> None:
        self.ws.close()


def _env(database_url: str, redis_prefix: str, sink: SmtpSink, https_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")}
    env.pop("FORWARDED_ALLOW_IPS", None)
    return env | {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": database_url,
        "JOBCHAT_REDIS_URL": REDIS_URL,
        "JOBCHAT_REDIS_PREFIX": redis_prefix,
        "JOBCHAT_API_KEY": API_KEY,
        "JOBCHAT_PUBLIC_URL": f"https://127.0.0.1:{https_port}",
        "JOBCHAT_TRUSTED_PROXIES": "127.0.0.1",
        "JOBCHAT_RUN_WORKER": "false",
        "JOBCHAT_SMTP_URL": sink.url,
        "JOBCHAT_EMAIL_FROM": "Acme Hiring <hiring@example.com>",
        "JOBCHAT_REPLY_DOMAIN": "reply.example.com",
        "JOBCHAT_NOTIFY_DELAY_SECONDS": "3600",
        "JOBCHAT_WORKER_POLL_SECONDS": "0.2",
        "JOBCHAT_SEND_RATE_PER_MINUTE": "100000",
    }


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not Path(NGINX).exists():
        pytest.fail(
            "the deployment test needs Debian's nginx: apt-get install nginx-light "
            "(./scripts/test does)",
            pytrace=False,
        )
    assert PG_URL is not None
    workdir = tmp_path_factory.mktemp("deployment")
    tls_dir = self_signed_certificate(workdir / "tls")
    https_port, http_port, *ports = free_ports(4)
    prefix = f"jobchat-deploy-{uuid.uuid4().hex}"
    keys = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    sink = SmtpSink().start()
    with fresh_postgres(PG_URL, "deploy") as database_url:
        env = _env(database_url, prefix, sink, https_port)
        # Both servers and the worker start at once on the new database: the migration lock
        # (jobchat/db/migrate.py) lets one of them make the schema.
        servers: list[Server] = []
        for index, port in enumerate(ports, start=1):
            process, log = spawn_serve(port, env, workdir, f"server{index}.log")
            servers.append(Server(port, process, log, name=f"server{index}"))
        worker_log = (workdir / "worker.log").open("w+")
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobchat", "worker"],
            env=env,
            cwd=workdir,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        nginx = Nginx(workdir / "nginx", https_port, http_port)
        nginx.prefix.mkdir()
        site = nginx.prefix / "jobchat.conf"
        site.write_text(site_for_test(https_port, http_port, ports, tls_dir))
        (nginx.prefix / "nginx.conf").write_text(nginx_main_config(nginx.prefix, site))
        context = ssl.create_default_context(cafile=str(tls_dir / "fullchain.pem"))
        deployed = Deployment(nginx, servers, worker, worker_log, sink, context)
        try:
            checked = nginx.check()
            assert checked.returncode == 0, checked.stderr
            nginx.start()
            for server in servers:
                ready = wait_until_serving(server.process, server.base, deployed.logs)
                assert ready.status_code == 200, ready.text
            assert worker.poll() is None, deployed.logs()
            yield deployed
        finally:
            deployed.http.close()
            nginx.stop()
            for server in servers:
                server.http.close()
                if server.process.poll() is None:
                    stop(server.process)
                server.log.close()
            stop(worker)
            worker_log.close()
            sink.stop()
            for key in keys.scan_iter(match=f"{prefix}:*"):
                keys.delete(key)
            keys.close()


@dataclass
class Cast:
    recruiter: dict[str, str]
    candidate: dict[str, str]
    conversation: int


@pytest.fixture(scope="module")
def cast(deployment: Deployment) -> Cast:
    """A recruiter and a candidate in an application conversation, made through nginx."""
    integration = {"Authorization": f"Bearer {API_KEY}"}

    def put(path: str, body: dict[str, Any]) -> None:
        r = deployment.http.put(path, json=body, headers=integration)
        assert r.status_code in (200, 201), r.text

    def token(path: str) -> dict[str, str]:
        r = deployment.http.post(path, headers=integration)
        assert r.status_code in (200, 201), r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    put("/api/v1/organizations/acme", {"name": "Acme Health", "kind": "employer"})
    put(
        "/api/v1/users/rita",
        {
            "name": "Rita Recruiter",
            "email": "rita@example.com",
            "organization": "acme",
            "role": "member",
        },
    )
    put("/api/v1/candidates/carla", {"name": "Carla Candidate", "email": CANDIDATE_EMAIL})
    put("/api/v1/jobs/nurse", {"title": "Registered Nurse", "employer": "acme", "team": ["rita"]})
    put("/api/v1/applications/app1", {"job": "nurse", "candidate": "carla", "stage": "applied"})
    recruiter = token("/api/v1/users/rita/tokens")
    candidate = token("/api/v1/candidates/carla/tokens")
    started = deployment.http.post(
        "/api/v1/conversations",
        json={"kind": "application", "application": "app1"},
        headers=recruiter,
    )
    assert started.status_code in (200, 201), started.text
    return Cast(recruiter, candidate, int(started.json()["id"]))


def send(deployment: Deployment, cast: Cast, body: str, **extra: Any) -> tuple[httpx.Response, str]:
    """Send through nginx as the recruiter: the answer, and the probe marking the request."""
    probe = uuid.uuid4().hex
    response = deployment.http.post(
        f"/api/v1/conversations/{cast.conversation}/messages",
        params={"probe": probe},
        json={"body": body, **extra},
        headers=cast.recruiter | {"X-Request-ID": probe},
    )
    return response, probe


def store(deployment: Deployment, cast: Cast, body: str, key: str) -> int:
    """Send until stored, as a client does: a send caught by an outage (nginx's 503, or a
    dropped connection) is retried with the same idempotency key. The message's id."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            response, _ = send(deployment, cast, body, idempotency_key=key)
        except httpx.TransportError as exc:
            problem = repr(exc)
        else:
            if response.status_code == 201:
                return int(response.json()["id"])
            problem = f"{response.status_code}: {response.text}"
            if response.status_code != 503:
                raise AssertionError(problem)
        if time.monotonic() > deadline:
            raise AssertionError(f"never stored: {problem}")
        time.sleep(0.2)


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


# --- the tests --------------------------------------------------------------------------------


def test_the_site_serves_https_and_moves_http_there(deployment: Deployment) -> None:
    """nginx -t accepts the shipped site (the fixture checked); plain HTTP is moved to HTTPS,
    path and query kept; the API answers over HTTPS with a certificate the client verifies."""
    plain = httpx.get(
        f"http://127.0.0.1:{deployment.nginx.http_port}/inbox?x=1",
        follow_redirects=False,
        timeout=15,
    )
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://127.0.0.1")
    assert plain.headers["location"].endswith("/inbox?x=1")
    assert_error(deployment.http.get("/api/v1/me"), 401)
    assert "max-age" in deployment.http.get("/api/v1/me").headers["strict-transport-security"]


def test_the_shipped_site_passes_nginx_t_as_it_stands(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The site file exactly as shipped (its port 80 and 443 listeners, IPv6 included), but for
    the certificate paths, which must point at a real certificate: nginx accepts it."""
    tls = deployment.nginx.prefix.parent / "tls"
    text = SITE.read_text()
    for name in ("fullchain.pem", "privkey.pem"):
        text = text.replace(f"/etc/ssl/jobchat/{name}", str(tls / name))
    site = tmp_path / "jobchat.conf"
    site.write_text(text)
    (tmp_path / "nginx.conf").write_text(nginx_main_config(tmp_path, site))
    checked = Nginx(tmp_path, 443, 80).check()
    assert checked.returncode == 0, checked.stderr


def test_the_client_address_comes_from_the_trusted_proxy_only(deployment: Deployment) -> None:
    """Through nginx a server logs the client's own address (nginx's X-Forwarded-For), not the
    one the client wrote in its own X-Forwarded-For, and the https scheme (a redirect it makes
    says https). Straight to a server, the same headers are not believed: it logs the peer."""
    spoof = {"X-Forwarded-For": SPOOFED, "X-Forwarded-Proto": "https"}
    probe = uuid.uuid4().hex
    deployment.http.get(
        "/api/v1/me", params={"probe": probe}, headers=spoof | {"X-Request-ID": probe}
    )
    _, lines = deployment.logged(probe)
    assert CLIENT_ADDRESS in lines and SPOOFED not in lines, lines
    redirect = deployment.http.get("/api/v1/conversations/", headers=spoof)
    assert redirect.status_code == 307, redirect.text
    assert redirect.headers["location"].startswith("https://"), redirect.headers

    for server in deployment.servers:
        with server.direct() as direct:
            probe = uuid.uuid4().hex
            direct.get(
                "/api/v1/me", params={"probe": probe}, headers=spoof | {"X-Request-ID": probe}
            )
            _, lines = deployment.logged(probe)
            assert DIRECT_ADDRESS in lines and SPOOFED not in lines, lines
            redirect = direct.get("/api/v1/conversations/", headers=spoof)
            assert redirect.headers["location"].startswith("http://"), redirect.headers


def test_a_body_over_the_limit_is_refused_by_nginx_in_the_error_shape(
    deployment: Deployment,
) -> None:
    r = deployment.http.put(
        "/api/v1/organizations/big",
        content=b"x" * (70 * 1024),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    assert_error(r, 413, "payload_too_large")


def test_a_message_sent_through_one_process_reaches_a_socket_on_the_other(
    deployment: Deployment, cast: Cast
) -> None:
    """The candidate's socket is held, through nginx, by one server; the recruiter's sends go
    through nginx to either. Each reaches the socket, those that the other process stored
    included (the other process's commit wakes this one through Redis)."""
    stream = deployment.socket(token_of(cast.candidate))
    try:
        stream.until(lambda f: f["type"] == "ready", "ready")
        handled_by: set[str] = set()
        for attempt in range(8):
            response, probe = send(deployment, cast, f"Hello {attempt}")
            assert response.status_code == 201, response.text
            message_id = response.json()["id"]

            def arrived(frame: Frame, message_id: int = message_id) -> bool:
                return bool(
                    frame["type"] == "message.created" and frame["data"]["id"] == message_id
                )

            stream.until(arrived, f"message {message_id} on the socket")
            server, _ = deployment.logged(probe)
            handled_by.add(server.name)
            if stream.holder is not None and server.name != stream.holder.name:
                break
        assert stream.holder is not None
        assert handled_by - {stream.holder.name}, (
            f"nginx sent every send to {stream.holder.name}, which holds the socket"
        )
    finally:
        stream.close()


def test_the_worker_delivers_email_queued_through_either_process(
    deployment: Deployment, cast: Cast
) -> None:
    """Email messages sent through nginx land on both servers (neither runs a worker); the one
    ``jobchat worker`` sends each, once, to the mail server."""
    subjects: list[str] = []
    handled_by: set[str] = set()
    for attempt in range(10):
        subject = f"Interview {attempt} {uuid.uuid4().hex[:6]}"
        response, probe = send(
            deployment, cast, "Can you come on Tuesday?", channel="email", subject=subject
        )
        assert response.status_code == 201, response.text
        subjects.append(subject)
        handled_by.add(deployment.logged(probe)[0].name)
        if len(handled_by) == 2 and attempt >= 1:
            break
    assert handled_by == {"server1", "server2"}

    def delivered() -> Counter[str] | None:
        got = Counter(str(d.message["Subject"]) for d in deployment.sink.to(CANDIDATE_EMAIL))
        return got if all(got[s] >= 1 for s in subjects) else None

    got = eventually(delivered, "every email delivered by the worker", log=deployment.logs)
    assert all(got[s] == 1 for s in subjects), got


def test_a_server_killed_mid_stream_loses_nothing(deployment: Deployment, cast: Cast) -> None:
    """kill -9 of the server holding the candidate's socket while the recruiter keeps sending
    through nginx: every send answered 201 is stored; a send caught by the kill gets nginx's 503
    and is retried with its idempotency key (stored once); the socket reconnects through nginx
    to the other server with ?after= and gets every message once, none twice."""
    stream = deployment.socket(token_of(cast.candidate))
    stream.until(lambda f: f["type"] == "ready", "ready")
    holder = stream.holder
    assert holder is not None
    acknowledged: list[int] = []
    failures: list[str] = []
    stop_sending = threading.Event()

    def keep_sending() -> None:
        try:
            for index in range(60):
                if stop_sending.is_set():
                    return
                key = f"kill-{index}-{uuid.uuid4().hex[:8]}"
                acknowledged.append(store(deployment, cast, f"Update {index}", key))
                time.sleep(0.02)
        except AssertionError as exc:
            failures.append(str(exc))

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        eventually(lambda: True if len(acknowledged) >= 10 else None, "sends before the kill")
        holder.process.send_signal(signal.SIGKILL)
        holder.process.wait(timeout=15)
        with pytest.raises(ConnectionClosed):
            stream.until(lambda f: False, "the socket closing", timeout=WAIT)
        after = stream.last_event_id()
        assert after is not None
        eventually(lambda: True if len(acknowledged) >= 25 else None, "sends after the kill")
        resumed = deployment.socket(token_of(cast.candidate), after=after)
        assert resumed.holder is not None and resumed.holder.name != holder.name
    finally:
        stop_sending.set()
        sender.join(timeout=60)
    try:
        assert not failures, failures
        resumed.until(lambda f: f["type"] == "ready", "ready after resuming")
        expected = set(acknowledged)
        resumed.until_all(
            lambda: expected <= set(stream.message_ids() + resumed.message_ids()),
            "every acknowledged message on the socket",
        )
    finally:
        resumed.close()

    received = stream.message_ids() + resumed.message_ids()
    ours = [m for m in received if m in expected]
    assert sorted(ours) == sorted(expected), "each message exactly once on the socket"
    event_ids = [f["id"] for f in stream.frames + resumed.frames if f["id"] is not None]
    assert event_ids == sorted(set(event_ids)), "no event twice, and in order"

    history = deployment.http.get(
        f"/api/v1/conversations/{cast.conversation}/messages",
        params={"limit": 200},
        headers=cast.recruiter,
    )
    assert history.status_code == 200, history.text
    assert history.json()["next_cursor"] is None
    stored = [m for m in history.json()["items"] if m["body"].startswith("Update ")]
    assert expected <= {m["id"] for m in stored}
    assert len(stored) == len({m["body"] for m in stored}), "a retried send was stored twice"


def test_with_every_server_down_nginx_answers_503_in_the_error_shape(
    deployment: Deployment,
) -> None:
    """nginx's own answer when no server is left is jobchat's 503, with Retry-After, not an
    HTML 502 page. (Runs last: it stops the servers.)"""
    for server in deployment.servers:
        if server.process.poll() is None:
            stop(server.process)
    response = deployment.http.get("/api/v1/me")
    assert_error(response, 503, "service_unavailable")
    assert int(response.headers["retry-after"]) > 0
