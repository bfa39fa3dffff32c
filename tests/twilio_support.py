"""Twilio test rig: a real HTTP server on loopback that speaks Twilio's Messages API (basic auth,
form fields, E.164 checks, the Message resource and Twilio's error bodies), keeps every request,
and can be told to fail, to hang, or to refuse; and the signatures and webhook forms Twilio
sends back to us.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from twilio.request_validator import RequestValidator

from jobchat.clock import FrozenClock
from jobchat.config import Settings
from jobchat.jobqueue.worker import Worker
from jobchat.sms.segments import count_segments

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32
FROM_NUMBER = "+15005550006"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2

INBOUND_PATH = "/api/v1/inbound/sms/twilio"
STATUS_PATH = "/api/v1/inbound/sms/twilio/status"

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


# The first text after a candidate's opt-in starts with a line saying who we are and how to stop
# (jobchat.sms.intro, tested in tests/test_sms_consent_replies.py); tests of other things read
# what follows it.
INTRO_LINE = re.compile(r"[^\n]* texts you about your job application\. Reply STOP to opt out\.\n")


def past_intro(text: str) -> str:
    """A text as its sender wrote it: without the intro line, if it starts with one."""
    found = INTRO_LINE.match(text)
    return text[found.end() :] if found else text


def sign(url: str, params: dict[str, str], auth_token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio puts on a webhook request to ``url`` with these form
    fields, computed by the official validator."""
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


def rfc2822(moment: datetime) -> str:
    """Dates as Twilio writes them: "Thu, 24 Aug 2023 05:01:45 +0000"."""
    return format_datetime(moment.astimezone(UTC))


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


