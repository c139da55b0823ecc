"""The suite on a buildpack we did not design for it: acme/python (POSIX sh, other layer names, other
log wording), and two broken variants of it made by patching a copy.

- acme/python with its own profile (tests/thirdparty/acme-python.toml) must conform;
- variant `pip-in-runtime` (pip installed into the cpython layer) must be refused by
  `pip_absent_at_runtime` and `runtime_layer_has_no_pip`;
- variant `deps-sort-first` (the venv layer renamed `appdeps`, which sorts before `cpython`, so the
  lifecycle puts the interpreter's bin/ first on PATH) must be refused by `launch_path_order` and
  `build_time_path_order`, and also by `bogus_user_env_does_not_win`, which must pass acme itself.

`make test` runs the fast subsets (the default app, the checks that matter for each claim); the
full-suite runs are marked slow (`make test-all`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.paths import REPO_ROOT

pytestmark = pytest.mark.docker

HERE = Path(__file__).resolve().parent
ACME = HERE / "acme-python"
PROFILE = HERE / "acme-python.toml"
SNAPSHOTS = HERE / "snapshots"

# Each variant is one exact text replacement in a copy of bin/build (and maybe of the profile); a
# replacement whose anchor is gone fails the test, so a change to acme cannot silently disarm it.
PIP_IN_RUNTIME = (
    '    rm -rf "$cpython"/lib/python3.*/site-packages/pip "$cpython"/lib/python3.*/site-packages/pip-*.dist-info\n'
    '    rm -f "$cpython"/bin/pip "$cpython"/bin/pip3 "$cpython"/bin/pip3.*\n',
    '    "$cpython/bin/python3" -I -B -m ensurepip --default-pip >/dev/null\n',
)
DEPS_SORT_FIRST = ("pkgs=$LAYERS/pkgs\n", "pkgs=$LAYERS/appdeps\n")
DEPS_SORT_FIRST_PROFILE = ('[layers.app-deps]\nname = "pkgs"\n', '[layers.app-deps]\nname = "appdeps"\n')
# Nothing can start in the image: the launcher runs exec.d programs before any command, and this one fails.
EXECD_FAILS = (
    'write_env "$pkgs/env" PYTHONUNBUFFERED.default 1\n',
    'write_env "$pkgs/env" PYTHONUNBUFFERED.default 1\n'
    'mkdir -p "$pkgs/exec.d" && printf \'#!/bin/sh\\nexit 1\\n\' >"$pkgs/exec.d/fail"\n'
    'chmod 755 "$pkgs/exec.d/fail"\n',
)


@dataclass(frozen=True)
class Run:
    exit_code: int
    outcomes: dict[str, str]  # "check[app]" -> passed | failed | error | skipped
    reasons: dict[str, str]
    text: str

    def with_outcome(self, outcome: str) -> list[str]:
        return sorted(key for key, value in self.outcomes.items() if value == outcome)

    def base_checks(self, outcome: str) -> set[str]:
        return {key.split("[", 1)[0] for key in self.with_outcome(outcome)}


def _patched(source: Path, dest: Path, old: str, new: str) -> None:
    text = source.read_text()
    assert text.count(old) == 1, f"{source}: the variant's anchor {old!r} is not there exactly once"
    dest.write_text(text.replace(old, new))


@pytest.fixture
def variant(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """A broken copy of acme/python and the profile that goes with it."""

    def make(name: str) -> tuple[Path, Path]:
        buildpack = tmp_path / name
        shutil.copytree(ACME, buildpack, symlinks=True)
        profile = tmp_path / f"{name}.toml"
        shutil.copy(PROFILE, profile)
        if name == "pip-in-runtime":
            _patched(ACME / "bin" / "build", buildpack / "bin" / "build", *PIP_IN_RUNTIME)
        elif name == "execd-fails":
            _patched(ACME / "bin" / "build", buildpack / "bin" / "build", *EXECD_FAILS)
        elif name == "deps-sort-first":
            _patched(ACME / "bin" / "build", buildpack / "bin" / "build", *DEPS_SORT_FIRST)
            _patched(PROFILE, profile, *DEPS_SORT_FIRST_PROFILE)
        else:
            raise AssertionError(f"unknown variant {name}")
        return buildpack, profile

    return make


def run_suite(buildpack: Path, profile: Path, report_dir: Path, *, k: str | None = None) -> Run:
    """`bpconform run` as a user would run it, from the repository, with acme's own snapshots."""
    command = [sys.executable, "-m", "conformance.cli", "run", "--buildpack", str(buildpack), "--profile", str(profile)]
    command += ["--report-dir", str(report_dir)]
    if k:
        command += ["-k", k]
    command += ["--", "--snapshot-dir", str(SNAPSHOTS)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600)
    report_file = report_dir / "report.json"
    assert report_file.is_file(), f"bpconform run wrote no report:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    records = json.loads(report_file.read_text())["records"]
    keys = [f"{r['check']}[{r['app']}]" for r in records]
    return Run(
        exit_code=result.returncode,
        outcomes={key: r["outcome"] for key, r in zip(keys, records, strict=True)},
        reasons={key: r.get("reason") or "" for key, r in zip(keys, records, strict=True)},
        text=result.stdout[-6000:] + result.stderr[-3000:],
    )


