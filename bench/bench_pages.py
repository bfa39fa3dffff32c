"""Page weight and first render: each page of the web app, as each demo persona sees it, on a
fresh demo database.

Run from the project root (about two minutes):

    .venv/bin/python bench/bench_pages.py
    .venv/bin/python bench/bench_pages.py --requests 50 --paints 9

It builds the demo world the way ``jobchat demo`` does (``fresh_database`` + ``build_demo``, a
SQLite file in a temporary directory), starts a real ``jobchat serve`` on it (jobs worker off, so
nothing else runs in the server while it is measured), signs each persona in with a sign-in link
from the integration API, and measures every page:

- weight: the HTML and every stylesheet, script and icon it names, fetched as a browser asks
  (``Accept-Encoding: gzip, deflate, br``). When the server compresses (``Content-Encoding``),
  the bytes on the wire count; when it does not, the gzip level 6 size of each body (what
  nginx's or Starlette's gzip would send) is counted, and the table says so.
- server time: ``--requests`` GETs of the page over loopback, one after another on a kept-alive
  connection, timed from sending the request to the last byte of the body (p50 / p95).
- first render: Debian's Chromium (Playwright), a fresh context per sample that has only
  fetched /healthz (so its renderer process is up) and has nothing of the page cached (cold),
  then the same page again in that context (warm), at a 375 x 667 touch phone and a 1280 x 800
  desktop; ``first-contentful-paint`` from a buffered PerformanceObserver('paint'), in ms from
  the start of the navigation (so the server's answer is included). Loopback: no network
  latency is added.

Goals (issue 15): under 100 KB compressed per page (HTML + CSS + JS + icon), first render under
200 ms (the median cold first-contentful-paint, at both sizes). The script exits 1 when one is
missed. The figures are printed as markdown tables and written to ``bench/results/pages.json``.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from bench_email import cpu_seconds, free_port, pct, wait_until_serving

GOAL_KB = 100.0
GOAL_FCP_MS = 200.0
CHROMIUM = "/usr/bin/chromium"
SESSION_COOKIE = "jobchat_session"  # jobchat/auth/deps.py
ACCEPT_ENCODING = "gzip, deflate, br"  # what Chromium sends
DEVICES: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 375, "height": 667},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
# The paint entry, whether it came before this runs or comes after (buffered: true).
FCP_JS = """() => new Promise((resolve) => {
  const found = (entries) => entries.find((e) => e.name === 'first-contentful-paint');
  const now = found(performance.getEntriesByType('paint'));
  if (now) { resolve(now.startTime); return; }
  new PerformanceObserver((list, observer) => {
    const entry = found(list.getEntries());
    if (entry) { observer.disconnect(); resolve(entry.startTime); }
  }).observe({ type: 'paint', buffered: true });
  setTimeout(() => resolve(null), 5000);
})"""


# --- the pages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A page as one persona sees it; ``{name}`` in the path is one of their conversations."""

    name: str
    who: str | None  # None: signed out
    path: str


# (name, who, kind): the conversation a ``{name}`` stands for, the first of that kind in the
# person's inbox (jobchat/demo.py has one of each).
CONVERSATIONS = [
    ("application", "nw-marcus", "application"),
    ("agency_private", "bright-rachel", "agency_private"),
    ("case", "iress-tom", "case"),
    ("job_partners", "tbb-layla", "job_partners"),
    ("relocation", "cand-omar", "job_relocation"),
    ("hannah", "cand-hannah", "application"),
]

PAGES = [
    Page("home (signed out)", None, "/"),
    Page("inbox", "nw-marcus", "/inbox"),
    Page("conversation: application", "nw-marcus", "/conversations/{application}"),
    Page("candidates", "nw-marcus", "/candidates"),
    Page("profile: Messages", "nw-marcus", "/candidates/cand-hannah?tab=messages"),
    Page("profile: Communications", "nw-marcus", "/candidates/cand-hannah?tab=communications"),
    Page("profile: Agency messaging", "nw-marcus", "/candidates/cand-maria?tab=agency"),
    Page("jobs", "nw-marcus", "/jobs"),
    Page("job: Overview", "nw-marcus", "/jobs/nw-icu-rn?tab=overview"),
    Page("job: Job Chats", "nw-marcus", "/jobs/nw-icu-rn?tab=chats"),
    Page("settings", "nw-marcus", "/settings"),
    Page("job: chat open", "iress-tom", "/jobs/iress-swe-2?tab=chats&open={case}"),
    Page("conversation: case", "iress-tom", "/conversations/{case}"),
    Page("inbox", "tbb-layla", "/inbox"),
    Page("conversation: all partners", "tbb-layla", "/conversations/{job_partners}"),
    Page("inbox", "bright-rachel", "/inbox"),
    Page("candidates", "bright-rachel", "/candidates"),
    Page("conversation: private", "bright-rachel", "/conversations/{agency_private}"),
    Page("portal", "cand-omar", "/portal"),
    Page("conversation: relocation", "cand-omar", "/conversations/{relocation}"),
    Page("portal", "cand-hannah", "/portal"),
    Page("conversation: application", "cand-hannah", "/conversations/{hannah}"),
]


