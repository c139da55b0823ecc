"""The conformance suite end to end, through `bpconform run`, on the reference buildpack.

`make conformance` runs every check; here a subset (the default app) keeps `make test` fast while
still proving the two claims that matter most: the reference buildpack conforms, and the suite
catches the lifecycle#1393 regression with the build-time PATH check and nothing else.

Both claims come from one `bpconform run --compare lifecycle-1393`: its baseline side is a plain run
of the same subset (same settings, reports of its own in `<report-dir>/baseline/`), so a separate
plain run would only build and check the same app a third time. That a plain `bpconform run` of a
passing subset exits 0 is asserted by tests/integration/test_installed_wheel.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
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


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One comparison run of the subset: the plain baseline, then the lifecycle#1393 emulation."""
    report_dir = tmp_path_factory.mktemp("compare")
    result = _bpconform(
        "run", "--buildpack", "buildpack_under_test", "--report-dir", str(report_dir), "--compare", "lifecycle-1393",
        "-k", SUBSET,
    )  # fmt: skip
    return result, report_dir


def test_reference_buildpack_conforms(compared: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, report_dir = compared
    baseline = report_dir / "baseline"
    assert (baseline / "report.json").is_file(), f"no baseline report\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    report = json.loads((baseline / "report.json").read_text())
    failed = [r for r in report["records"] if r["outcome"] in ("failed", "error")]
    assert not failed, f"{failed}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    checks = {r["check"] for r in report["records"] if r["outcome"] == "passed"}
    assert {"launch_path_order", "build_time_path_order", "pip_absent_at_runtime", "native_libraries_resolve"} <= {
        c.split("[")[0] for c in checks
    }
    assert (baseline / "report.md").read_text().count("pass") > 5
    assert (baseline / "junit.xml").exists()


def test_reference_launch_sbom_is_exported_and_exact(compared: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    report = json.loads((compared[1] / "baseline" / "report.json").read_text())
    sbom = [r for r in report["records"] if r["check"] == SBOM_CHECK]
    assert [r["outcome"] for r in sbom] == ["passed"], sbom


def test_lifecycle_1393_emulation_fails_only_build_time_path(
    compared: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, report_dir = compared
    compare = json.loads((report_dir / "compare.json").read_text())
    changed = sorted(f"{c['check']}[{c['app']}]:{c['before']}->{c['after']}" for c in compare["changes"])
    assert changed == ["build_time_path_order[minimal]:passed->failed"], (
        f"the #1393 emulation must fail exactly the build-time PATH check; changes: {changed}\n{result.stdout[-3000:]}"
    )
    assert result.returncode == 1, f"a comparison with a newly failing check exits 1, got {result.returncode}"


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
