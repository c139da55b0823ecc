"""Leak accounting for tests that run builds: what a scenario left behind, of every kind the harness makes.

An `Inventory` is taken before and after a scenario (`LeakGuard`); the difference is the leak:

- engine resources carrying this session's label: containers, volumes, images;
- the build work dirs under the scenario's work root (and its `-trash` sibling, once the background
  deleter is done);
- scratch dirs the harness makes with `tempfile` (`bpconform-save-*`, ...): in the scenario's own temp
  dir when it has one (`scratch_root`; builds then use it through `tempfile.tempdir`), else the
  `bpconform-*` entries of the system temp dir;
- work dirs in memory, under `paths.memory_base()` (`work/`, `work-trash/`);
- `bpconform build` caches, under `<cache root>/build-caches`.

Engine-wide counts (`engine.count_managed`) include other sessions' resources, so their delta is
recorded for the terminal summary, never asserted. The same holds for the memory and cache dirs
when they are shared with other sessions: pass `own_memory=True` / `own_caches=True` only when the
scenario made them private (see `private_memory_base`), otherwise they are reported, not counted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance import engine, paths
from conformance.engine import SESSION, SESSION_ID, ensure_engine

SCRATCH_PREFIX = "bpconform-"
_CACHE_SIDE_ENTRIES = (".owners",)


def _names(root: Path | None, prefix: str = "") -> frozenset[str]:
    if root is None or not root.is_dir():
        return frozenset()
    return frozenset(entry.name for entry in root.iterdir() if entry.name.startswith(prefix))


def _memory_dirs(base: Path) -> frozenset[str]:
    found: set[str] = set()
    for sub in ("work", "work-trash"):
        found |= {f"{sub}/{name}" for name in _names(base / sub)}
    return frozenset(found)


@dataclass(frozen=True)
class Inventory:
    """What one session owns right now, plus the global managed counts for context."""

    containers: frozenset[str]
    volumes: frozenset[str]
    images: frozenset[str]  # image ids
    work_dirs: frozenset[str]
    managed: dict[str, int]
    scratch_dirs: frozenset[str] = frozenset()
    memory_dirs: frozenset[str] = frozenset()
    build_caches: frozenset[str] = frozenset()


def take_inventory(
    work_root: Path | None,
    session: str = SESSION_ID,
    *,
    scratch_root: Path | None = None,
    memory_base: Path | None = None,
    cache_root: Path | None = None,
) -> Inventory:
    client = ensure_engine()
    filters = {"label": [f"{SESSION}={session}"]}
    trash = work_root.with_name(work_root.name + "-trash") if work_root else None
    work = _names(work_root) | {f"trash/{name}" for name in _names(trash)}
    scratch = _names(scratch_root) if scratch_root else _names(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
    caches = {
        name
        for name in _names((cache_root or paths.cache_root()) / "build-caches") - set(_CACHE_SIDE_ENTRIES)
        if not name.endswith(".lock")  # kept on purpose: unlinking a lock another build holds splits it in two
    }
    return Inventory(
        containers=frozenset(c["Id"] for c in client.api.containers(all=True, filters=filters)),
        volumes=frozenset(v.name for v in client.volumes.list(filters=filters)),
        images=frozenset(i["Id"] for i in client.api.images(filters=filters)),
        work_dirs=frozenset(work),
        managed=engine.count_managed(client),
        scratch_dirs=scratch,
        memory_dirs=_memory_dirs(memory_base or paths.memory_base()),
        build_caches=frozenset(caches),
    )


@dataclass
class Leaks:
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    work_dirs: list[str] = field(default_factory=list)
    managed_delta: dict[str, int] = field(default_factory=dict)  # global: informative only
    scratch_dirs: list[str] = field(default_factory=list)
    memory_dirs: list[str] = field(default_factory=list)
    build_caches: list[str] = field(default_factory=list)
    counted: tuple[str, ...] = ("containers", "volumes", "images", "work_dirs", "scratch_dirs")

    @property
    def total(self) -> int:
        return sum(len(getattr(self, kind)) for kind in self.counted)


def _image_ids(references: Iterable[str]) -> set[str]:
    ids = set()
    for reference in references:
        with contextlib.suppress(Exception):  # not built: nothing to allow
            ids.add(ensure_engine().images.get(reference).id)
    return ids


class LeakGuard:
    """Before/after inventory of one scenario; `assert_clean` fails on anything it left behind."""

    def __init__(
        self,
        work_root: Path | None,
        session: str = SESSION_ID,
        *,
        scratch_root: Path | None = None,
        memory_base: Path | None = None,
        cache_root: Path | None = None,
        own_memory: bool = False,
        own_caches: bool = False,
    ) -> None:
        self.work_root = work_root
        self.session = session
        self.where = {"scratch_root": scratch_root, "memory_base": memory_base, "cache_root": cache_root}
        self.counted = ("containers", "volumes", "images", "work_dirs", "scratch_dirs")
        self.counted += ("memory_dirs",) if own_memory else ()
        self.counted += ("build_caches",) if own_caches else ()
        self.before = take_inventory(work_root, session, **self.where)
        self.checked: Leaks | None = None

    def leaks(self, allowed_images: Iterable[str] = (), allowed_caches: Iterable[str] = ()) -> Leaks:
        paths.wait_for_discards(60)  # the background deleter must be done before the work dirs count
        after = take_inventory(self.work_root, self.session, **self.where)
        allowed = _image_ids(allowed_images)
        return Leaks(
            containers=sorted(after.containers - self.before.containers),
            volumes=sorted(after.volumes - self.before.volumes),
            images=sorted(after.images - self.before.images - allowed),
            work_dirs=sorted(after.work_dirs - self.before.work_dirs),
            managed_delta={k: after.managed.get(k, 0) - self.before.managed.get(k, 0) for k in after.managed},
            scratch_dirs=sorted(after.scratch_dirs - self.before.scratch_dirs),
            memory_dirs=sorted(after.memory_dirs - self.before.memory_dirs),
            build_caches=sorted(after.build_caches - self.before.build_caches - set(allowed_caches)),
            counted=self.counted,
        )

    def assert_clean(self, allowed_images: Iterable[str] = (), allowed_caches: Iterable[str] = ()) -> Leaks:
        found = self.leaks(allowed_images, allowed_caches)
        self.checked = found
        assert found.total == 0, f"leaked resources: {found}"
        return found


def private_tempdir(root: Path) -> Path:
    """Make `root` the temp dir of this process (`tempfile.tempdir`) and of its children (TMPDIR)."""
    root.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(root)
    os.environ["TMPDIR"] = str(root)
    return root


__all__ = ["Inventory", "LeakGuard", "Leaks", "private_tempdir", "take_inventory"]


def bpconform_subprocess(
    args: Sequence[str], session: str, cache: Path, *, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`bpconform ARGS` in a subprocess with its own session label, cache root and work root, so what
    it leaves behind is attributable to it (its exit cleanup removes that session's resources)."""
    full_env = {
        **os.environ,
        "BPCONFORM_SESSION": session,
        "BPCONFORM_CACHE": str(cache),
        paths.WORK_DIR_ENV: str(cache / "work"),
        **(env or {}),
    }
    full_env.pop("BPCONFORM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        cwd=paths.REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