# ------------------------------------------------------------------------------------------------
# Fast: the default app, the checks each claim rests on (make test)
# ------------------------------------------------------------------------------------------------

SMOKE = (
    "minimal and (launch_path_order or build_time or pip_absent_at_runtime or runtime_layer_has_no_pip"
    " or ensurepip or test_layer_types or layer_in_image or native_libraries)"
)


def test_acme_passes_the_key_checks_and_the_bogus_env_check(tmp_path: Path) -> None:
    run = run_suite(ACME, PROFILE, tmp_path, k=f"({SMOKE}) or bogus_user_env_does_not_win")
    ran = run.with_outcome("passed")
    assert run.exit_code == 0 and ran and not run.with_outcome("failed") and not run.with_outcome("error"), run.text
    expected = {
        "launch_path_order",
        "build_time_path_order",
        "build_time_pip",
        "pip_absent_at_runtime",
        "runtime_layer_has_no_pip",
        "ensurepip_recovers_pip_offline",
        "layer_types",
        "layer_in_image",
        "native_libraries_resolve",
        "bogus_user_env_does_not_win",
    }
    assert run.base_checks("passed") == expected, f"passed: {ran}\nskipped: {run.with_outcome('skipped')}"
    assert not run.with_outcome("skipped"), f"nothing may be skipped for acme: {run.with_outcome('skipped')}"


# Why each uv/Poetry/SBOM check may skip for acme: its profile has no such key (and acme has no such support).
PROFILE_GAP = re.compile(
    r"^profile acme-python has no (package-managers\.(uv|poetry)\b|sbom\.launch\b"
    r"|(two-package-managers|requires-python-mismatch|refused-variables) message)"
)


def test_acme_gets_skips_with_reasons_for_the_package_manager_checks(tmp_path: Path) -> None:
    """acme/python has no Poetry/uv support and no SBOMs: every such check is a skip naming the profile
    key it lacks, never a pass and never a failure (and no build is needed to tell)."""
    run = run_suite(ACME, PROFILE, tmp_path, k="test_package_managers and not native_libraries")
    assert run.exit_code == 0, run.text
    assert not run.with_outcome("passed") and not run.with_outcome("failed") and not run.with_outcome("error"), (
        run.outcomes
    )
    skipped = run.with_outcome("skipped")
    assert len(skipped) >= 20, skipped
    unexplained = {key: run.reasons[key] for key in skipped if not PROFILE_GAP.search(run.reasons[key])}
    assert not unexplained, f"skips without a profile-key reason: {unexplained}"
    for manager in ("uv", "poetry"):
        assert any(f"package-managers.{manager}" in run.reasons[key] for key in skipped), manager


