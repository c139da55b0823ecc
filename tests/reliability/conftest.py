"""Fixtures for the reliability corpus: bad inputs and faults must end in clear errors and leak nothing.

Every scenario runs inside a `LeakGuard` (tests/leaks.py, shared with tests/security): an inventory of
what this test session owns in the Docker engine (containers, volumes, images carrying our session
label), of the platform's work dirs and of the harness's scratch dirs in the temp dir, taken before
and after. Builds use a *private* work root (the work dirs' `work_root()` is
redirected to the test's tmp dir), so a leftover work dir is attributable to the scenario even
while other sessions build in the same cache. `engine.count_managed()` is global (other sessions
share the engine), so its delta is recorded and summed into the terminal summary, not asserted.

The fixture buildpacks and the `Builder` are the platform self-tests' (tests/platform_integration):
`fixture/layers` sources `layers.build.sh` from the app, so each test shows what its buildpack does.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from leaks import Inventory, LeakGuard, Leaks, bpconform_subprocess, take_inventory  # noqa: F401 (re-exported: tests import them here)
from platform_integration.conftest import Builder, app, builder, stack, write_app  # noqa: F401 (fixtures)

from conformance.errors import ConformanceError
from conformance.paths import cache_root
from conformance.platform import workdir

SUMMARY: list[tuple[str, Leaks]] = []
NOTES: list[str] = []  # figures a scenario wants in the terminal summary (e.g. wall times)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long reliability scenario, run by `make soak` (always also `slow`)")


# ------------------------------------------------------------------------------------------------
# Leak accounting
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def work_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private root for the creator's per-build work dirs (everything else stays in the shared cache)."""
    root = tmp_path / "work-root"
    root.mkdir()
    monkeypatch.setattr(workdir, "work_root", lambda: root)
    return root


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temp dir for the harness's scratch (`tempfile`, and TMPDIR for CLI subprocesses), so a
    scratch dir left behind is attributable to the scenario while other sessions use /tmp."""
    root = tmp_path / "scratch"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setenv("TMPDIR", str(root))
    return root


@pytest.fixture
def leak_guard(
    work_root: Path, scratch_root: Path, request: pytest.FixtureRequest, record_property
) -> Iterator[LeakGuard]:
    guard = LeakGuard(work_root, scratch_root=scratch_root)
    yield guard
    if guard.checked is not None:
        record_property("leaks", guard.checked.total)
        record_property("managed_delta", guard.checked.managed_delta)
        SUMMARY.append((request.node.name, guard.checked))


def pytest_terminal_summary(terminalreporter) -> None:
    for note in NOTES:
        terminalreporter.write_line(f"reliability: {note}")
    if not SUMMARY:
        return
    leaked = sum(leaks.total for _name, leaks in SUMMARY)
    terminalreporter.write_line(
        f"reliability: {len(SUMMARY)} scenarios leak-checked, leaked resources of this session: {leaked}"
    )
    for name, leaks in SUMMARY:
        if leaks.total:
            terminalreporter.write_line(f"  {name}: {leaks}")


# ------------------------------------------------------------------------------------------------
# Errors people read
# ------------------------------------------------------------------------------------------------


def assert_clear_error(error: BaseException, *needles: str) -> ConformanceError:
    """A user-facing error: our type, a message naming the problem, a hint saying what to do."""
    assert isinstance(error, ConformanceError), f"not a ConformanceError: {type(error).__name__}: {error}"
    for needle in needles:
        assert needle in error.message, f"{needle!r} not in the message: {error.message}"
    assert error.hint.strip(), f"no hint with: {error.message}"
    assert "Traceback" not in str(error)
    return error


# ------------------------------------------------------------------------------------------------
# Builders, apps and the CLI
# ------------------------------------------------------------------------------------------------


# `stack`, `builder` and `app` are the platform self-tests' fixtures, imported above.


@dataclass
class CliRun:
    exit_code: int
    stdout: str
    stderr: str
    session: str
    work_root: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


PRIVATE_CACHE_ENTRIES = ("work", "build-caches")


def private_cache_root(tmp_path: Path) -> Path:
    """A cache root that shares the real one's contents (symlinks) but has its own `work/` and
    `build-caches/` (a CLI build's cache is then the scenario's, and counted as its leak)."""
    root = tmp_path / "cache-root"
    root.mkdir(exist_ok=True)
    real = cache_root()
    for entry in real.iterdir():
        if entry.name not in PRIVATE_CACHE_ENTRIES and not (root / entry.name).exists():
            (root / entry.name).symlink_to(entry)
    for name in PRIVATE_CACHE_ENTRIES:
        (root / name).mkdir(exist_ok=True)
    return root


def run_cli(args: list[str], tmp_path: Path, *, timeout: float = 300) -> CliRun:
    """`bpconform ARGS` in a subprocess with its own session label and private work root."""
    session = f"rel{uuid.uuid4().hex[:9]}"
    root = private_cache_root(tmp_path)
    proc = bpconform_subprocess(args, session, root, timeout=timeout)
    return CliRun(proc.returncode, proc.stdout, proc.stderr, session, root / "work")
