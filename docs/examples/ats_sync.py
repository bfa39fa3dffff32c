"""An ATS's side of a jobchat integration, end to end, against a running jobchat.

What it does, in the order an ATS would:

1. receives jobchat's webhooks on a small HTTP server of its own on loopback, verifying each
   request's Standard Webhooks signature with the ``standardwebhooks`` library (and, to show
   there is no magic in it, again with nothing but ``hmac``);
2. upserts an employer, a recruiter, a job, a candidate and their application (the PUT
   endpoints, keyed by the ATS's own ids);
3. registers a webhook pointing at its receiver;
4. starts the application's conversation as the recruiter, and the candidate replies;
5. waits for the events (``conversation.created``, ``message.created`` twice) to arrive;
6. makes an embed sign-in link for its candidate page's iframe, and prints the markup;
7. exports the candidate's data (their right of access), then erases them (their right to be
   forgotten), and reads the erasure back from the audit log.

Run it against ``jobchat demo`` (which prints its integration key, or uses JOBCHAT_API_KEY):

    JOBCHAT_WEBHOOKS_ALLOW_INSECURE=true JOBCHAT_EMBED_ORIGINS=https://ats.example.com \\
        jobchat demo --port 8000
    JOBCHAT_URL=http://127.0.0.1:8000 JOBCHAT_API_KEY=<the key it printed> \\
        python docs/examples/ats_sync.py

``JOBCHAT_WEBHOOKS_ALLOW_INSECURE`` lets a webhook point at http://127.0.0.1 (a real ATS
receives on https:// at a public address); ``JOBCHAT_EMBED_ORIGINS`` is the ATS's origin that
may frame jobchat. Needs Python 3.11+ and ``pip install standardwebhooks`` (nothing else: HTTP
is the standard library's). Exit status 0: every step worked (or was skipped because this
jobchat has no such endpoint, which it says).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

JOBCHAT_URL = os.environ.get("JOBCHAT_URL", "http://127.0.0.1:8000").rstrip("/")
API_KEY = os.environ.get("JOBCHAT_API_KEY", "")
WAIT_SECONDS = float(os.environ.get("ATS_SYNC_WAIT_SECONDS", "30"))
# Standard Webhooks: refuse a request signed more than this long ago (replayed).
TOLERANCE_SECONDS = 5 * 60


class Failed(Exception):
    """A step did not work: the message says which and why."""


# --- calling jobchat ---------------------------------------------------------------------------


def call(method: str, path: str, body: Any = None, *, token: str | None = None) -> Any:
    """One API call; its JSON answer. An error answer is raised as ApiError (the one shape:
    {"error": {"code", "message", "fields"?}})."""
    data = json.dumps(body).encode() if body is not None else None
    request = Request(f"{JOBCHAT_URL}{path}", data=data, method=method)  # noqa: S310 (http[s])
    request.add_header("Authorization", f"Bearer {token or API_KEY}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=30) as response:  # noqa: S310 (JOBCHAT_URL: http[s])
            raw = response.read()
    except HTTPError as error:
        raise ApiError(error.code, error.read()) from None
    return json.loads(raw) if raw else None


class ApiError(Exception):
    def __init__(self, status: int, raw: bytes) -> None:
        try:
            error = json.loads(raw)["error"]
            self.code, self.message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            self.code, self.message = "unknown", raw[:200].decode(errors="replace")
        super().__init__(f"{status} {self.code}: {self.message}")
        self.status = status


def missing(error: ApiError) -> bool:
    """The server has no such endpoint (an older jobchat): 404 or 405."""
    return error.status in (404, 405)


# --- receiving jobchat's webhooks --------------------------------------------------------------


def verify_with_hmac(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What standardwebhooks does, by hand: the signature is the base64 of an HMAC-SHA256 over
    "{webhook-id}.{webhook-timestamp}.{body}", keyed with the base64-decoded secret (after its
    whsec_ prefix). webhook-signature may hold several ("v1,sig1 v1,sig2" while a secret is
    being rotated): one match is enough. The timestamp must be recent, or it is a replay."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


class Receiver:
    """The ATS's webhook endpoint: POST /jobchat-hooks. Every request is verified before it is
    believed; a good one is answered 204 (jobchat retries anything else), a bad one 401."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: set[str] = set()
        self.rejected = 0
        self.disagreed = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.take(dict(self.headers.items()), body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jobchat-hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, raw_headers: dict[str, str], body: bytes) -> int:
        headers = {name.lower(): value for name, value in raw_headers.items()}
        if self.secret is None:
            return 503  # not ready yet: jobchat will try again
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            self.rejected += 1
            return 401
        if not verify_with_hmac(self.secret, headers, body):
            self.disagreed += 1  # cannot happen: both follow the same specification
            return 401
        msg_id = headers["webhook-id"]
        if msg_id in self.seen:
            return 204  # a retry of one already handled (our 2xx was lost): do it once
        self.seen.add(msg_id)
        self.events.put(payload)
        return 204

    def wait_for(self, wanted: list[str]) -> list[dict[str, Any]]:
        """The events of the ``wanted`` types, in the order they come (others are kept too)."""
        got: list[dict[str, Any]] = []
        remaining = list(wanted)
        deadline = time.monotonic() + WAIT_SECONDS
        while remaining:
            try:
                event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise Failed(f"no webhook for {remaining} within {WAIT_SECONDS:.0f} s") from None
            got.append(event)
            if event["type"] in remaining:
                remaining.remove(event["type"])
        return got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the steps ---------------------------------------------------------------------------------


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def upsert_everything(tag: str) -> dict[str, str]:
    """The ATS's objects, keyed by its own ids (a rerun updates them: every PUT is an upsert)."""
    ids = {
        "employer": f"ats-employer-{tag}",
        "recruiter": f"ats-recruiter-{tag}",
        "job": f"ats-job-{tag}",
        "candidate": f"ats-candidate-{tag}",
        "application": f"ats-application-{tag}",
    }
    call(
        "PUT",
        f"/api/v1/organizations/{ids['employer']}",
        {"name": "Harbour Dental", "kind": "employer"},
    )
    call(
        "PUT",
        f"/api/v1/users/{ids['recruiter']}",
        {
            "name": "Robin Ames",
            "email": f"{ids['recruiter']}@harbour-dental.example",
            "organization": ids["employer"],
            "role": "member",
            "timezone": "Australia/Sydney",
        },
    )
    call(
        "PUT",
        f"/api/v1/jobs/{ids['job']}",
        {"title": "Dental Nurse", "employer": ids["employer"], "team": [ids["recruiter"]]},
    )
    call(
        "PUT",
        f"/api/v1/candidates/{ids['candidate']}",
        {
            "name": "Sam Okoro",
            "email": f"{ids['candidate']}@example.org",
            "phone": "+61 491 570 006",  # a number set aside for examples (ACMA)
            "sms_consent": False,  # no consent recorded in the ATS: no texts
            "timezone": "Australia/Sydney",
        },
    )
    call(
        "PUT",
        f"/api/v1/applications/{ids['application']}",
        {
            "job": ids["job"],
            "candidate": ids["candidate"],
            "stage": "interview",
            "stage_owner": ids["recruiter"],
        },
    )
    for kind, ext_id in ids.items():
        print(f"  {kind:<12} {ext_id}")
    return ids