# --- the server ----------------------------------------------------------------------------------


def jobchat_command() -> list[str]:
    script = Path(sys.executable).with_name("jobchat")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobchat"]


def build_demo_database(path: Path, public_url: str) -> float:
    """The demo world at ``path``, exactly as ``jobchat demo`` builds it; seconds taken."""
    from jobchat.demo import build_demo, fresh_database

    started = time.perf_counter()
    db = fresh_database(f"sqlite:///{path}")
    try:
        build_demo(db, public_url=public_url)
    finally:
        db.dispose()
    return time.perf_counter() - started


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    api_key: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_server(workdir: Path, database: Path, port: int) -> Server:
    base = f"http://127.0.0.1:{port}"
    api_key = f"bench-{secrets.token_urlsafe(16)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCHAT_")} | {
        "JOBCHAT_DATABASE_URL": f"sqlite:///{database}",
        "JOBCHAT_PUBLIC_URL": base,
        "JOBCHAT_API_KEY": api_key,
        "JOBCHAT_SMS_PROVIDER": "console",
        # Nothing but the pages in the server while they are timed (the demo leaves
        # notifications due).
        "JOBCHAT_RUN_WORKER": "false",
    }
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*jobchat_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,  # so that no .env of the caller's working directory is read
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, base, log, api_key)
    wait_until_serving(server)
    return server


# --- signing in ----------------------------------------------------------------------------------


def _per_person(api: httpx.Client, who: str, what: str) -> dict[str, Any]:
    """POST /api/v1/{users|candidates}/{who}/{what}, whichever ``who`` is."""
    for kind in ("users", "candidates"):
        response = api.post(f"/api/v1/{kind}/{who}/{what}")
        if response.status_code != 404:
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer
    raise SystemExit(f"nobody has the external id {who!r}: is this the demo?")


def session_cookie(server: Server, api: httpx.Client, who: str) -> str:
    """Follow a fresh one-time sign-in link; the session cookie it sets."""
    url = _per_person(api, who, "login-links")["url"]
    response = httpx.get(url, follow_redirects=False, timeout=15)
    cookie = response.cookies.get(SESSION_COOKIE)
    if response.status_code != 303 or not cookie:
        raise SystemExit(f"signing in as {who} failed: {response.status_code} {response.text}")
    return cookie


def conversation_ids(api: httpx.Client) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, who, kind in CONVERSATIONS:
        token = _per_person(api, who, "tokens")["token"]
        items = api.get(
            "/api/v1/conversations?limit=100", headers={"Authorization": f"Bearer {token}"}
        ).json()["items"]
        found[name] = next(int(c["id"]) for c in items if c["kind"] == kind)
    return found


# --- weight --------------------------------------------------------------------------------------


