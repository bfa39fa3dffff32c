"""Bulk messages: one POST to 1,000 candidates, by app and by email, until every message is
posted (and, by email, until the SMTP server has every email).

Run from the project root:

    .venv/bin/python bench/bench_bulk.py
    .venv/bin/python bench/bench_bulk.py --database postgresql://postgres@127.0.0.1:5432/jc_bench_bulk

It starts a real ``jobchat serve`` with its jobs worker in-process, as deployed (a fresh SQLite
file in a temporary directory, or the PostgreSQL database given, created if missing and its
``public`` schema dropped; ``test`` is refused), sending email to an aiosmtpd server in its own
process that only counts what it receives. Notification emails are kept out of the count
(JOBCHAT_NOTIFY_DELAY_SECONDS is an hour). Each round seeds N fresh candidates (default 1,000)
with an application each through the integration API, and no conversation: the bulk message
opens every one of them, as a first message to applicants does. Then, for each channel:

- ``POST /api/v1/bulk-messages`` with all N applications and a template-style body with merge
  fields, then ``GET /api/v1/bulk-messages/{id}`` every 50 ms until ``"status": "done"``;
- by email, also until the SMTP server has received N emails.

Reported per round: seconds from the POST to done (and to the last email), and CPU per
recipient of the server process (the API and its worker: the bulk runner, the notification
ladder's jobs, the email deliveries) and, on PostgreSQL, of its backends. Rounds (default 3)
give medians; the load average before and after is printed, since the machine may be shared.
Figures go to ``bench/results/bulk-<dialect>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from bench_email import (
    EMAIL_FROM,
    REPLY_DOMAIN,
    SEED_CONCURRENCY,
    Api,
    Server,
    Sink,
    backend_cpu,
    backend_delta,
    code_version,
    cpu_seconds,
    free_port,
    gather_limited,
    start_server,
)
from seeding import reset_database, sqlalchemy_url
from sqlalchemy.engine import make_url

GOAL_SECONDS = 10.0  # 1,000 in-app messages posted within this (issue 17)
BODY = "Hi {{candidate.first_name | there}}, thanks for applying to {{job.title}}. Are you free?"
SUBJECT = "{{job.title}} at {{employer.name}}: next steps"


async def setup(api: Api) -> str:
    await api.call("PUT", "/api/v1/organizations/acme", {"name": "Acme Health", "kind": "employer"})
    staff = {"name": "Tess Team", "email": "tess@bench.example", "organization": "acme"}
    await api.call("PUT", "/api/v1/users/tess", staff | {"role": "member"})
    job = {"title": "Registered Nurse", "employer": "acme", "team": ["tess"]}
    await api.call("PUT", "/api/v1/jobs/nurse", job)
    token: str = (await api.call("POST", "/api/v1/users/tess/tokens"))["token"]
    return token


async def applicants(api: Api, prefix: str, n: int) -> list[str]:
    """N fresh candidates who applied to the job: their applications' ids."""

    async def one(i: int) -> str:
        ext = f"{prefix}-{i}"
        person = {"name": f"Candidate {prefix} {i}", "email": f"{ext}@bench.example"}
        await api.call("PUT", f"/api/v1/candidates/{ext}", person)
        application = {"job": "nurse", "candidate": ext, "stage": "interview"}
        await api.call("PUT", f"/api/v1/applications/app-{ext}", application)
        return f"app-{ext}"

    made: list[str] = await gather_limited([partial(one, i) for i in range(n)], SEED_CONCURRENCY)
    return made


async def over_http(base: str, api_key: str, what: Any, *args: Any) -> Any:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return await what(Api(client, api_key), *args)


