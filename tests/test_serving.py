"""How ``jobchat serve`` sets up the process it serves from."""

from __future__ import annotations

import json
import subprocess
import sys

from jobchat.serving import GC_THRESHOLDS


def test_settle_collector_freezes_startup_and_slows_the_older_generations() -> None:
    # In a process of its own: freezing would otherwise hide this test run's objects from the
    # collector for the rest of the suite.
    script = (
        "import gc, json\n"
        "from jobchat.serving import settle_collector\n"
        "before = gc.get_threshold()\n"
        "settle_collector()\n"
        "print(json.dumps({'before': before, 'after': gc.get_threshold(),"
        " 'frozen': gc.get_freeze_count()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    assert seen["before"] == [700, 10, 10]  # CPython's defaults: the setting is ours
    assert seen["after"] == list(GC_THRESHOLDS)
    assert GC_THRESHOLDS[1] > seen["before"][1]
    assert GC_THRESHOLDS[2] > seen["before"][2]
    # Everything jobchat.serving imported (the app's modules, SQLAlchemy, FastAPI) is frozen.
    assert seen["frozen"] > 10_000


def test_serve_raises_its_open_file_limit_to_the_hard_limit() -> None:
    # In a process of its own, started with a low soft limit, as a default shell would give.
    script = (
        "import json, resource\n"
        "from jobchat.serving import raise_open_files\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "print(json.dumps({'hard': hard, 'after': list(raise_open_files()),"
        " 'now': list(resource.getrlimit(resource.RLIMIT_NOFILE))}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    assert seen["after"] == seen["now"]
    soft, hard = seen["now"]
    assert hard == seen["hard"]  # the administrator's limit is left alone
    assert soft == hard or (hard == -1 and soft >= 65_536)