class _Assets(HTMLParser):
    """The stylesheets, scripts and icons a page names."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (type, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        rel = set(a.get("rel", "").lower().split())
        if tag == "script" and a.get("src"):
            self.found.append(("js", a["src"]))
        elif tag == "link" and a.get("href") and "stylesheet" in rel:
            self.found.append(("css", a["href"]))
        elif tag == "link" and a.get("href") and rel & {"icon", "preload", "modulepreload"}:
            self.found.append(("other", a["href"]))


@dataclass
class Resource:
    url: str
    type: str  # html, css, js, other
    status: int
    encoding: str  # Content-Encoding sent, "" for none
    raw_bytes: int  # the body, decoded
    wire_bytes: int  # the body as sent
    gzip6_bytes: int  # the body gzipped at level 6

    @property
    def compressed(self) -> int:
        """What a browser downloads: the wire when the server compresses, else gzip -6."""
        return self.wire_bytes if self.encoding else self.gzip6_bytes


def fetch(client: httpx.Client, url: str, type_: str) -> Resource:
    response = client.get(url, headers={"Accept-Encoding": ACCEPT_ENCODING})
    body = response.content
    return Resource(
        url=url,
        type=type_,
        status=response.status_code,
        encoding=response.headers.get("content-encoding", ""),
        raw_bytes=len(body),
        wire_bytes=response.num_bytes_downloaded,
        gzip6_bytes=len(gzip.compress(body, compresslevel=6)),
    )


def weigh(client: httpx.Client, url: str, assets: dict[str, Resource]) -> list[Resource]:
    """The page and everything it names (assets are fetched once and remembered)."""
    page = fetch(client, url, "html")
    if page.status != 200:
        raise SystemExit(f"GET {url}: {page.status}")
    parser = _Assets()
    parser.feed(client.get(url).text)
    found = [page]
    for type_, href in parser.found:
        absolute = urljoin(url, href)
        if urlsplit(absolute).netloc != urlsplit(url).netloc:
            raise SystemExit(f"{url} loads {absolute} from elsewhere")
        if absolute not in assets:
            assets[absolute] = fetch(client, absolute, type_)
        found.append(assets[absolute])
    return found


# --- time ----------------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    return pct(sorted(values), 95)


def server_times(client: httpx.Client, url: str, n: int, pid: int) -> tuple[list[float], float]:
    """(ms from sending the request to the last byte of the answer, ``n`` times in a row; the
    server's CPU ms per request, which a busy machine does not inflate as it does wall time)."""
    times = []
    client.get(url)  # a first request warms the templates' cache and the connection
    cpu = cpu_seconds(pid)
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url)
        response.read()
        times.append((time.perf_counter() - started) * 1000)
    return times, (cpu_seconds(pid) - cpu) * 1000 / n


def paints(
    browser: Any, base: str, cookie: str | None, path: str, device: str, n: int
) -> tuple[list[float], list[float], int]:
    """(cold first-contentful-paint ms per sample, warm ones, requests of a cold load)."""
    cold: list[float] = []
    warm: list[float] = []
    requests = 0
    for _ in range(n):
        context = browser.new_context(base_url=base, locale="en-US", **DEVICES[device])
        if cookie:
            context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": base}])
        page = context.new_page()
        # The tab is on the site already (its renderer process started, its connection open),
        # with nothing of the page cached: what is timed is our page, not Chromium starting a
        # process for a new site, which is most of a cold tab's time on a busy machine.
        page.goto("/healthz")
        loaded: list[str] = []
        page.on("request", lambda request, seen=loaded: seen.append(request.url))
        for samples in (cold, warm):
            page.goto(path, wait_until="load")
            fcp = page.evaluate(FCP_JS)
            if fcp is None:
                raise SystemExit(f"{path}: no first-contentful-paint in 5 s ({device})")
            samples.append(float(fcp))
            if samples is cold:
                requests = len(loaded)
        context.close()
    return cold, warm, requests


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Result:
    page: str
    who: str
    path: str
    resources: list[Resource]
    server_ms: list[float] = field(default_factory=list)
    server_cpu_ms: float = 0.0
    fcp_cold: dict[str, list[float]] = field(default_factory=dict)
    fcp_warm: dict[str, list[float]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)

    def kb(self, *types: str) -> float:
        return sum(r.compressed for r in self.resources if not types or r.type in types) / 1024

    def raw_kb(self) -> float:
        return sum(r.raw_bytes for r in self.resources) / 1024


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    database = workdir / "demo.db"
    built = build_demo_database(database, f"http://127.0.0.1:{port}")
    print(f"demo database built in {built:.1f} s")
    server = start_server(workdir, database, port)
    results: list[Result] = []
    try:
        api = httpx.Client(
            base_url=server.base,
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=15,
        )
        conversations = conversation_ids(api)
        cookies = {who: session_cookie(server, api, who) for who in {p.who for p in PAGES if p.who}}
        assets: dict[str, Resource] = {}
        for page in PAGES:
            path = page.path.format(**conversations)
            url = server.base + path
            jar = {SESSION_COOKIE: cookies[page.who]} if page.who else {}
            with httpx.Client(cookies=jar, timeout=15) as client:
                weight = weigh(client, url, assets)
                result = Result(page.name, page.who or "signed out", path, weight)
                result.server_ms, result.server_cpu_ms = server_times(
                    client, url, args.requests, server.process.pid
                )
            results.append(result)
        load_before = load_average()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            for page, result in zip(PAGES, results, strict=True):
                cookie = cookies.get(page.who) if page.who else None
                for device in DEVICES:
                    cold, warm, requests = paints(
                        browser, server.base, cookie, result.path, device, args.paints
                    )
                    result.fcp_cold[device] = cold
                    result.fcp_warm[device] = warm
                    result.requests[device] = requests
            browser.close()
        problems = [
            line
            for line in server.log.read_text(errors="replace").splitlines()
            if "Traceback" in line or " ERROR " in line
        ]
    finally:
        server.stop()
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}",
        "load_before_browser": load_before,
        "load_after": load_average(),
        "requests": args.requests,
        "paints": args.paints,
        "server_compresses": sorted({r.encoding for res in results for r in res.resources}),
        "server_log_problems": problems,
        "commit": git_commit(),
    }
    return results, meta


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""