@pytest.mark.slow
def test_pip_in_runtime_variant_is_refused_by_the_pip_checks(tmp_path: Path, variant) -> None:
    buildpack, profile = variant("pip-in-runtime")
    run = run_suite(buildpack, profile, tmp_path / "report", k="minimal and (pip_absent_at_runtime or runtime_layer)")
    assert run.exit_code == 1, run.text
    failed = run.with_outcome("failed")
    assert "runtime_layer_has_no_pip[minimal]" in failed, run.text
    assert "pip_absent_at_runtime[command=pip --version][minimal]" in failed, run.text
    assert "imports pip from /layers/acme_python/cpython" in run.reasons["runtime_layer_has_no_pip[minimal]"]
    assert not run.with_outcome("error"), run.text


@pytest.mark.slow
def test_deps_layer_sorting_first_is_refused_by_the_path_checks_and_the_bogus_env_check(
    tmp_path: Path, variant
) -> None:
    buildpack, profile = variant("deps-sort-first")
    k = "(minimal and (launch_path_order or build_time_path_order)) or bogus_user_env_does_not_win"
    run = run_suite(buildpack, profile, tmp_path / "report", k=k)
    assert run.exit_code == 1, run.text
    failed = run.with_outcome("failed")
    for check in ("launch_path_order[minimal]", "build_time_path_order[minimal]", "bogus_user_env_does_not_win[-]"):
        assert check in failed, f"{check} must fail for a venv layer that sorts before the runtime; {run.text}"
        assert "acme_python/appdeps/bin must come before" in run.reasons[check], run.reasons[check]
    assert not run.with_outcome("error"), run.text


@pytest.mark.slow
def test_an_image_where_nothing_starts_does_not_pass_as_pip_absent(tmp_path: Path, variant) -> None:
    """`pip --version` fails in such an image too, but for the wrong reason: the checks must see that."""
    buildpack, profile = variant("execd-fails")
    run = run_suite(buildpack, profile, tmp_path / "report", k="minimal and pip_absent_at_runtime")
    assert run.exit_code == 1 and not run.with_outcome("passed"), run.text
    assert len(run.with_outcome("failed")) == 3, run.outcomes
    for key in run.with_outcome("failed"):
        assert "proves nothing" in run.reasons[key], run.reasons[key]


# ------------------------------------------------------------------------------------------------
# Slow: the whole suite on each (make test-all)
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_acme_conforms_to_the_whole_suite(tmp_path: Path) -> None:
    run = run_suite(ACME, PROFILE, tmp_path)
    assert run.exit_code == 0, run.text
    assert not run.with_outcome("failed") and not run.with_outcome("error"), run.text
    assert "CONFORMS" in run.text and "DOES NOT CONFORM" not in run.text, run.text
    # Skips only where the app itself says pip stays (pip-in-requirements), or for the uv/Poetry/SBOM
    # promises acme does not make (its profile has no such key).
    unexpected = [
        key
        for key in run.with_outcome("skipped")
        if not key.endswith("[pip-in-requirements]") and not PROFILE_GAP.search(run.reasons[key])
    ]
    assert not unexpected, {key: run.reasons[key] for key in unexpected}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "intended"),
    [
        ("pip-in-runtime", {"pip_absent_at_runtime", "runtime_layer_has_no_pip"}),
        ("deps-sort-first", {"launch_path_order", "build_time_path_order", "bogus_user_env_does_not_win"}),
    ],
)
def test_broken_variant_does_not_conform_to_the_whole_suite(tmp_path: Path, variant, name, intended) -> None:
    buildpack, profile = variant(name)
    run = run_suite(buildpack, profile, tmp_path / "report")
    assert run.exit_code == 1 and "DOES NOT CONFORM" in run.text, run.text
    assert intended <= run.base_checks("failed"), f"failed: {run.with_outcome('failed')}"
    assert not run.with_outcome("error"), run.with_outcome("error")