def register_webhook(receiver: Receiver) -> int:
    try:
        hook = call(
            "POST",
            "/api/v1/webhooks",
            {
                "url": receiver.url,
                "events": ["conversation.created", "message.created", "message.delivery"],
                "description": "ats_sync.py example",
            },
        )
    except ApiError as error:
        if error.status == 422 and "url" in error.message:
            raise Failed(
                f"jobchat refused the loopback URL ({error.message}); start it with "
                "JOBCHAT_WEBHOOKS_ALLOW_INSECURE=true for this example"
            ) from None
        raise
    receiver.secret = hook["secret"]  # shown only now: keep it in the ATS's secret store
    print(f"  webhook {hook['id']} -> {receiver.url}")
    return int(hook["id"])


def converse(ids: dict[str, str]) -> int:
    recruiter = call("POST", f"/api/v1/users/{ids['recruiter']}/tokens", {"name": "ats_sync"})
    candidate = call("POST", f"/api/v1/candidates/{ids['candidate']}/tokens", {"name": "ats_sync"})
    conversation = call(
        "POST",
        "/api/v1/conversations",
        {"kind": "application", "application": ids["application"]},
        token=recruiter["token"],
    )
    conv_id = int(conversation["id"])
    call(
        "POST",
        f"/api/v1/conversations/{conv_id}/messages",
        {"body": "Hi Sam, could you do a short video call on Thursday at 10?"},
        token=recruiter["token"],
    )
    call(
        "POST",
        f"/api/v1/conversations/{conv_id}/messages",
        {"body": "Thursday at 10 works for me, thank you."},
        token=candidate["token"],
    )
    # Tokens the example no longer needs are revoked (an ATS keeps its own, per user).
    for token in (recruiter, candidate):
        call("DELETE", f"/api/v1/tokens/{token['id']}")
    print(f"  conversation {conv_id}: the recruiter wrote, the candidate replied")
    return conv_id


