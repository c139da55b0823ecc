"""Fixtures for the reliability corpus: bad inputs and faults must end in clear errors and leak nothing.

Every scenario runs inside a `LeakGuard`: an inventory of what this test session owns in the Docker
engine (containers, volumes, images carrying our session label) and of the platform's work dirs,
taken before and after. Builds use a *private* work root (the creator's `work_root()` is
redirected to the test's tmp dir), so a leftover work dir is attributable to the scenario even
while other sessions build in the same cache. `engine.count_managed()` is global (other sessions
share the engine), so its delta is recorded and summed into the terminal summary, not asserted.

The fixture buildpacks and the `Builder` are the platform self-tests' (tests/platform_integration):
`fixture/layers` sources `layers.build.sh` from the app, so each test shows what its buildpack does.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from platform_integration.conftest import Builder, app, builder, stack, write_app  # noqa: F401 (fixtures)

from conformance import engine
from conformance.engine import SESSION, SESSION_ID, ensure_engine
from conformance.errors import ConformanceError
from conformance.paths import REPO_ROOT, WORK_DIR_ENV, cache_root
from conformance.platform import creator

SUMMARY: list[tuple[str, Leaks]] = []
NOTES: list[str] = []  # figures a scenario wants in the terminal summary (e.g. wall times)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long reliability scenario, run by `make soak` (always also `slow`)")


# ------------------------------------------------------------------------------------------------
# Leak accounting
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """What one session owns right now, plus the global managed counts for context."""

    containers: frozenset[str]
    volumes: frozenset[str]
    images: frozenset[str]  # image ids
    work_dirs: frozenset[str]
    managed: dict[str, int]


def take_inventory(work_root: Path | None, session: str = SESSION_ID) -> Inventory:
    client = ensure_engine()
    filters = {"label": [f"{SESSION}={session}"]}
    return Inventory(
        containers=frozenset(c.id for c in client.containers.list(all=True, filters=filters)),
        volumes=frozenset(v.name for v in client.volumes.list(filters=filters)),
        images=frozenset(i.id for i in client.images.list(filters=filters)),
        work_dirs=frozenset(p.name for p in work_root.iterdir()) if work_root and work_root.is_dir() else frozenset(),
        managed=engine.count_managed(client),
    )


@dataclass
class Leaks:
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    work_dirs: list[str] = field(default_factory=list)
    managed_delta: dict[str, int] = field(default_factory=dict)  # global: informative only

    @property
    def total(self) -> int:
        return len(self.containers) + len(self.volumes) + len(self.images) + len(self.work_dirs)


def _image_ids(references: Iterable[str]) -> set[str]:
    ids = set()
    for reference in references:
        with contextlib.suppress(Exception):  # not built: nothing to allow
            ids.add(ensure_engine().images.get(reference).id)
    return ids


class LeakGuard:
    """Before/after inventory of one scenario; `assert_clean` fails on anything it left behind."""

    def __init__(self, work_root: Path | None, session: str = SESSION_ID) -> None:
        self.work_root = work_root
        self.session = session
        self.before = take_inventory(work_root, session)
        self.checked: Leaks | None = None

    def leaks(self, allowed_images: Iterable[str] = ()) -> Leaks:
        after = take_inventory(self.work_root, self.session)
        allowed = _image_ids(allowed_images)
        return Leaks(
            containers=sorted(after.containers - self.before.containers),
            volumes=sorted(after.volumes - self.before.volumes),
            images=sorted(after.images - self.before.images - allowed),
            work_dirs=sorted(after.work_dirs - self.before.work_dirs),
            managed_delta={k: after.managed.get(k, 0) - self.before.managed.get(k, 0) for k in after.managed},
        )

    def assert_clean(self, allowed_images: Iterable[str] = ()) -> Leaks:
        found = self.leaks(allowed_images)
        self.checked = found
        assert found.total == 0, f"leaked resources: {found}"
        return found


@pytest.fixture
def work_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private root for the creator's per-build work dirs (everything else stays in the shared cache)."""
    root = tmp_path / "work-root"
    root.mkdir()
    monkeypatch.setattr(creator, "work_root", lambda: root)
    return root


@pytest.fixture
def leak_guard(work_root: Path, request: pytest.FixtureRequest, record_property) -> Iterator[LeakGuard]:
    guard = LeakGuard(work_root)
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


def private_cache_root(tmp_path: Path) -> Path:
    """A cache root that shares the real one's contents (symlinks) but has its own `work/`."""
    root = tmp_path / "cache-root"
    root.mkdir(exist_ok=True)
    real = cache_root()
    for entry in real.iterdir():
        if entry.name != "work" and not (root / entry.name).exists():
            (root / entry.name).symlink_to(entry)
    (root / "work").mkdir(exist_ok=True)
    return root


def run_cli(args: list[str], tmp_path: Path, *, timeout: float = 300) -> CliRun:
    """`bpconform ARGS` in a subprocess with its own session label and private work root."""
    session = f"rel{uuid.uuid4().hex[:9]}"
    root = private_cache_root(tmp_path)
    env = {**os.environ, "BPCONFORM_SESSION": session, "BPCONFORM_CACHE": str(root), WORK_DIR_ENV: str(root / "work")}
    env.pop("BPCONFORM_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr, session, root / "work")
