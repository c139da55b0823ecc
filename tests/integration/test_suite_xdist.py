"""The suite under pytest-xdist (`-n 2`): the workers share each app's session build, built once per
run by one of them, and the run leaves nothing labelled behind, even when a worker dies.

What is counted comes from outside the harness: the Docker engine's events say how many app images
carrying the run's label were loaded (one per build), and pytest's `-v` lines say which worker ran
which test.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from installed import leftovers

from conformance import engine
from conformance.paths import REPO_ROOT
from conformance.stacks import get_stack

pytestmark = [pytest.mark.docker, pytest.mark.serial]  # the serial pass (tests/conftest.py)
APPS = ("minimal", "procfile-web")
SLICE = "(minimal or procfile-web) and (layer_types or launch_path_order)"
CRASH_PLUGIN = """
import os
from pathlib import Path

from conformance import engine


def pytest_runtest_teardown(item):
    # gw1 dies after its first test, leaving a container behind, as a worker killed mid-check would.
    marker = Path(os.environ["CRASH_MARKER"])
    if os.environ.get("PYTEST_XDIST_WORKER") == "gw1" and not marker.exists():
        marker.write_text(engine.SESSION_ID)
        engine.create_container(os.environ["CRASH_IMAGE"], ["true"], kind="inspect")
        os._exit(3)
"""


class AppImageLoads:
    """Follows the engine's events while the run goes on (the engine keeps only its last 256 events,
    so asking afterwards could miss them): every load of an app image labelled with the run."""

    def __init__(self, run: str) -> None:
        self.seen: list[dict] = []
        self._stream = engine.ensure_engine().events(
            since=int(time.time()) - 1,
            decode=True,
            filters={"type": "image", "event": "load", "label": [f"{engine.KIND}=app", f"{engine.SESSION}={run}"]},
        )
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when it is closed
            self.seen.extend(self._stream)

    def stop(self) -> list[dict]:
        self._stream.close()
        self._thread.join(30)
        return self.seen


def _run_suite(run: str, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, list]:
    """The suite slice in a fresh process tree, and the engine's load events of the run's app images."""
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    clean_env.pop("BPCONFORM_KEEP", None)
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-n", "2", "-k", SLICE]
    command += ["--buildpack", str(REPO_ROOT / "buildpack_under_test"), "-p", "no:cacheprovider", "-v", *extra]
    loads = AppImageLoads(run)
    proc = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**clean_env, "BPCONFORM_SESSION": run, **(env or {})},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return proc, loads.stop()


def _workers_by_app(output: str) -> dict[str, set[str]]:
    """For each app, the workers on which one of its checks passed (from `[gw0] [ 50%] PASSED ...[minimal]`)."""
    found: dict[str, set[str]] = {app: set() for app in APPS}
    for worker, nodeid in re.findall(r"\[(gw\d+)\] \[\s*\d+%\] PASSED (\S+)", output):
        for app in APPS:
            if re.search(rf"\[{re.escape(app)}\b", nodeid):
                found[app].add(worker)
    return found


def _leftovers(run: str) -> list[str]:
    """Everything in the engine or the cache still carrying the run's or one of its workers' sessions
    (from the engine's plain lists: inspecting each item races with other sessions removing theirs)."""
    return leftovers(run)


def test_workers_share_one_build_per_app_and_leave_nothing() -> None:
    run = f"xdist{uuid.uuid4().hex[:8]}"
    proc, loads = _run_suite(run)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert _workers_by_app(output) == {app: {"gw0", "gw1"} for app in APPS}, (
        f"each app's checks must pass on both workers, or sharing is not exercised\n{output[-3000:]}"
    )
    assert len(loads) == len(APPS), f"{len(loads)} app images of the run were exported, expected one per app"
    assert _leftovers(run) == []


def test_a_dead_workers_leftovers_are_removed_at_the_end_of_the_run(tmp_path: Path) -> None:
    run = f"xdist{uuid.uuid4().hex[:8]}"
    (tmp_path / "xdist_crash.py").write_text(CRASH_PLUGIN)
    marker = tmp_path / "crashed"
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "CRASH_MARKER": str(marker),
        "CRASH_IMAGE": get_stack("bookworm").run_image,
    }
    proc, loads = _run_suite(run, "-p", "xdist_crash", env=env)
    output = proc.stdout + proc.stderr
    assert marker.is_file() and marker.read_text() == f"{run}-gw1", f"gw1 did not crash as planned\n{output[-4000:]}"
    assert "crashed" in output and proc.returncode == 1, output[-4000:]
    assert len(loads) == len(APPS), "a worker dying after a build must not make the others rebuild"
    assert _leftovers(run) == [], "the controller must remove what the dead worker left"