def log_events(events: list[dict[str, Any]]) -> None:
    """What an ATS would do with them: put each on the candidate's record."""
    for event in events:
        data = event["data"]
        conv = data.get("conversation", {})
        line = f"  {event['timestamp']}  {event['type']:<22} application={conv.get('application')}"
        message = data.get("message")
        if event["type"] == "message.created" and message:
            author = message["author"] or {"kind": "system", "external_id": None}
            line += f"  {author['kind']} {author['external_id']}: {message['body']!r}"
        print(line)


def embed(ids: dict[str, str], conv_id: int) -> None:
    try:
        link = call(
            "POST",
            f"/api/v1/users/{ids['recruiter']}/login-links",
            {"embed": True, "next": f"/conversations/{conv_id}"},
        )
    except ApiError as error:
        if error.code == "embedding_off" or missing(error) or error.status == 422:
            print(f"  skipped: {error.message} (set JOBCHAT_EMBED_ORIGINS to the ATS's origin)")
            return
        raise
    print("  the candidate page's frame (a fresh link each time the page is drawn):")
    style = "width:100%;height:640px;border:0"
    print(f'  <iframe src="{link["url"]}" title="Messages" style="{style}"></iframe>')


def export_and_erase(ids: dict[str, str]) -> None:
    candidate = ids["candidate"]
    try:
        export = call("GET", f"/api/v1/candidates/{candidate}/export")
    except ApiError as error:
        if not missing(error):
            raise
        print(f"  skipped export: this jobchat has no export endpoint ({error.status})")
    else:
        messages = sum(len(c.get("messages", [])) for c in export.get("conversations", []))
        print(
            f"  export: {len(json.dumps(export))} bytes, {messages} messages in its conversations"
        )

    try:
        erased = call("POST", f"/api/v1/candidates/{candidate}/erase")
    except ApiError as error:
        if not missing(error):
            raise
        print(f"  skipped erasure: this jobchat has no erase endpoint ({error.status})")
        return
    counts = {k: v for k, v in erased["erased"].items() if v}
    print(f"  erased {candidate}: {counts}")
    again = call("POST", f"/api/v1/candidates/{candidate}/erase")
    if not again["already_erased"]:
        raise Failed("a second erasure of the same candidate did not say already_erased")
    print("  a repeated request answers already_erased (safe to retry)")

    try:
        audit = call("GET", "/api/v1/audit?action=candidate.erased&limit=5")
    except ApiError as error:
        if not missing(error):
            raise
        print(f"  skipped audit: this jobchat has no audit log endpoint ({error.status})")
        return
    entry = next(
        (e for e in audit["items"] if (e.get("subject") or {}).get("id") == candidate),
        None,
    )
    if entry is None:
        raise Failed(f"no candidate.erased entry for {candidate} in the audit log")
    print(f"  audit: {entry['action']} at {entry['at']}, details {entry['details']}")


def main() -> int:
    if not API_KEY:
        print(
            "Set JOBCHAT_API_KEY to the integration key (jobchat demo prints it).", file=sys.stderr
        )
        return 2
    tag = uuid.uuid4().hex[:8]
    receiver = Receiver()
    try:
        step(f"jobchat at {JOBCHAT_URL}; webhooks received at {receiver.url}")
        step("1. Upsert the ATS's objects")
        ids = upsert_everything(tag)
        step("2. Register a webhook")
        hook_id = register_webhook(receiver)
        step("3. A conversation")
        conv_id = converse(ids)
        step("4. The webhooks it caused, verified (standardwebhooks and plain hmac)")
        log_events(
            receiver.wait_for(["conversation.created", "message.created", "message.created"])
        )
        if receiver.rejected or receiver.disagreed:
            raise Failed(
                f"{receiver.rejected} webhook requests failed verification, and plain hmac "
                f"disagreed with standardwebhooks on {receiver.disagreed}"
            )
        step("5. Embedding")
        embed(ids, conv_id)
        step("6. Export and erasure")
        export_and_erase(ids)
        step("7. Remove the example's webhook")
        call("DELETE", f"/api/v1/webhooks/{hook_id}")
        print(f"  webhook {hook_id} deleted")
    except (Failed, ApiError) as problem:
        print(f"\nFAILED: {problem}", file=sys.stderr)
        return 1
    finally:
        receiver.close()
    print("\nDone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
