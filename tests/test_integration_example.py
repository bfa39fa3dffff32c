"""docs/examples/ats_sync.py, the integration guide's example, run as a reader would: against a
real ``jobchat demo`` process (with the integration key the demo prints), receiving real
webhooks on its own loopback receiver and verifying them with ``standardwebhooks``.

The demo runs on SQLite whatever the test database is (as ``jobchat demo`` always does here),
so the test runs in the SQLite pass only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, stop, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "examples" / "ats_sync.py"
ATS_ORIGIN = "https://ats.example.com"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("JOBCHAT_TEST_DATABASE_URL")),
        reason="the demo serves its own SQLite file; this runs in the SQLite pass",
    ),
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCHAT_", "TWILIO_"))}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


def test_the_example_script_runs_against_jobchat_demo(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "jobchat", "demo", "--port", str(port), "--database", database],
        cwd=tmp_path,
        # As the guide says to start it: webhooks may point at loopback, the ATS may frame it.
        env=_env(JOBCHAT_WEBHOOKS_ALLOW_INSECURE="true", JOBCHAT_EMBED_ORIGINS=ATS_ORIGIN),
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def output() -> str:
        return (tmp_path / "demo.log").read_text()

    try:
        assert wait_until_serving(demo, base, output).status_code == 200
        key = re.search(r"integration key: (jck_\S+)", output())
        assert key, output()
        paths = httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]

        run = subprocess.run(
            [sys.executable, str(SCRIPT)],
            env=_env(JOBCHAT_URL=base, JOBCHAT_API_KEY=key.group(1), ATS_SYNC_WAIT_SECONDS="30"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        said = run.stdout
        assert run.returncode == 0, f"{said}\n{run.stderr}\n--- demo log ---\n{output()[-4000:]}"

        # The webhooks arrived, verified by the library and by plain hmac, each once.
        assert said.count(" conversation.created ") == 1, said
        assert said.count(" message.created ") == 2, said
        assert "candidate ats-candidate-" in said and "'Thursday at 10 works for me" in said
        # The embed link is made (the demo has an origin to frame it).
        assert re.search(rf'<iframe src="{re.escape(base)}/login/jcle_\S+next=', said), said
        # This jobchat has export, erasure and the audit log: the script must have used them
        # all, not skipped any (it skips only against a jobchat that lacks them).
        for path in (
            "/api/v1/candidates/{ext_id}/export",
            "/api/v1/candidates/{ext_id}/erase",
            "/api/v1/audit",
        ):
            assert path in paths, path
        assert "  skipped" not in said, said
        assert re.search(r"export: \d+ bytes, 2 messages", said), said
        assert re.search(r"erased ats-candidate-\w+: \{", said), said
        assert "already_erased" in said
        assert "audit: candidate.erased at " in said, said
        assert said.rstrip().endswith("Done."), said
    finally:
        stop(demo)
        log.close()
