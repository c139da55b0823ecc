"""Missing inputs are ERRORs with a hint, never skips or passes, and set-up mistakes are one message.

Through the real `bpconform run` on the real suite: an apps dir without the profile's apps is never
CONFORMS (every check that needs an app is an ERROR naming the app and how to fix it), and an
unknown stack stops the run before any check with a "did you mean".
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from installed import leftovers, user_env

from conformance.paths import REPO_ROOT

pytestmark = pytest.mark.docker


def _bpconform(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    run = f"inp{uuid.uuid4().hex[:8]}"
    env = {**user_env(run, tmp_path / "work"), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--buildpack", "reference", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return proc, run


def test_an_empty_apps_dir_is_never_conforms(tmp_path: Path) -> None:
    """One set-up error naming the missing apps, before any build (under plain pytest, where no such
    check runs first, each check needing a missing app is an ERROR instead: tests/test_plugin.py)."""
    apps = tmp_path / "apps"
    apps.mkdir()
    proc, run = _bpconform(tmp_path, "--apps", str(apps), "--report-dir", str(tmp_path / "reports"))
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-4000:]
    assert f"not found in {apps}" in proc.stderr and "minimal" in proc.stderr, proc.stderr
    assert "point --apps" in proc.stderr, "the hint says what to fix"
    assert "CONFORMS" not in proc.stdout and "PASSED" not in proc.stdout
    assert not (tmp_path / "reports" / "report.json").exists(), "nothing ran, so no report claims a verdict"
    assert leftovers(run, tmp_path / "work") == []


def test_an_unknown_stack_is_one_message_before_any_check(tmp_path: Path) -> None:
    proc, _ = _bpconform(tmp_path, "--stack", "bookwrom", "--report-dir", str(tmp_path / "reports"))
    assert proc.returncode == 2
    assert "unknown stack 'bookwrom' (did you mean 'bookworm'?)" in proc.stderr
    assert "use one of: bookworm, trixie" in proc.stderr
    assert "PASSED" not in proc.stdout and "FAILED" not in proc.stdout and not (tmp_path / "reports").exists()


def test_a_profile_without_snapshots_is_an_error_with_the_way_to_record_them(tmp_path: Path) -> None:
    empty = tmp_path / "no-snapshots"
    empty.mkdir()
    args = ("--snapshot-dir", str(empty), "-k", "image_snapshot", "--report-dir", str(tmp_path / "reports"))
    proc, run = _bpconform(tmp_path, *args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-4000:]
    assert "no snapshots for profile reference on stack bookworm" in proc.stderr, "said before the run"
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    snapshot_checks = [r for r in report["records"] if r["check"] == "image_snapshot"]
    assert snapshot_checks and {r["outcome"] for r in snapshot_checks} == {"error"}, "never a pass, never a FAIL"
    assert all("--snapshot-update" in r["reason"] for r in snapshot_checks)
    assert report["verdict"] == "ERROR" and not list(empty.iterdir()), "nothing is written without --snapshot-update"
    assert leftovers(run, tmp_path / "work") == []