def one_bulk(
    server: Server,
    token: str,
    applications: list[str],
    channel: str,
    sink: Sink,
    database: str | None,
) -> dict[str, Any]:
    n = len(applications)
    headers = {"Authorization": f"Bearer {token}"}
    body: dict[str, Any] = {"applications": applications, "body": BODY, "channel": channel}
    if channel == "email":
        body["subject"] = SUBJECT
    pid = server.process.pid
    emails_before = sink.count
    cpu_before, backends_before = cpu_seconds(pid), backend_cpu(database)
    with httpx.Client(base_url=server.base, headers=headers, timeout=60) as http:
        t0 = time.perf_counter()
        posted = http.post("/api/v1/bulk-messages", json=body)
        if posted.status_code != 202:
            raise SystemExit(f"POST: {posted.status_code} {posted.text}")
        bulk_id = posted.json()["id"]
        post_s = time.perf_counter() - t0
        while True:
            got = http.get(f"/api/v1/bulk-messages/{bulk_id}").json()
            if got["status"] == "done":
                break
            if time.perf_counter() - t0 > 600:
                raise SystemExit(f"not done after 600 s: {got['sent']} sent\n{server.log_tail()}")
            time.sleep(0.05)
        done_s = time.perf_counter() - t0
        out: dict[str, Any] = {
            "channel": channel,
            "recipients": n,
            "sent": got["sent"],
            "skipped": len(got["skipped"]),
            "post_s": round(post_s, 3),
            "done_s": round(done_s, 2),
        }
        if channel == "email":
            while sink.count - emails_before < n:
                if time.perf_counter() - t0 > 900:
                    raise SystemExit(f"{sink.count - emails_before} of {n} emails after 900 s")
                time.sleep(0.02)
            out["last_email_s"] = round(time.perf_counter() - t0, 2)
        # The worker is still running the notification ladder's jobs for the messages: let it
        # finish, so their CPU is counted with the bulk that caused them.
        quiet = cpu_seconds(pid)
        while True:
            time.sleep(0.5)
            now = cpu_seconds(pid)
            if now - quiet < 0.05:
                break
            quiet = now
    out["server_cpu_ms_per_recipient"] = round((cpu_seconds(pid) - cpu_before) * 1000 / n, 2)
    if database:
        backends = backend_delta(backends_before, database)
        out["db_backends_cpu_ms_per_recipient"] = round(backends * 1000 / n, 2)
    return out


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = sqlalchemy_url(args.database)
    reset_database(url)
    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() == "postgresql" else None
    sink = Sink.start()
    api_key = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")} | {
        "PYTHONUNBUFFERED": "1",
        "JOBCHAT_DATABASE_URL": args.database,
        "JOBCHAT_API_KEY": api_key,
        "JOBCHAT_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "JOBCHAT_EMAIL_FROM": EMAIL_FROM,
        "JOBCHAT_REPLY_DOMAIN": REPLY_DOMAIN,
        "JOBCHAT_INBOUND_SMTP_PORT": str(free_port()),
        "JOBCHAT_NOTIFY_DELAY_SECONDS": "3600",
        "JOBCHAT_RUN_WORKER": "true",
    }
    server = start_server(workdir, env)
    rounds: list[dict[str, Any]] = []
    try:
        token = asyncio.run(over_http(server.base, api_key, setup))
        for round_no in range(1, args.rounds + 1):
            for channel in ("app", "email"):
                t0 = time.perf_counter()
                apps = asyncio.run(
                    over_http(
                        server.base, api_key, applicants, f"r{round_no}{channel}", args.recipients
                    )
                )
                seeded = time.perf_counter() - t0
                result = one_bulk(server, token, apps, channel, sink, database)
                result |= {"round": round_no, "seed_s": round(seeded, 1)}
                result["load_average"] = [round(x, 2) for x in os.getloadavg()]
                print(f"  {result}", flush=True)
                rounds.append(result)
    finally:
        code = server.stop()
        sink.stop()
        log = server.log.read_text(errors="replace")
        if "Traceback" in log or " ERROR " in log:
            copy = args.results_dir / f"bulk-{parsed.get_backend_name()}-server.log"
            copy.write_text(log)
            print(f"the server logged errors: {copy}")
    return {"rounds": rounds, "server_exit": code}


def medians(rounds: list[dict[str, Any]], channel: str) -> dict[str, float]:
    mine = [r for r in rounds if r["channel"] == channel]
    keys = [
        "done_s",
        "last_email_s",
        "server_cpu_ms_per_recipient",
        "db_backends_cpu_ms_per_recipient",
    ]
    return {
        key: round(statistics.median(r[key] for r in mine), 2)
        for key in keys
        if all(key in r for r in mine)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--recipients", type=int, default=1000, help="candidates per bulk")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="results file name (default: bulk-<dialect>.json)")
    args = parser.parse_args(argv)
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    args.results_dir = results_dir
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jobchat-bulk-") as tmp:
        if args.database is None:
            args.database = f"sqlite:///{tmp}/bulk.db"
        dialect = make_url(sqlalchemy_url(args.database)).get_backend_name()
        print(f"jobchat bulk benchmark on {dialect}", flush=True)
        results = run(args, Path(tmp))
    load_after = os.getloadavg()
    summary = {channel: medians(results["rounds"], channel) for channel in ("app", "email")}
    goal = summary["app"]["done_s"] < GOAL_SECONDS
    report = {
        "dialect": dialect,
        "recipients": args.recipients,
        "medians": summary,
        "goal": {"app_done_under_s": GOAL_SECONDS, "met": goal},
        "load_average": {"before": load_before, "after": load_after},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "code": code_version(),
        **results,
    }
    out = results_dir / (args.out or f"bulk-{dialect}.json")
    out.write_text(json.dumps(report, indent=2))
    print(f"\n## {dialect}: medians of {args.rounds} rounds, {args.recipients} recipients\n")
    print("| channel | POST to done s | POST to last email s | server CPU ms/recipient |")
    print("|---|---:|---:|---:|")
    for channel in ("app", "email"):
        m = summary[channel]
        print(
            f"| {channel} | {m['done_s']} | {m.get('last_email_s', '')} "
            f"| {m['server_cpu_ms_per_recipient']} |"
        )
    print(f"\ngoal (1,000 in-app under {GOAL_SECONDS} s): {'met' if goal else 'MISSED'}")
    print(f"load average before {load_before}, after {load_after}; written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
