"""The conformance suite end to end, through `bpconform run`, on the reference buildpack.

`make conformance` runs every check; here a subset (the default app) keeps `make test` fast while
still proving the two claims that matter most: the reference buildpack conforms, and the suite
catches the lifecycle#1393 regression with the build-time PATH check and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.paths import REPO_ROOT

pytestmark = pytest.mark.docker
SUBSET = "minimal and not caching and not upgrade and not reproducib and not bogus and not launch_sbom"
# The launch SBOM check reads /layers/sbom/launch/... in the image, which the embedded platform does
# not export yet (the platform's SBOM export is being built on another branch). Its run is kept here,
# expected to fail, and strict: once the export is merged it passes, this test then fails, and the
# xfail mark (and the `not launch_sbom` above) must go.
SBOM_PENDING = "the embedded platform does not export launch SBOMs to /layers/sbom/launch yet"


def _bpconform(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800
    )


def test_reference_buildpack_conforms(tmp_path: Path) -> None:
    result = _bpconform("run", "--buildpack", "buildpack_under_test", "--report-dir", str(tmp_path), "-k", SUBSET)
    report = json.loads((tmp_path / "report.json").read_text())
    failed = [r for r in report["records"] if r["outcome"] in ("failed", "error")]
    assert result.returncode == 0 and not failed, f"{failed}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    checks = {r["check"] for r in report["records"] if r["outcome"] == "passed"}
    assert {"launch_path_order", "build_time_path_order", "pip_absent_at_runtime"} <= {c.split("[")[0] for c in checks}
    assert (tmp_path / "report.md").read_text().count("pass") > 5
    assert (tmp_path / "junit.xml").exists()


@pytest.mark.xfail(reason=SBOM_PENDING, strict=True)
def test_reference_launch_sbom_is_exported_and_exact(tmp_path: Path) -> None:
    result = _bpconform(
        "run", "--buildpack", "buildpack_under_test", "--report-dir", str(tmp_path), "-k", "minimal and launch_sbom"
    )
    report = json.loads((tmp_path / "report.json").read_text())
    outcomes = {r["check"]: r["outcome"] for r in report["records"]}
    expected = {"launch_sbom_lists_venv_distributions": "passed"}
    assert outcomes == expected, f"{report['records']}\n{result.stdout[-2000:]}"


def test_lifecycle_1393_emulation_fails_only_build_time_path(tmp_path: Path) -> None:
    result = _bpconform(
        "run",
        "--buildpack",
        "buildpack_under_test",
        "--report-dir",
        str(tmp_path),
        "--compare",
        "lifecycle-1393",
        "-k",
        SUBSET,
    )
    compare = json.loads((tmp_path / "compare.json").read_text())
    changed = sorted(f"{c['check']}[{c['app']}]:{c['before']}->{c['after']}" for c in compare["changes"])
    assert changed == ["build_time_path_order[minimal]:passed->failed"], (
        f"the #1393 emulation must fail exactly the build-time PATH check; changes: {changed}\n{result.stdout[-3000:]}"
    )
