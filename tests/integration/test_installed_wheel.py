"""Installed = working: the wheel, in a fresh venv outside any checkout, validates a buildpack.

A user builds or downloads the wheel, installs it, and runs `bpconform run` from their own project
dir against a buildpack dir. Everything the suite needs must come from the wheel (sample apps, the
probe, the reference profile's snapshots, the reference buildpack); nothing may be written into
site-packages or the project except the reports; and `pytest --pyargs conformance.suite` must give
the same outcomes as `bpconform run`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from installed import Installed, build_wheel, install_wheel, leftovers, tree_state, user_env

pytestmark = pytest.mark.docker
# The default app through every kind of check (layers, PATH, pip, runtime, the packaged snapshots): the
# whole suite takes as long again, and `make conformance` runs it.
SLICE = "minimal and not caching and not upgrade and not reproducib and not bogus"
CHAIN_SUITE = Path(__file__).parent / "fixtures" / "chain_suite.py"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root)
    return install_wheel(wheel, root / "venv")


def test_the_wheel_carries_what_the_suite_needs(installed: Installed) -> None:
    data = installed.package / "_data"
    assert (data / "testapps" / "minimal" / "requirements.txt").is_file()
    assert (data / "testapps" / "pinned-311" / ".python-version").is_file(), "dotfiles are packaged too"
    assert (data / "snapshots" / "reference" / "bookworm" / "test_snapshots.ambr").is_file()
    assert (data / "buildpack_under_test" / "bin" / "build").stat().st_mode & 0o111, "bin/build stays executable"
    assert (installed.package / "suite" / "probe" / "bin" / "build").stat().st_mode & 0o111


def test_the_installed_plugin_keeps_each_chain_of_builds_in_one_worker(installed: Installed, tmp_path: Path) -> None:
    """The wheel's plugin (loaded by its entry point, no `-p`) brings the chain scheduler: the fixture
    chain suite under `pytest -n 2` builds each chain once (`conformance.scheduling`)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(CHAIN_SUITE, project / "test_chains.py")
    builds = tmp_path / "builds.txt"
    run = f"wheel{uuid.uuid4().hex[:8]}"
    env = {**user_env(run, tmp_path / "work"), "CHAIN_BUILDS": str(builds)}
    buildpack = installed.package / "_data" / "buildpack_under_test"
    command = [str(installed.bin / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "test_chains.py"]
    proc = subprocess.run(
        [*command, "--buildpack", str(buildpack)], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    built = sorted(line.split()[0] for line in builds.read_text().splitlines())
    assert built == ["a", "b"], f"each chain must be built once, by one worker: {builds.read_text()}"
    assert leftovers(run, tmp_path / "work") == []


def test_the_installed_cli_has_its_version_and_the_guides_its_messages_name(
    installed: Installed, tmp_path: Path
) -> None:
    """A message from the wheel points at `bpconform docs TOPIC`, never a docs/ path only a checkout has; the
    guide it names is in site-packages. `--version` names the installed version and the CNB APIs."""
    bpconform = str(installed.bin / "bpconform")

    def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
        env = user_env(f"wheelcli{uuid.uuid4().hex[:6]}", tmp_path / "work")
        return subprocess.run([bpconform, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    shown = run_cli("--version")
    assert shown.returncode == 0, shown.stderr
    assert re.fullmatch(
        r"bpconform 0\.1\.0 \(buildpack-conformance\)\nPlatform API 0\.\d+ .*\nBuildpack APIs 0\.7, .*",
        shown.stdout.strip(),
    )

    refused = run_cli("run", "--buildpack", "reference", "--profile", "nope")
    assert refused.returncode == 2, refused.stderr
    assert "docs/" not in refused.stderr
    [topic] = re.findall(r"`bpconform docs ([\w-]+)`", refused.stderr)
    guide = run_cli("docs", topic, "--path")
    assert guide.returncode == 0, guide.stderr
    path = Path(guide.stdout.strip())
    assert path.is_file() and path.is_relative_to(installed.site_packages), path
    assert run_cli("docs", topic).stdout == path.read_text()
    listed = run_cli("docs").stdout.split()
    assert all(Path(item).is_file() for item in listed[1::2]) and len(listed) >= 10, listed


def test_installed_suite_conforms_from_outside_any_checkout(installed: Installed, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    buildpack = shutil.copytree(installed.package / "_data" / "buildpack_under_test", project / "my-buildpack")
    run = f"wheel{uuid.uuid4().hex[:8]}"
    work = tmp_path / "work"
    env = user_env(run, work)
    before_venv, before_project = tree_state(installed.venv), tree_state(project)

    proc = subprocess.run(
        [str(installed.bin / "bpconform"), "run", "--buildpack", str(buildpack), "--workers", "2", "-k", SLICE],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    verdict = re.search(
        r"^PARTIAL: (\d+) of (\d+) checks ran \(-k .*\): (\d+) passed, 0 failed, 0 error", proc.stdout, re.M
    )
    assert verdict, f"a -k subset that passed is PARTIAL, never CONFORMS\n{output[-3000:]}"
    assert 10 < int(verdict.group(1)) < int(verdict.group(2)), verdict.group(0)
    assert "site-packages" not in "\n".join(line for line in output.splitlines() if "->" in line), "no hint there"

    report = json.loads((project / "reports" / "report.json").read_text())
    assert report["verdict"] == "PARTIAL" and report["settings"]["buildpack_ids"] == ["bpconform/python 0.1.0"]
    nodeids = [r["nodeid"] for r in report["records"] if r["nodeid"]]
    assert nodeids and all(n.startswith("conformance/suite/test_") for n in nodeids), nodeids[:3]
    log = (project / "reports" / "pytest.log").read_text()
    assert "PytestAssertRewriteWarning" not in log, log[-2000:]
    snapshots = [r for r in report["records"] if r["check"] == "image_snapshot"]
    assert snapshots and {r["outcome"] for r in snapshots} == {"passed"}, "the packaged snapshots were compared"
    junit = ET.parse(project / "reports" / "junit.xml").getroot()
    classnames = {case.get("classname") for case in junit.iter("testcase")}
    assert classnames and all(name.startswith("conformance.suite.test_") for name in classnames), classnames
    properties = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert properties["buildpack"] == "bpconform/python" and properties["profile"] == "reference"

    assert tree_state(installed.venv) == before_venv, "the run wrote into the venv (site-packages)"
    after_project = tree_state(project)
    written = {
        path for path in after_project if path not in before_project or after_project[path] != before_project.get(path)
    }
    assert written and all(path == "reports" or path.startswith("reports/") for path in written), sorted(written)
    assert leftovers(run, work) == []

    # The same suite under plain pytest gives the same outcomes for the same checks.
    pytest_run = f"{run}p"
    plain_pytest = [str(installed.bin / "python"), "-m", "pytest", "--pyargs", "conformance.suite"]
    options = ["--buildpack", str(buildpack), "-k", SLICE, "-n", "2", "--junitxml", str(tmp_path / "plain.xml")]
    proc = subprocess.run(
        [*plain_pytest, "-p", "no:cacheprovider", *options],
        cwd=project,
        env=user_env(pytest_run, work),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    plain = {
        case.get("name"): "failed"
        if case.find("failure") is not None or case.find("error") is not None
        else ("skipped" if case.find("skipped") is not None else "passed")
        for case in ET.parse(tmp_path / "plain.xml").getroot().iter("testcase")
    }
    from_run = {r["nodeid"].rsplit("::", 1)[-1]: r["outcome"] for r in report["records"]}
    assert plain and {name: from_run.get(name) for name in plain} == plain
    assert leftovers(pytest_run, work) == []