# --- the report ----------------------------------------------------------------------------------


def table(results: list[Result], meta: dict[str, Any]) -> str:
    compresses = [e for e in meta["server_compresses"] if e]
    how = f"as sent ({', '.join(compresses)})" if compresses else "gzip -6 (the server sends none)"
    lines = [
        f"Weight: KB compressed, {how}; raw = uncompressed. Server: ms for the whole answer over "
        f"loopback, {meta['requests']} requests, and the server's CPU ms per request. First "
        f"render: first-contentful-paint ms, "
        f"median of {meta['paints']} (cold: nothing cached; warm: the page again).",
        "",
        "| page | who | HTML KB | CSS KB | JS KB | total KB | raw KB | server p50 | server p95 "
        "| server CPU | phone cold p50 | phone cold p95 | phone warm | desktop cold p50 "
        "| desktop cold p95 | desktop warm | requests |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.page} | {r.who} | {r.kb('html'):.1f} | {r.kb('css'):.1f} | {r.kb('js'):.1f} "
            f"| {r.kb():.1f} | {r.raw_kb():.1f} "
            f"| {statistics.median(r.server_ms):.1f} | {p95(r.server_ms):.1f} "
            f"| {r.server_cpu_ms:.1f} "
            f"| {statistics.median(r.fcp_cold['phone']):.0f} | {p95(r.fcp_cold['phone']):.0f} "
            f"| {statistics.median(r.fcp_warm['phone']):.0f} "
            f"| {statistics.median(r.fcp_cold['desktop']):.0f} "
            f"| {p95(r.fcp_cold['desktop']):.0f} "
            f"| {statistics.median(r.fcp_warm['desktop']):.0f} | {r.requests['desktop']} |"
        )
    return "\n".join(lines)


def goals(results: list[Result]) -> list[str]:
    """What misses a goal (empty: all met)."""
    missed = []
    for r in results:
        if r.kb() >= GOAL_KB:
            missed.append(f"{r.page} ({r.who}): {r.kb():.1f} KB compressed, goal < {GOAL_KB:.0f}")
        for device, samples in r.fcp_cold.items():
            median = statistics.median(samples)
            if median >= GOAL_FCP_MS:
                missed.append(
                    f"{r.page} ({r.who}, {device}): first render {median:.0f} ms, "
                    f"goal < {GOAL_FCP_MS:.0f}"
                )
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=30, help="server timings per page")
    parser.add_argument("--paints", type=int, default=5, help="browser loads per page and size")
    parser.add_argument("--out", default="bench/results/pages.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"this benchmark drives Debian's Chromium at {CHROMIUM}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    results, meta = run(args, workdir)
    print()
    print(table(results, meta))
    assets = {r.url: r for res in results for r in res.resources if r.type != "html"}
    print("\n| asset | raw KB | compressed KB | Content-Encoding |\n|---|---:|---:|---|")
    for url, r in sorted(assets.items()):
        print(
            f"| {urlsplit(url).path} | {r.raw_bytes / 1024:.1f} | {r.compressed / 1024:.1f} "
            f"| {r.encoding or 'none'} |"
        )
    missed = goals(results)
    print(
        f"\nload average: {meta['load_before_browser']} before the browser, {meta['load_after']} "
        f"after; {meta['machine']}; commit {meta['commit']}"
    )
    if meta["server_log_problems"]:
        print("the server logged problems:\n  " + "\n  ".join(meta["server_log_problems"][:10]))
    print(
        f"\nGoals: under {GOAL_KB:.0f} KB compressed per page, first render under "
        f"{GOAL_FCP_MS:.0f} ms (median, cold, phone and desktop): "
        + ("met" if not missed else "MISSED\n  " + "\n  ".join(missed))
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "meta": meta,
                "pages": [
                    asdict(r) | {"kb": round(r.kb(), 2), "raw_kb": round(r.raw_kb(), 2)}
                    for r in results
                ],
            },
            indent=2,
        )
    )
    print(f"written to {out}")
    if args.keep:
        print(f"kept {workdir}")
    else:
        for child in workdir.iterdir():
            child.unlink()
        workdir.rmdir()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
