"""One end-to-end smoke of the reference buildpack on the trixie stack, through `bpconform run`.

Marked slow (it runs in `make test-all`, which sets up trixie first): on a machine that has not made
them yet, the trixie stack and its CPython cost several minutes more than `make test`'s budget
allows (the figures are in the integrator's notes of the stacks branch). It proves that the suite's
promises hold on Debian 13 too, with the trixie snapshots (`snapshots/reference/trixie/`), the
trixie runtime (linked against the t64 libraries) and the stacks' non-root users.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.paths import REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SUBSET = "minimal and not caching and not upgrade and not reproducib and not bogus"


def test_reference_buildpack_conforms_on_trixie(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "run",
            "--buildpack",
            "buildpack_under_test",
            "--stack",
            "trixie",
            "--report-dir",
            str(tmp_path),
            "-k",
            SUBSET,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    report_file = tmp_path / "report.json"
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert report_file.is_file(), f"no report (exit {result.returncode}):\n{output}"
    report = json.loads(report_file.read_text())
    failed = [r for r in report["records"] if r["outcome"] in ("failed", "error")]
    assert result.returncode == 0 and not failed, f"{failed}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    assert report["settings"]["stack"] == "trixie"
    passed = {r["check"].split("[")[0] for r in report["records"] if r["outcome"] == "passed"}
    # the snapshot check compared against the trixie snapshots (distro-version 13), it did not record them
    assert {"image_snapshot", "launch_path_order", "build_time_path_order", "pip_absent_at_runtime"} <= passed, passed
