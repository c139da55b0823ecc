"""Tiny hostile buildpacks and the box the security tests build them in (tests/security).

`hostile_buildpack` writes a real buildpack (`buildpack.toml`, `bin/detect`, `bin/build` as /bin/sh
scripts) whose id, version and scripts the test chooses, so every attack is visible next to its
assertions. The `box` fixture gives a test everything private, so what it leaves behind is its own
leak even while other sessions build on the same machine: a work root in /dev/shm (a private
`paths.memory_base()`), a temp dir for the harness's scratch, a cache root whose `build-caches/` and
`work/` are its own (stacks, runtimes and wheels are shared through symlinks), and a `LeakGuard`
counting all of those plus this session's containers, volumes and images.
Records are output lines `@@<key>|<value>` (see `records`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from leaks import LeakGuard, bpconform_subprocess

from conformance import paths
from conformance.engine import SESSION, SESSION_ID, ContainerLimits, ensure_engine
from conformance.errors import ConformanceError
from conformance.paths import WORK_DIR_ENV
from conformance.platform import workdir
from conformance.platform.cache import BuildCache
from conformance.platform.creator import BuildRequest, BuildResult, create
from conformance.platform_inputs import stack_build_request
from conformance.stacks import Stack

IMAGE_REPO = "bpconform-security"
RECORD = re.compile(r"^@@([^|]+)\|(.*)$")
SHARED_CACHE_ENTRIES_PRIVATE = ("work", "build-caches")


def toml_string(value: str) -> str:
    """A TOML basic string holding `value` exactly (JSON's escapes are TOML's, for these characters)."""
    return json.dumps(value, ensure_ascii=False)


def hostile_buildpack(
    root: Path,
    build: str = "exit 0",
    *,
    detect: str = "exit 0",
    bp_id: str = "hostile/bp",
    version: str = "0.0.1",
    api: str = "0.10",
    extra_files: dict[str, str] | None = None,
) -> Path:
    """A buildpack dir under `root` whose bin/build and bin/detect run the given sh snippets (dedented)."""
    root.mkdir(parents=True, exist_ok=True)
    bp = Path(tempfile.mkdtemp(prefix="bp-", dir=root))
    bp.chmod(0o755)  # mkdtemp makes it 0700: the build user must read it
    (bp / "bin").mkdir()
    (bp / "buildpack.toml").write_text(
        f'api = "{api}"\n\n[buildpack]\nid = {toml_string(bp_id)}\nversion = {toml_string(version)}\n'
        'name = "hostile"\n\n[[targets]]\nos = "linux"\n'
    )
    for name, body in (("detect", detect), ("build", build)):
        script = bp / "bin" / name
        script.write_text('#!/bin/sh\nrecord() { printf \'@@%s|%s\\n\' "$1" "$2"; }\n' + textwrap.dedent(body))
        script.chmod(0o755)
    for name, text in (extra_files or {}).items():
        (bp / name).write_text(text)
    return bp


def records(output: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = RECORD.match(line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


def assert_clear(error: BaseException, *needles: str) -> ConformanceError:
    """Our error type, a message naming the problem, a hint, and no traceback anywhere in it."""
    assert isinstance(error, ConformanceError), f"not a ConformanceError: {type(error).__name__}: {error}"
    for needle in needles:
        assert needle in error.message, f"{needle!r} not in the message: {error.message}"
    assert error.hint.strip(), f"no hint with: {error.message}"
    assert "Traceback" not in str(error) and "Traceback" not in getattr(error, "build_output", "")
    return error


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Box:
    """One test's private places, its builds and its leak guard."""

    stack: Stack
    tmp_path: Path
    name: str
    memory_base: Path
    scratch: Path
    cache_root: Path
    guard: LeakGuard | None = None
    images: list[str] = field(default_factory=list)
    counter: int = 0

    @property
    def app(self) -> Path:
        app = self.tmp_path / "app"
        if not app.is_dir():
            app.mkdir()
            (app / "README").write_text("an app built by a hostile buildpack\n")
        return app

    def image_name(self) -> str:
        self.counter += 1
        image = f"{IMAGE_REPO}/{self.name}:{SESSION_ID}-{self.counter}"
        self.images.append(image)
        return image

    def request(self, buildpacks: list[Path], **options: object) -> BuildRequest:
        return stack_build_request(
            image=str(options.pop("image", None) or self.image_name()),
            app_dir=self.app,
            buildpacks=buildpacks,
            stack=options.pop("stack", self.stack),  # type: ignore[arg-type]
            cache=options.pop("cache", None) or BuildCache(self.tmp_path / f"cache-{self.counter}"),  # type: ignore[arg-type]
            on_output=lambda _text: None,
            timeout=options.pop("timeout", 60.0),  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )

    def build(self, buildpacks: list[Path], **options: object) -> BuildResult:
        return create(self.request(buildpacks, **options))

    def fail(self, buildpacks: list[Path], **options: object) -> ConformanceError:
        """A build that must end in a user-facing error; returns it."""
        with pytest.raises(ConformanceError) as failed:
            self.build(buildpacks, **options)
        return failed.value

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> CliResult:
        """`bpconform ARGS` in a subprocess, with this box's cache root and temp dir, and a session label
        of its own (its exit cleanup removes that session's resources; none may be left after it)."""
        session = f"sec{uuid.uuid4().hex[:9]}"
        proc = bpconform_subprocess(
            args, session, self.cache_root, timeout=timeout, env={"TMPDIR": str(self.scratch), **(env or {})}
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        left = ensure_engine().api.containers(all=True, filters={"label": f"{SESSION}={session}"})
        assert not left, f"bpconform {' '.join(args)} left containers: {left}"
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def assert_no_leaks(self, allowed_images: list[str] = (), allowed_caches: list[str] = ()) -> None:  # type: ignore[assignment]
        assert self.guard is not None
        self.guard.assert_clean(allowed_images, allowed_caches)


def _private_cache_root(tmp_path: Path) -> Path:
    root = tmp_path / "cache-root"
    root.mkdir()
    for entry in paths.cache_root().iterdir():
        if entry.name not in SHARED_CACHE_ENTRIES_PRIVATE:
            (root / entry.name).symlink_to(entry)
    for name in SHARED_CACHE_ENTRIES_PRIVATE:
        (root / name).mkdir()
    return root


@pytest.fixture(scope="session")
def security_stack() -> Stack:
    from conformance.stacks import ensure_stack

    try:
        ensure_engine()
        return ensure_stack("bookworm")
    except ConformanceError as exc:
        pytest.skip(f"no Docker engine or bookworm stack: {exc}")


@pytest.fixture
def box(security_stack: Stack, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch) -> Iterator[Box]:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60].strip("-")
    memory = Path("/dev/shm") / f"bpconform-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(paths, "memory_base", lambda: memory)
    monkeypatch.delenv(WORK_DIR_ENV, raising=False)
    if not str(paths.work_root()).startswith(str(memory)):  # /dev/shm too small here: a private disk root
        private_work = tmp_path / "work-root" / "work"
        private_work.mkdir(parents=True)
        monkeypatch.setattr(workdir, "work_root", lambda: private_work)
        memory = tmp_path / "work-root"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    cache_root = _private_cache_root(tmp_path)
    for variable in ("BPCONFORM_BUILD_MEMORY", "BPCONFORM_BUILD_PIDS"):
        monkeypatch.delenv(variable, raising=False)
    made = Box(security_stack, tmp_path, name, memory, scratch, cache_root)
    made.guard = LeakGuard(
        cache_root / "work",  # CLI builds' work dirs (BPCONFORM_WORK_DIR); in-process ones are in `memory`
        scratch_root=scratch,
        memory_base=memory,
        cache_root=cache_root,
        own_memory=True,
        own_caches=True,
    )
    try:
        yield made
    finally:
        client = ensure_engine()
        for image in made.images:
            with contextlib.suppress(Exception):  # never built, or already removed by the test
                client.images.remove(image, force=True)
        paths.wait_for_discards(60)
        shutil.rmtree(memory, ignore_errors=True)


def small_limits(memory: str = "256m", pids: int = 4096) -> ContainerLimits:
    from conformance.engine import parse_memory

    return ContainerLimits(memory=parse_memory(memory), pids=pids)


__all__ = [
    "Box",
    "CliResult",
    "assert_clear",
    "box",
    "hostile_buildpack",
    "records",
    "security_stack",
    "small_limits",
    "toml_string",
]
