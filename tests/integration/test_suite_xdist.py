"""The suite under pytest-xdist (`-n 2`): the workers share each app's session build, built once per
run by one of them, and the run leaves nothing labelled behind, even when a worker dies; and each
package manager's chain of rebuilds is built once, by one worker (`conformance.scheduling`; slow).

What is counted comes from outside the harness: the Docker engine's events say how many app images
carrying the run's label were loaded (one per build), and pytest's `-v` lines say which worker ran
which test.
"""

from __future__ import annotations

import collections
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


# The checks that use a manager's chain of rebuilds (suite/lockfile_history.py), and its builds: one
# image load per step (uv: first, unchanged, removed-dependency, python, tool-version, switch).
CHAIN_SLICE = (
    "test_package_managers and (locked_venv_reused_on_unchanged_rebuild or python_change_discards_locked_venv"
    " or tool_version_change_discards_locked_venv or removed_dependency_gone or package_manager_switch)"
)
CHAIN_CHECKS = {"uv": 5, "poetry": 4}  # the switch check is in uv's chain
CHAIN_STEPS = {"uv": 6, "poetry": 5}


class AppImageLoads:
    """Follows the engine's events while the run goes on (the engine keeps only its last 256 events,
    so asking afterwards could miss them): every load of an app image labelled with the run (or with
    one of `sessions`: the workers' own builds carry the worker's session)."""

    def __init__(self, run: str, sessions: tuple[str, ...] = ()) -> None:
        self.seen: list[dict] = []
        self._sessions = {run} if not sessions else set(sessions)
        label = [f"{engine.KIND}=app"] + ([f"{engine.SESSION}={run}"] if not sessions else [])
        self._stream = engine.ensure_engine().events(
            since=int(time.time()) - 1,
            decode=True,
            filters={"type": "image", "event": "load", "label": label},
        )
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when it is closed
            for event in self._stream:
                if event.get("Actor", {}).get("Attributes", {}).get(engine.SESSION) in self._sessions:
                    self.seen.append(event)

    def stop(self) -> list[dict]:
        self._stream.close()
        self._thread.join(30)
        return self.seen


def _run_suite(
    run: str, *extra: str, env: dict[str, str] | None = None, k: str = SLICE, sessions: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess, list]:
    """The suite slice in a fresh process tree, and the engine's load events of the run's app images
    (or of the images labelled with one of `sessions`)."""
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    clean_env.pop("BPCONFORM_KEEP", None)
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-n", "2", "-k", k]
    command += ["--buildpack", str(REPO_ROOT / "buildpack_under_test"), "-p", "no:cacheprovider", "-v", *extra]
    loads = AppImageLoads(run, sessions)
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


@pytest.mark.slow
def test_each_package_managers_chain_is_built_once_by_one_worker() -> None:
    """Every check of a manager's chain runs in one worker, so the chain's steps are built once per run:
    one image load per step, all by that worker (each worker's private builds carry its session).
    Before the chain scheduler, `--dist load` split the chains and both workers built them. About 11
    lock-file builds (Poetry's take 30-40 s each): slow."""
    run = f"xdist{uuid.uuid4().hex[:8]}"
    workers = ("gw0", "gw1")
    proc, loads = _run_suite(run, k=CHAIN_SLICE, sessions=tuple(f"{run}-{worker}" for worker in workers))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    ran: dict[str, set[str]] = {manager: set() for manager in CHAIN_CHECKS}
    checks = dict.fromkeys(CHAIN_CHECKS, 0)
    for worker, nodeid in re.findall(r"\[(gw\d+)\] \[\s*\d+%\] PASSED (\S+)", output):
        switch = nodeid.endswith("::test_package_manager_switch_discards_venv")
        manager = "uv" if switch else nodeid[:-1].rsplit("[", 1)[-1]  # `...[uv]`
        ran[manager].add(worker)
        checks[manager] += 1
    assert checks == CHAIN_CHECKS, f"every chain check must pass: {checks}\n{output[-3000:]}"
    by_worker = collections.Counter(event["Actor"]["Attributes"][engine.SESSION].rsplit("-", 1)[-1] for event in loads)
    assert sum(by_worker.values()) == sum(CHAIN_STEPS.values()), (
        f"{sum(by_worker.values())} lock-file app images were built ({dict(by_worker)} per worker), expected each"
        f" chain's steps once: {CHAIN_STEPS}; the workers that ran each chain's checks: {ran}"
    )
    assert all(len(found) == 1 for found in ran.values()) and ran["uv"] != ran["poetry"], (
        f"each chain's checks must run in one worker, the two chains side by side: {ran}"
    )
    expected = {next(iter(found)): CHAIN_STEPS[manager] for manager, found in ran.items()}
    assert dict(by_worker) == expected, f"app images built per worker {dict(by_worker)}, expected {expected}"
    assert _leftovers(run) == []
