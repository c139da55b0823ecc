"""SIGTERM to `bpconform run` while a build is under way: the run stops at once, serial or with
workers, says ABORTED (never a FAIL of the buildpack, never a pass) and leaves nothing behind:
no containers, images or volumes of the run or its workers, no work dirs, no worker processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from installed import alive, leftovers, running_builds, stopped_on_exit, user_env

from conformance.paths import REPO_ROOT
from conformance.signals import child_pids

pytestmark = [pytest.mark.docker, pytest.mark.serial]  # the serial pass (tests/conftest.py)


def _wait_for_a_build(process: subprocess.Popen, run: str, limit: float = 600) -> None:
    """Until a build container of the run exists (polling the engine; `limit` is only a hang guard)."""
    deadline = time.monotonic() + limit
    while not running_builds(run):
        assert process.poll() is None, "the run ended before any build started"
        assert time.monotonic() < deadline, "no build started"
        time.sleep(0.2)


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "workers"])
def test_sigterm_stops_the_run_and_leaves_nothing(workers: int, tmp_path: Path) -> None:
    run = f"sig{uuid.uuid4().hex[:8]}"
    work = tmp_path / "work"
    command = [sys.executable, "-m", "conformance.cli", "run", "--buildpack", "reference"]
    command += ["--report-dir", str(tmp_path / "reports"), "--workers", str(workers)]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**user_env(run, work), "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with stopped_on_exit(process):
        _wait_for_a_build(process, run)
        workers_seen = child_pids(process.pid)
        assert len(workers_seen) >= workers, f"expected {workers} workers, saw {workers_seen}"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=300)
    assert process.returncode == 143, output[-4000:]
    verdicts = [line for line in output.splitlines() if line.startswith(("ABORTED", "CONFORMS", "DOES NOT", "ERROR:"))]
    assert verdicts and verdicts[-1].startswith("ABORTED:") and "stopped by SIGTERM" in verdicts[-1], output[-3000:]
    assert not [line for line in output.splitlines() if line.lstrip().startswith("FAIL ")], (
        f"an interrupted run blamed the buildpack:\n{output[-3000:]}"
    )
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["verdict"] == "ABORTED"
    assert not [r for r in report["records"] if r["outcome"] == "failed"], "no check is the buildpack's FAIL"
    assert [pid for pid in workers_seen if alive(pid)] == [], "worker processes were left running"
    assert leftovers(run, work) == []
