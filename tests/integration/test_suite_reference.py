"""The conformance suite end to end, through `bpconform run`, on the reference buildpack.

`make conformance` runs every check; here a subset (the default app) keeps `make test` fast while
still proving the two claims that matter most: the reference buildpack conforms, and the suite
catches the lifecycle#1393 regression with the build-time PATH check and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.paths import REPO_ROOT

pytestmark = pytest.mark.docker
SUBSET = "minimal and not caching and not upgrade and not reproducib and not bogus"
# The launch SBOM check reads the venv's SBOM where the platform exports it (/layers/sbom/launch/...).
SBOM_CHECK = "launch_sbom_lists_venv_distributions"


def _bpconform(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800
    )


@dataclass(frozen=True)
class SuiteRun:
    result: subprocess.CompletedProcess[str]
    records: list[dict]
    report_dir: Path


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One suite run of the subset (the launch SBOM check included), on the default app."""
    report_dir = tmp_path_factory.mktemp("reference-run")
    result = _bpconform("run", "--buildpack", "buildpack_under_test", "--report-dir", str(report_dir), "-k", SUBSET)
    report = json.loads((report_dir / "report.json").read_text())
    return SuiteRun(result, report["records"], report_dir)


def test_reference_buildpack_conforms(reference_run: SuiteRun) -> None:
    result, tmp_path = reference_run.result, reference_run.report_dir
    records = reference_run.records
    failed = [r for r in records if r["outcome"] in ("failed", "error")]
    assert result.returncode == 0 and not failed, f"{failed}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    checks = {r["check"] for r in records if r["outcome"] == "passed"}
    assert {"launch_path_order", "build_time_path_order", "pip_absent_at_runtime", "native_libraries_resolve"} <= {
        c.split("[")[0] for c in checks
    }
    assert (tmp_path / "report.md").read_text().count("pass") > 5
    assert (tmp_path / "junit.xml").exists()


def test_reference_launch_sbom_is_exported_and_exact(reference_run: SuiteRun) -> None:
    sbom = [r for r in reference_run.records if r["check"] == SBOM_CHECK]
    assert [r["outcome"] for r in sbom] == ["passed"], sbom


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


# The uv/Poetry checks (conformance/suite/test_package_managers.py): the checks on the shared uv build
# in `make test` (one cold uv build); the whole module, with its rebuild chains, in `make test-all`.
UV_APP_CHECKS = (
    "test_package_managers and uv and (tool_layer or tool_build_env or runtime_python or tool_absent"
    " or ensurepip or dev_dependencies or locked_venv_layer)"
)


def _outcomes(report_dir: Path) -> dict[str, str]:
    records = json.loads((report_dir / "report.json").read_text())["records"]
    return {f"{r['check']}[{r['app']}]": r["outcome"] for r in records}


def test_reference_uv_app_passes_the_package_manager_checks(tmp_path: Path) -> None:
    k = UV_APP_CHECKS
    result = _bpconform("run", "--buildpack", "buildpack_under_test", "--report-dir", str(tmp_path), "-k", k)
    outcomes = _outcomes(tmp_path)
    assert result.returncode == 0 and set(outcomes.values()) == {"passed"}, f"{outcomes}\n{result.stdout[-3000:]}"
    assert {key.split("[")[0] for key in outcomes} == {
        "tool_layer_types",
        "tool_layers_not_in_image",
        "locked_venv_layer_types",
        "tool_build_env_for_later_buildpacks",
        "locked_venv_uses_runtime_python",
        "tool_absent_at_runtime",
        "ensurepip_restores_pip_in_lockfile_app",
        "dev_dependencies_not_installed",
    }
    assert "tool_absent_at_runtime[manager=uv,tool=pip][-]" in outcomes  # pip too, for every manager


@pytest.mark.slow
def test_reference_passes_every_package_manager_check(tmp_path: Path) -> None:
    """Every uv/Poetry check passes (the SBOM ones on the platform's export), nothing skipped."""
    # Not the ldd check: on pinned-311 the 3.11 runtime's nis module needs libnsl2/libtirpc3, which the run
    # image lacks (a real finding for the stack or the runtime build, not about package managers).
    k = "test_package_managers and not native_libraries"
    result = _bpconform("run", "--buildpack", "buildpack_under_test", "--report-dir", str(tmp_path), "-k", k)
    outcomes = _outcomes(tmp_path)
    assert result.returncode == 0 and set(outcomes.values()) == {"passed"}, f"{outcomes}\n{result.stdout[-3000:]}"
    assert len(outcomes) >= 35, outcomes