# What Twilio answers with each status when it is not about one field of the request.
_ERRORS = {
    400: (21610, "Attempt to send to unsubscribed recipient"),
    403: (20003, "Permission Denied"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service is unavailable. Please try again"),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]  # the last value of each field

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user, password


@dataclass(frozen=True)
class _Failure:
    status: int
    code: int
    message: str


class TwilioServer:
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` on 127.0.0.1, as Twilio answers
    it. ``start()`` before use and ``stop()`` after (or use it as a context manager)."""

    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[RecordedRequest] = []
        self.messages: list[dict[str, Any]] = []  # every Message resource created, in order
        self.hang = False  # when set, requests get no answer until it is cleared or stop()
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> TwilioServer:
        server = self

        class Handler(_Handler):
            twilio = server

        self._released.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let hanging requests go
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> TwilioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self, count: int = 1, *, status: int = 500, code: int | None = None, message: str = ""
    ) -> None:
        """Answer the next ``count`` requests with ``status`` and Twilio's error body for it
        (``code`` and ``message`` to choose them, e.g. 400 with 21614 for a landline)."""
        default_code, default_message = _ERRORS.get(status, (status, "Error"))
        failure = _Failure(status, code or default_code, message or default_message)
        with self._lock:
            self._failures.extend([failure] * count)

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _wait_while_hanging(self) -> bool:
        """False when the server stopped while the request hung: it then gets no answer."""
        while self.hang:
            if self._released.wait(0.05):
                return False
        return True

    def _create_message(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = rfc2822(datetime.now(UTC))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        service = form.get("MessagingServiceSid")
        body = form.get("Body", "")
        message = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(count_segments(body).segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # A Messaging Service picks the sender later: until then the text is "accepted".
            "status": "accepted" if service and not form.get("From") else "queued",
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": form["To"],
            "uri": uri,
        }
        with self._lock:
            self.messages.append(message)
        return message

    def answer(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        match = _MESSAGES.match(request.path)
        if match is None or request.method != "POST":
            return 404, twilio_error(
                404, 20404, f"The requested resource {request.path} was not found"
            )
        if request.basic_auth != (self.account_sid, self.auth_token) or (
            match["account"] != self.account_sid
        ):
            return 401, twilio_error(401, 20003, "Authenticate")
        failure = self._next_failure()
        if failure is not None:
            return failure.status, twilio_error(failure.status, failure.code, failure.message)
        form = request.form
        to = form.get("To", "")
        if not to:
            return 400, twilio_error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return 400, twilio_error(
                400, 21211, f"The 'To' number {to} is not a valid phone number."
            )
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, twilio_error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body"):
            return 400, twilio_error(400, 21602, "Message body is required.")
        return 201, self._create_message(form)


class _Handler(BaseHTTPRequestHandler):
    twilio: TwilioServer

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=dict(self.headers.items()),
            form=dict(parse_qsl(raw.decode(), keep_blank_values=True)),
        )
        with self.twilio._lock:
            self.twilio.requests.append(request)
        if not self.twilio._wait_while_hanging():
            return
        status, payload = self.twilio.answer(request)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


def status_callback_form(
    message: dict[str, Any], status: str, *, error_code: int | None = None
) -> dict[str, str]:
    """The form Twilio posts to a message's StatusCallback when its status changes to
    ``status`` ("sent", "delivered", "undelivered", "failed")."""
    form = {
        "AccountSid": str(message["account_sid"]),
        "ApiVersion": "2010-04-01",
        "From": str(message["from"] or FROM_NUMBER),
        "MessageSid": str(message["sid"]),
        "MessageStatus": status,
        "SmsSid": str(message["sid"]),
        "SmsStatus": status,
        "To": str(message["to"]),
    }
    if message.get("messaging_service_sid"):
        form["MessagingServiceSid"] = str(message["messaging_service_sid"])
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form


def inbound_sms_form(
    *, from_number: str, body: str, to: str = FROM_NUMBER, account_sid: str = ACCOUNT_SID
) -> dict[str, str]:
    """The form Twilio posts to a number's incoming-message webhook when someone texts it."""
    sid = "SM" + secrets.token_hex(16)
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": from_number,
        "FromCity": "",
        "FromCountry": "US",
        "FromState": "",
        "FromZip": "",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": str(max(1, count_segments(body).segments)),
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": to,
        "ToCity": "",
        "ToCountry": "US",
        "ToState": "",
        "ToZip": "",
    }


# --- in-process: an app under TestClient set up for Twilio ---------------------------------------

# twilio's client builds its basic auth with an httpx API that now warns.
TWILIO_CLIENT_WARNINGS = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated"),
]


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    """A Twilio stand-in on loopback for this test."""
    server = TwilioServer().start()
    yield server
    server.stop()


# 10:00 on a Monday in Los Angeles, the zone of the world's candidate's number (+1 415): a text
# goes out at once. At the suite's usual 09:00 UTC it is 01:00 there, and SMS quiet hours
# (tests/test_sms_quiet_hours.py) would hold it for the morning.
CANDIDATE_DAYTIME = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


@pytest.fixture(name="clock")
def candidate_daytime_clock() -> FrozenClock:
    """The suite's frozen clock at CANDIDATE_DAYTIME (import it into a module as a fixture: it
    stands in for conftest's ``clock`` there)."""
    return FrozenClock(CANDIDATE_DAYTIME)


@pytest.fixture(name="settings")
def twilio_app_settings(settings: Settings, twilio: TwilioServer) -> Settings:
    """The suite's settings with SMS through ``twilio`` (import it into a module as a fixture:
    it stands in for conftest's ``settings`` there)."""
    return twilio_settings(settings, twilio)


@pytest.fixture
def worker(client: TestClient) -> Worker:
    """The jobs worker of the app under ``client``, to drive by hand."""
    from tests.mail_support import worker_for

    return worker_for(client.app)  # type: ignore[arg-type]


def twilio_settings(settings: Settings, server: TwilioServer) -> Settings:
    """``settings`` with SMS going through Twilio at ``server``, and its webhooks checked with
    our test auth token."""
    return settings.model_copy(
        update={
            "sms_provider": "twilio",
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": FROM_NUMBER,
            "twilio_api_url": server.url,
            "job_backoff_seconds": 10,
        }
    )


def webhook(
    client: TestClient, path: str, params: dict[str, str], *, signed: bool = True
) -> Response:
    """Post a Twilio webhook to the app under ``client`` (public URL http://testserver), signed
    the way Twilio signs it unless ``signed`` is false."""
    headers = {"X-Twilio-Signature": sign(f"http://testserver{path}", params)} if signed else {}
    response: Response = client.post(path, data=params, headers=headers)
    return response
