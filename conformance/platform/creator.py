"""The creator: every lifecycle phase in one call, like the lifecycle's `creator` binary.

app dir + buildpacks + stack  ->  detect -> restore -> build -> export -> cache  ->  image.

Buildpacks run in one long-lived container of the build image, as its non-root user, through
`docker exec`; the app copy, layers and platform dirs are host directories bind-mounted into it,
so the host side (this module) reads layer TOML, computes environments and writes tars directly.
The user's app directory is only ever read.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from conformance import __version__
from conformance.access import PackageAccess
from conformance.engine import (
    ContainerLimits,
    Mount,
    check_timeout,
    ensure_engine,
    exec_in,
    format_memory,
    labels,
    running_container,
    shares_host_ids,
)
from conformance.errors import PlatformError
from conformance.paths import discard_tree, no_space_error, work_root
from conformance.platform import env as cnb_env
from conformance.platform import launcher as cnb_launcher
from conformance.platform import planfiles, safefs, spec
from conformance.platform.appdir import copy_app
from conformance.platform.archive import LayerTar, Owner, TreeSource, extract_layer_tar, fingerprint, write_layer_tar
from conformance.platform.buildpack import (
    DEFAULT_EXEC_ENV,
    Buildpack,
    BuildpackRegistry,
    GroupEntry,
    RunTarget,
    interface_env,
    load_buildpack,
)
from conformance.platform.cache import BuildCache, CachedLayer, CacheIndex
from conformance.platform.detect import DetectResult, DetectRun, buildpack_plan_from, plan_after_build, resolve_order
from conformance.platform.export import (
    BaseImage,
    ExportResult,
    NewLayer,
    chain_ids,
    check_build_target,
    export_image,
    image_config,
)
from conformance.platform.layers import (
    LaunchConfig,
    Layer,
    Process,
    build_metadata_process,
    default_process_type,
    merge_processes,
    read_build_toml,
    read_launch_toml,
    read_layers,
    write_layer_metadata,
)
from conformance.stacks import Stack
from conformance.tomlcompat import dumps_toml

PLATFORM_API = "0.13"
LIFECYCLE_METADATA = "io.buildpacks.lifecycle.metadata"
BUILD_METADATA = "io.buildpacks.build.metadata"
PROJECT_METADATA = "io.buildpacks.project.metadata"
BUILD_FAILED = 51  # a buildpack's bin/build exited non-zero
BUILD_ERROR = 52  # the platform could not run or understand a buildpack
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DETECT_ERROR = 22  # detection itself failed (here: a bin/detect that hung)

APP_DIR = "/workspace"
LAYERS_DIR = "/layers"
PLATFORM_DIR = "/platform"
PLANS_DIR = "/cnb-plans"
BUILDPACKS_DIR = "/cnb/buildpacks"
RUNTIMES_DIR = "/bpconform/runtimes"

Output = Callable[[str], None]
_BUILD_USER_HOMES: dict[tuple[str, int], str] = {}  # (build image id, uid) -> home directory


@dataclass
class BuildRequest:
    """Everything one build needs; the defaults are what a conformance run uses."""

    image: str
    app_dir: Path
    buildpacks: list[Path]
    stack: Stack
    access: PackageAccess | None = None
    runtimes_dir: Path | None = None
    user_env: dict[str, str] = field(default_factory=dict)
    env_order: str = "sorted"  # or "lifecycle-1393": emulate the pre-0.20.1 build env ordering bug
    exec_env: str = DEFAULT_EXEC_ENV  # CNB_EXEC_ENV for Buildpack API >= 0.12 buildpacks (detect and build)
    cache: BuildCache | None = None
    clear_cache: bool = False
    timeout: float | None = 1800.0
    on_output: Output | None = None
    keep_image: bool = False  # True: the image outlives this process (CLI builds); tests leave it False
    session_id: str | None = None  # the session the image belongs to, when not this process's
    limits: ContainerLimits | None = None  # None: the defaults, or BPCONFORM_BUILD_MEMORY / _PIDS
    # Called with the layers dir once the build container is gone, before export (read-only use).
    inspect_layers: Callable[[Path], None] | None = None


@dataclass
class LayerReport:
    """One buildpack layer as the build left it, and what the exporter did with it."""

    buildpack_id: str
    name: str
    types: dict[str, bool]
    metadata: dict[str, Any]
    diff_id: str | None = None
    action: str = ""  # "exported", "reused" (previous image), "unchanged" (cached tar), "cached only"


@dataclass
class BuildResult:
    image: str
    image_id: str
    output: str
    group: list[tuple[str, str]]
    layers: list[LayerReport]
    export: ExportResult
    timings: dict[str, float]
    build_env: dict[str, dict[str, str]]  # buildpack id -> the environment its bin/build received


class _Log:
    """Collects the build's output (capped) while streaming it to the caller."""

    CAP = 4 * 1024 * 1024

    def __init__(self, sink: Output | None) -> None:
        self._sink = sink if sink is not None else _write_stderr
        self._chunks: list[str] = []
        self._size = 0

    def __call__(self, text: str) -> None:
        self._sink(text)
        self._chunks.append(text)
        self._size += len(text)
        while self._size > self.CAP and len(self._chunks) > 1:
            self._size -= len(self._chunks.pop(0))

    def line(self, text: str) -> None:
        self(text + "\n")

    @property
    def text(self) -> str:
        return "".join(self._chunks)


def _write_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------------
# The whole run
# ------------------------------------------------------------------------------------------------


def create(request: BuildRequest) -> BuildResult:
    """Build `request.app_dir` into the image `request.image`; raises PlatformError on failure."""
    log = _Log(request.on_output)
    run = _Run(request, log)
    interrupted = False
    try:
        with run.cache.locked(log.line):  # one build per cache (image name) at a time: no crash, no mixing
            run.cache.check(clear=request.clear_cache)
            return run.execute()
    except PlatformError as exc:
        exc.build_output = log.text
        raise
    except OSError as exc:
        failure = no_space_error(exc, run.work, run.cache.root)
        if failure is None:
            raise
        failure.build_output = log.text
        raise failure from None
    except BaseException:  # Ctrl-C, SIGTERM (SystemExit): the process ends, delete the work dir now
        interrupted = True
        raise
    finally:
        run.cleanup(now=interrupted)


class _Run:
    def __init__(self, request: BuildRequest, log: _Log) -> None:
        self.request = request
        self.log = log
        self.stack = request.stack
        self.owner = Owner(request.stack.build_uid, request.stack.build_gid)
        self.work = work_root() / uuid.uuid4().hex[:12]
        self.container: Container | None = None
        self.timings: dict[str, float] = {}
        self.cache = request.cache or BuildCache.for_image(request.image)
        self.previous: BaseImage | None = None  # the last build of the same image name, if any
        self.previous_layers: dict[str, dict[str, Any]] = {}  # its layers per buildpack, from its label
        self.limits = request.limits or ContainerLimits.from_env()
        self._limit_events: dict[str, int] = {}  # cgroup counters already blamed on a failure

    # -- directories ------------------------------------------------------------------------------

    @property
    def workspace(self) -> Path:
        return self.work / "workspace"

    @property
    def layers_root(self) -> Path:
        return self.work / "layers"

    @property
    def platform_dir(self) -> Path:
        return self.work / "platform"

    @property
    def plans_dir(self) -> Path:
        return self.work / "plans"

    @property
    def tars_dir(self) -> Path:
        return self.work / "tars"

    def cleanup(self, *, now: bool = False) -> None:
        discard_tree(self.work, now=now)

    # -- phases -----------------------------------------------------------------------------------

    def execute(self) -> BuildResult:
        spec.check_image_reference(self.request.image, "image")
        if self.request.timeout is not None:
            check_timeout(self.request.timeout)
        check_build_target(self.request.image, self.stack.run_image, self.stack.build_image)
        buildpacks = [load_buildpack(Path(path).resolve()) for path in self.request.buildpacks]
        if not buildpacks:
            raise PlatformError("no buildpacks given", "pass at least one buildpack directory", BUILD_ERROR)
        registry = BuildpackRegistry()
        for bp in buildpacks:
            registry.add(bp)
        run_image = BaseImage.inspect(self.stack.run_image)  # fail before building, like the lifecycle
        self._prepare_dirs()
        self.previous = _previous_image(self.request.image)
        self.previous_layers = _previous_layer_metadata(self.previous)
        with running_container(
            self.stack.build_image,
            ["sleep", "infinity"],
            kind="build",
            mounts=self._mounts(buildpacks),
            user="0:0",  # pid 1 (`sleep`) as root: buildpacks, run as the build user, cannot signal it
            network_disabled=self.request.access is not None and self.request.access.mode == "offline",
            **self.limits.create_options(self._root_capabilities()),
        ) as container:
            self.container = container
            self._own_work_dirs()
            base_env = self._base_env()
            with self._phase("detect"):
                detected = self._detect(registry, buildpacks, base_env)
            cache_index = CacheIndex() if self.request.clear_cache else self.cache.load_index()
            for note in cache_index.notes:
                self.log.line(note)
            with self._phase("restore"):
                restored = self._restore(detected.group, cache_index)
            with self._phase("build"):
                built, build_envs = self._build(detected, base_env)
        if self.request.inspect_layers is not None:
            self.request.inspect_layers(self.layers_root)
        with self._phase("export"):
            exported, reports = self._export(detected.group, built, run_image, restored, cache_index)
        return BuildResult(
            image=self.request.image,
            image_id=exported.image_id,
            output=self.log.text,
            group=[(bp.id, bp.version) for bp in detected.group],
            layers=reports,
            export=exported,
            timings=self.timings,
            build_env=build_envs,
        )

    def _phase(self, name: str) -> _Timed:
        self.log.line(f"===> {name.upper()}")
        return _Timed(self.timings, name)

    def _prepare_dirs(self) -> None:
        for directory in (self.layers_root, self.platform_dir / "env", self.plans_dir, self.tars_dir):
            directory.mkdir(parents=True)
        copy_app(Path(self.request.app_dir), self.workspace)
        platform_env = dict(self.request.access.platform_env() if self.request.access else {})
        platform_env.update(self.request.user_env)
        for name, value in platform_env.items():
            if not ENV_NAME.fullmatch(name):
                raise PlatformError(
                    f"{name!r} is not a valid environment variable name for <platform>/env",
                    "use letters, digits and underscores, not starting with a digit",
                    BUILD_ERROR,
                )
            (self.platform_dir / "env" / name).write_text(value)

    def _mounts(self, buildpacks: list[Buildpack]) -> list[Mount]:
        mounts = [
            Mount(self.workspace, APP_DIR),
            Mount(self.layers_root, LAYERS_DIR),
            Mount(self.platform_dir, PLATFORM_DIR, read_only=True),  # the user's env: no buildpack changes it
            Mount(self.plans_dir, PLANS_DIR),
        ]
        for bp in buildpacks:  # id and version were validated on load; this stops a bug mounting over /usr
            target = _buildpack_dir(bp)
            if posixpath.normpath(target) != target or posixpath.dirname(posixpath.dirname(target)) != BUILDPACKS_DIR:
                raise PlatformError(
                    f"refusing to mount buildpack {bp.path} at {target!r}: not a directory of {BUILDPACKS_DIR}",
                    "the buildpack's id or version makes an unsafe path; fix buildpack.toml",
                    BUILD_ERROR,
                )
            mounts.append(Mount(bp.path, target, read_only=True))
        if self.request.access is not None:
            mounts += self.request.access.mounts()
        if self.request.runtimes_dir is not None:
            mounts.append(Mount(self.request.runtimes_dir, RUNTIMES_DIR, read_only=True))
        return mounts

    def _own_work_dirs(self) -> None:
        """Give the build user the dirs it writes to (not the platform dir: it is read-only)."""
        self._give_to_build_user(self.workspace, self.layers_root, self.plans_dir)

    @staticmethod
    def _root_capabilities() -> tuple[str, ...]:
        """The only step run as root in the build container is `chown -R` of the work dirs, and only
        when the host cannot chown them itself (see `_give_to_build_user`): then it needs CHOWN, and
        DAC_READ_SEARCH to walk directories a buildpack made unreadable. Otherwise: no capabilities."""
        return () if shares_host_ids() else ("CHOWN", "DAC_READ_SEARCH")

    def _give_to_build_user(self, *host_dirs: Path) -> None:
        """`chown -R` mounted work dirs to the build user: on the host when its ids are the
        container's (saves an exec per call), else as root inside the build container."""
        if shares_host_ids():
            for directory in host_dirs:
                _chown_tree(directory, self.owner)
            return
        mounted = {self.workspace: APP_DIR, self.layers_root: LAYERS_DIR, self.plans_dir: PLANS_DIR}
        self._root_exec(["chown", "-R", self._ids, *(mounted[directory] for directory in host_dirs)])

    def _root_exec(self, command: list[str]) -> None:
        assert self.container is not None
        result = exec_in(self.container, command, user="0:0")
        if result.exit_code != 0:
            raise PlatformError(f"`{' '.join(command)}` failed in the build container: {result.output}")

    def _base_env(self) -> dict[str, str]:
        """The build image's environment, reduced to what the lifecycle lets buildpacks see."""
        assert self.container is not None
        image_env = dict(item.split("=", 1) for item in self.container.attrs["Config"].get("Env") or [])
        image_env.setdefault("HOME", self._build_user_home())
        image_env.setdefault("HOSTNAME", self.container.attrs["Config"].get("Hostname", ""))
        return {key: value for key, value in image_env.items() if key in cnb_env.ALLOWED_BUILD_ENV}

    def _build_user_home(self) -> str:
        """The build user's home in the build image's passwd (looked up once per image and uid)."""
        assert self.container is not None
        key = (self.container.attrs["Image"], self.owner.uid)
        if key not in _BUILD_USER_HOMES:
            found = exec_in(
                self.container, ["sh", "-c", 'getent passwd "$0" | cut -d: -f6', str(self.owner.uid)], user=self._ids
            )
            _BUILD_USER_HOMES[key] = found.output.strip() or "/home/cnb"
        return _BUILD_USER_HOMES[key]

    @property
    def target(self) -> RunTarget:
        return RunTarget("linux", self.stack.arch, self.stack.distro_name, self.stack.distro_version)

    def _exec_as_build_user(
        self, command: list[str], env: dict[str, str], on_output: Output, *, what: str, exit_code: int
    ) -> int:
        """Run a buildpack executable as the build user with exactly `env`, under the request's timeout.

        Past the timeout the build container is killed (ending the executable and everything it
        started) and the build fails with `exit_code`, naming `what` hung.
        """
        assert self.container is not None
        argv = ["env", "-i", *(f"{key}={value}" for key, value in sorted(env.items())), *command]
        expired = threading.Event()
        timer = None
        if self.request.timeout:

            def expire() -> None:
                expired.set()
                self._kill_container()

            timer = threading.Timer(self.request.timeout, expire)
            timer.daemon = True
            timer.start()
        try:
            result = exec_in(self.container, argv, user=self._ids, workdir=APP_DIR, on_output=on_output)
        except docker.errors.APIError:
            result = None  # the container went away under us: told apart below
        finally:
            if timer is not None:
                timer.cancel()
        if expired.is_set():
            raise PlatformError(
                f"{what} did not finish within {self.request.timeout:.0f}s and was stopped",
                "look at the output above for where it hung; raise the timeout if the work is legitimately slow",
                exit_code,
            )
        if result is not None and result.exit_code not in (0, 100):
            self._raise_if_limit_hit(what, exit_code)
        if result is None or self._container_was_stopped(result.exit_code):
            raise PlatformError(
                f"the build container was stopped from outside while {what} ran",
                "something killed it (`docker kill`, the OOM killer, an engine restart); build again",
                BUILD_ERROR,
            )
        return result.exit_code

    def _container_was_stopped(self, exit_code: int) -> bool:
        """Whether the container itself died (vs. the buildpack exiting non-zero inside it).

        A kill reaches the exec as 137/143 a moment before the engine marks the container exited,
        so for those codes wait briefly for the container to settle.
        """
        assert self.container is not None
        try:
            if exit_code in (137, 143):
                self.container.wait(timeout=3)
                return True
            self.container.reload()
        except docker.errors.APIError:
            return True
        except requests.exceptions.RequestException:  # wait() timed out: the container is alive
            return False
        return self.container.status != "running"

    def _raise_if_limit_hit(self, what: str, exit_code: int) -> None:
        """Tell a buildpack that hit the container's memory or process limit from one that failed.

        The kernel counts both in the container's cgroup (cgroup v2 `memory.events` `oom_kill` and
        `pids.events` `max`; v1 `memory.oom_control` and `pids/pids.events`); the engine itself does
        not flag an OOM kill of an exec'd process (only of pid 1). Counts already blamed on an
        earlier failure (an optional buildpack's detect) are not blamed again.
        """
        counters = self._limit_counters()
        fresh = {key: count - self._limit_events.get(key, 0) for key, count in counters.items()}
        self._limit_events.update(counters)
        if fresh.get("oom_kill", 0) > 0:
            raise PlatformError(
                f"{what} ran out of memory: the kernel killed it at the build container's limit of"
                f" {format_memory(self.limits.memory)} (no swap)",
                "give the build more memory with --memory (bpconform build/run) or BPCONFORM_BUILD_MEMORY,"
                " e.g. --memory 16g; or make the buildpack use less",
                exit_code,
            )
        if fresh.get("pids_max", 0) > 0:
            raise PlatformError(
                f"{what} hit the build container's limit of {self.limits.pids} processes (fork failed"
                f" {fresh['pids_max']} times)",
                "raise it with --pids-limit (bpconform build/run) or BPCONFORM_BUILD_PIDS if the work is legitimate;"
                " otherwise the buildpack starts processes without bound",
                exit_code,
            )

    def _limit_counters(self) -> dict[str, int]:
        """The cgroup's OOM-kill and fork-refused counts. Read by one process (`head`, which labels
        each file), since a container at its pids limit may have room for just one; if even that
        cannot start, the engine's stats tell whether the pids limit is reached."""
        assert self.container is not None
        try:
            found = exec_in(self.container, ["head", "-n", "50", *_LIMIT_COUNTER_FILES], user=self._ids)
        except docker.errors.APIError:
            found = None
        counters: dict[str, int] = {}
        current = ""
        for line in found.output.splitlines() if found is not None else ():
            if line.startswith("==> ") and line.endswith(" <=="):
                current = line[4:-4]
                continue
            key, _, value = line.partition(" ")
            wanted = "oom_kill" if "memory" in current else "max" if "pids" in current else ""
            if key == wanted and value.strip().isdigit():
                name = "oom_kill" if wanted == "oom_kill" else "pids_max"
                counters[name] = counters.get(name, 0) + int(value)
        if not counters:
            with contextlib.suppress(Exception):  # no stats either: nothing to tell
                pids = self.container.stats(stream=False, one_shot=True).get("pids_stats") or {}
                if pids.get("limit") and pids.get("current", 0) >= pids["limit"]:
                    counters["pids_max"] = self._limit_events.get("pids_max", 0) + 1
        return counters

    def _kill_container(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):  # already gone
                self.container.kill()

    # -- detect -----------------------------------------------------------------------------------

    def _detect(
        self, registry: BuildpackRegistry, buildpacks: list[Buildpack], base_env: dict[str, str]
    ) -> DetectResult:
        order = ((*(GroupEntry(bp.id, bp.version) for bp in buildpacks),),)
        platform_env = cnb_env.read_platform_env(self.platform_dir / "env")

        def run_detect(bp: Buildpack) -> DetectRun:
            plan_host = self.plans_dir / f"detect-{bp.escaped_id}.toml"
            plan_path = f"{PLANS_DIR}/{plan_host.name}"
            self._fresh_detect_plan(plan_host.name, plan_path)
            env = cnb_env.build_env(base_env, platform_env, [], clear_env=bp.clear_env)
            env.update(
                interface_env(
                    bp,
                    "detect",
                    buildpack_dir=_buildpack_dir(bp),
                    platform_dir=PLATFORM_DIR,
                    plan_path=plan_path,
                    target=self.target,
                    exec_env=self.request.exec_env,
                )
            )
            output = _Log(lambda text: None)  # kept for the error report, capped like the build log
            exit_code = self._exec_as_build_user(
                [f"{_buildpack_dir(bp)}/bin/detect", PLATFORM_DIR, plan_path],
                env,
                output,
                what=f"bin/detect of {bp.id} {bp.version}",
                exit_code=DETECT_ERROR,
            )
            return planfiles.detect_run(exit_code, output.text, self.plans_dir, plan_host.name, plan_path)

        result = resolve_order(order, registry, run_detect, target=self.target)
        for bp in result.group:
            self.log.line(f"{bp.id} {bp.version}")
        return result

    @property
    def _ids(self) -> str:
        return f"{self.owner.uid}:{self.owner.gid}"

    def _fresh_detect_plan(self, name: str, plan_path: str) -> None:
        """An empty plan file the build user may write, made so that a link planted there cannot
        redirect it (see `planfiles`)."""
        if shares_host_ids():
            planfiles.write_plan(self.plans_dir, name, "", owner=(self.owner.uid, self.owner.gid))
        else:
            planfiles.write_plan(self.plans_dir, name, "")
            self._root_exec(["chown", "-h", self._ids, plan_path])

    # -- restore ----------------------------------------------------------------------------------

    def _restore(self, group: list[Buildpack], cache_index: CacheIndex) -> dict[tuple[str, str], str]:
        """Bring back layer metadata (and cached contents) per the lifecycle's table.

        Returns {(buildpack id, layer): fingerprint} for layers restored with contents, so export
        can tell an untouched layer from a modified one without re-tarring it.
        """
        previous_layers = self.previous_layers
        restored: dict[tuple[str, str], str] = {}
        for bp in group:
            bp_dir = self.layers_root / bp.escaped_id
            safefs.ensure_dir(self.layers_root, bp.escaped_id)  # detect may have left a link there
            names: dict[str, dict[str, Any]] = {}
            for name, record in previous_layers.get(bp.id, {}).items():
                # launch-only layers: build=true layers are always recreated, so the lifecycle skips them
                if record.get("launch") and not record.get("cache") and not record.get("build"):
                    names[name] = record.get("data") or {}
                    self.log.line(f'Restoring metadata for "{bp.id}:{name}" from app image')
            for name, cached in cache_index.buildpacks.get(bp.id, {}).items():
                if cached.launch:
                    prev = previous_layers.get(bp.id, {}).get(name)
                    if prev is None or prev.get("sha") != cached.sha:
                        self.log.line(f'Skipping cached "{bp.id}:{name}": it does not match the app image\'s layer')
                        continue
                tar = self.cache.verified_tar(cached.sha)
                if tar is None:
                    self.log.line(f'Skipping cached "{bp.id}:{name}": cache entry missing or corrupt (digest mismatch)')
                    continue
                # extracted where buildpacks cannot reach (not mounted), then renamed into place
                # beneath the layers root: nothing is written through a path a buildpack controls
                staging = self.work / "restore" / uuid.uuid4().hex[:12]
                try:
                    extract_layer_tar(tar, f"layers/{bp.escaped_id}/{name}", staging)
                    rel = f"{bp.escaped_id}/{name}"
                    safefs.move_into(staging, self.layers_root, rel, shown=f"layer {bp.id}:{name}")
                except OSError as exc:
                    safefs.remove_tree(staging)
                    self.log.line(f'Skipping cached "{bp.id}:{name}": {exc}')
                    continue
                names[name] = cached.data
                restored[(bp.id, name)] = fingerprint(self.layers_root, f"{bp.escaped_id}/{name}")
                self.log.line(f'Restoring data for "{bp.id}:{name}" from cache')
            for name, metadata in names.items():
                write_layer_metadata(bp_dir, name, metadata)
        self._give_to_build_user(self.layers_root)
        return restored

    # -- build ------------------------------------------------------------------------------------

    def _build(
        self, detected: DetectResult, base_env: dict[str, str]
    ) -> tuple[list[tuple[Buildpack, list[Layer], LaunchConfig]], dict[str, dict[str, str]]]:
        platform_env = cnb_env.read_platform_env(self.platform_dir / "env")
        earlier: list[list[cnb_env.LayerDir]] = []
        plan_entries = list(detected.entries)
        built: list[tuple[Buildpack, list[Layer], LaunchConfig]] = []
        envs: dict[str, dict[str, str]] = {}
        for bp in detected.group:
            env = cnb_env.build_env(
                base_env, platform_env, earlier, clear_env=bp.clear_env, order=self.request.env_order
            )
            plan_host = self.plans_dir / f"build-{bp.escaped_id}.toml"
            bp_plan = buildpack_plan_from(plan_entries, bp)
            planfiles.write_plan(self.plans_dir, plan_host.name, dumps_toml(bp_plan))
            bp_layers = f"{LAYERS_DIR}/{bp.escaped_id}"
            env.update(
                interface_env(
                    bp,
                    "build",
                    buildpack_dir=_buildpack_dir(bp),
                    platform_dir=PLATFORM_DIR,
                    plan_path=f"{PLANS_DIR}/{plan_host.name}",
                    layers_dir=bp_layers,
                    target=self.target,
                    exec_env=self.request.exec_env,
                )
            )
            envs[bp.id] = dict(env)
            command = [f"{_buildpack_dir(bp)}/bin/build", bp_layers, PLATFORM_DIR, f"{PLANS_DIR}/{plan_host.name}"]
            self.log.line(f"-----> {bp.id} {bp.version}")
            exit_code = self._exec_as_build_user(
                command, env, self.log, what=f"bin/build of {bp.id} {bp.version}", exit_code=BUILD_FAILED
            )
            if exit_code != 0:
                raise PlatformError(
                    f"buildpack {bp.id} {bp.version} failed: bin/build exited with {exit_code}",
                    "read the buildpack's output above for the cause",
                    BUILD_FAILED,
                )
            bp_dir = self.layers_root / bp.escaped_id
            _check_layer_names(bp_dir, bp)
            layers = read_layers(bp_dir, bp.id, bp.api, rename_ignored=True)
            launch = read_launch_toml(bp_dir / "launch.toml", bp.api, bp.id)
            for warning in launch.warnings:
                self.log.line(warning)
            unmet = set(read_build_toml(bp_dir / "build.toml", bp_plan["entries"]))
            met = [entry["name"] for entry in bp_plan["entries"] if entry["name"] not in unmet]
            plan_entries = plan_after_build(plan_entries, met)
            built.append((bp, layers, launch))
            earlier.append(
                [
                    cnb_env.LayerDir(layer.path, f"{bp_layers}/{layer.name}", bp.id)
                    for layer in layers
                    if layer.types.build and layer.has_dir
                ]
            )
        return built, envs

    # -- export and cache -------------------------------------------------------------------------

    def _export(
        self,
        group: list[Buildpack],
        built: list[tuple[Buildpack, list[Layer], LaunchConfig]],
        run_image: BaseImage,
        restored: dict[tuple[str, str], str],
        cache_index: CacheIndex,
    ) -> tuple[ExportResult, list[LayerReport]]:
        previous = self.previous
        new_layers: list[NewLayer] = []
        reports: list[LayerReport] = []
        lifecycle_bps: list[dict[str, Any]] = []
        cache_entries: dict[str, dict[str, tuple[CachedLayer, Path]]] = {}
        processes: list[Process] = []
        for bp, layers, launch in built:
            processes = merge_processes(processes, launch.processes)
            bp_meta: dict[str, Any] = {"key": bp.id, "version": bp.version, "layers": {}}
            for layer in layers:
                report = LayerReport(bp.id, layer.name, _types_dict(layer), layer.metadata_table)
                tar = self._layer_tar(bp, layer, restored, cache_index, report)
                if layer.types.launch:
                    diff_id = tar.diff_id if tar else self._reused_diff_id(bp, layer, report)
                    report.diff_id = diff_id
                    new_layers.append(NewLayer(diff_id, tar.path if tar else None, f"layer {bp.id}:{layer.name}"))
                    bp_meta["layers"][layer.name] = {"sha": diff_id, "data": layer.metadata, **_types_dict(layer)}
                if layer.types.cache and tar is not None:
                    record = CachedLayer(tar.diff_id, layer.metadata, layer.types.build, layer.types.launch, True)
                    cache_entries.setdefault(bp.id, {})[layer.name] = (record, tar.path)
                    report.diff_id = report.diff_id or tar.diff_id
                    report.action = report.action or "cached only"
                reports.append(report)
            lifecycle_bps.append(bp_meta)

        app_tar = write_layer_tar(self.tars_dir / "app.tar", [(self.workspace, APP_DIR.lstrip("/"))], self.owner)
        launcher_tar = write_layer_tar(
            self.tars_dir / "launcher.tar",
            [],
            Owner(0, 0),
            parents=["cnb", "cnb/lifecycle"],
            extra_files={"cnb/lifecycle/launcher": (cnb_launcher.launcher_script(), 0o755)},
        )
        default_type = default_process_type(processes)
        config_tar = self._config_layer(group, processes, default_type)
        new_layers += [
            NewLayer(app_tar.diff_id, app_tar.path, "application"),
            NewLayer(launcher_tar.diff_id, launcher_tar.path, "launcher"),
            NewLayer(config_tar.diff_id, config_tar.path, "process types and launch config"),
        ]
        lifecycle_metadata = {
            "app": [{"sha": app_tar.diff_id}],
            "config": {"sha": config_tar.diff_id},
            "launcher": {"sha": launcher_tar.diff_id},
            "buildpacks": lifecycle_bps,
            "runImage": {
                "topLayer": run_image.diff_ids[-1] if run_image.diff_ids else "",
                "reference": run_image.image_id,
                "image": run_image.reference,
            },
        }
        image_labels = {
            **labels("app", session=not self.request.keep_image, session_id=self.request.session_id),
            LIFECYCLE_METADATA: json.dumps(lifecycle_metadata, sort_keys=True),
            BUILD_METADATA: json.dumps(_build_metadata(group, processes, default_type), sort_keys=True),
            PROJECT_METADATA: json.dumps({}),
        }
        config = image_config(
            run_image,
            new_layers,
            env=_image_env(run_image),
            entrypoint=[f"/cnb/process/{default_type}"] if default_type else [cnb_launcher.LAUNCHER_PATH_IN_IMAGE],
            labels=image_labels,
            working_dir=APP_DIR,
            user=_image_user(run_image),
        )
        known = set(chain_ids(previous.diff_ids)) if previous else set()
        exported = export_image(
            self.request.image, run_image, new_layers, config, known, previous.reference if previous else None
        )
        self.log.line(
            f"Exported {self.request.image} ({exported.image_id[:19]}): sent {len(exported.sent_layers)} layers"
            f" ({exported.sent_bytes / 1e6:.1f} MB), {len(exported.skipped_layers)} already in the engine"
        )
        if previous is not None and previous.image_id != exported.image_id:
            _remove_if_unused(previous.image_id)
        with _Timed(self.timings, "cache"):
            self.cache.save(cache_entries, {bp.id: bp.escaped_id for bp in group})
        return exported, reports

    def _layer_tar(
        self,
        bp: Buildpack,
        layer: Layer,
        restored: dict[tuple[str, str], str],
        cache_index: CacheIndex,
        report: LayerReport,
    ) -> LayerTar | None:
        """The layer's tar: the cached one if the layer came back from cache untouched, else a new one."""
        if not layer.has_dir or not (layer.types.launch or layer.types.cache):
            return None
        key = (bp.id, layer.name)
        cached = cache_index.layer(bp.id, layer.name)
        rel = f"{bp.escaped_id}/{layer.name}"
        if key in restored and cached is not None and fingerprint(self.layers_root, rel) == restored[key]:
            path = self.cache.blob_path(cached.sha)
            report.action = "unchanged"
            return LayerTar(path, cached.sha, path.stat().st_size)
        report.action = "exported" if layer.types.launch else "cached only"
        shown = f"layer {bp.id}:{layer.name} ({LAYERS_DIR}/{rel})"
        return write_layer_tar(
            self.tars_dir / f"layer-{uuid.uuid4().hex[:16]}.tar",  # not named after the layer: any name length works
            [(TreeSource(self.layers_root, rel, shown), f"layers/{bp.escaped_id}/{layer.name}")],
            self.owner,
            parents=["layers", f"layers/{bp.escaped_id}"],
        )

    def _reused_diff_id(self, bp: Buildpack, layer: Layer, report: LayerReport) -> str:
        """A launch layer with no directory: the buildpack asks to keep the previous image's layer."""
        record = self.previous_layers.get(bp.id, {}).get(layer.name)
        if not record or not record.get("sha"):
            raise PlatformError(
                f"layer {bp.id}:{layer.name} is launch=true but has no directory, and the previous image has no"
                " such layer to reuse",
                "the buildpack must create the layer directory, or only reuse layers that exist in the previous image",
                62,
            )
        report.action = "reused"
        return record["sha"]

    def _config_layer(self, group: list[Buildpack], processes: list[Process], default_type: str | None) -> LayerTar:
        apis = {bp.id: bp.api for bp in group}
        specs = [
            cnb_launcher.ProcessSpec(
                buildpack_api=apis.get(p.buildpack_id, "0.10"),
                exec_env=list(p.exec_env),
                type=p.type,
                command=list(p.command),
                args=list(p.args),
                working_dir=p.working_dir,
                default=p.type == default_type,
                direct=p.direct,
            )
            for p in processes
        ]
        files = {
            f"cnb/lifecycle/{path}": (content, 0o644)
            for path, content in cnb_launcher.process_files(specs, default_type).items()
        }
        files["cnb/lifecycle/order"] = (cnb_launcher.order_file([bp.escaped_id for bp in group]), 0o644)
        links = {f"cnb/process/{p.type}": cnb_launcher.LAUNCHER_PATH_IN_IMAGE for p in processes}
        parents = sorted({"cnb", "cnb/process", "cnb/lifecycle", *(_parents(files))})
        return write_layer_tar(
            self.tars_dir / "config.tar", [], Owner(0, 0), parents=parents, extra_files=files, symlinks=links
        )


# ------------------------------------------------------------------------------------------------
# Helpers without state
# ------------------------------------------------------------------------------------------------


class _Timed:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> _Timed:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = round(time.monotonic() - self.start, 3)


def _chown_tree(root: Path, owner: Owner) -> None:
    """`chown -hR` without following links and at any depth (the layers dir is chowned after
    detect ran, when a link there could have redirected a path-based walk to host files)."""
    safefs.chown_tree(root, owner.uid, owner.gid)


_LIMIT_COUNTER_FILES = (  # cgroup v2, then v1 (each container sees its own cgroup there)
    "/sys/fs/cgroup/memory.events",
    "/sys/fs/cgroup/pids.events",
    "/sys/fs/cgroup/memory/memory.oom_control",
    "/sys/fs/cgroup/pids/pids.events",
)


def _check_layer_names(bp_dir: Path, bp: Buildpack) -> None:
    """Every `<layer>.toml` a buildpack left names a layer the host can store (spec.py's rule), checked
    from the directory listing alone, before anything opens a file or makes a path from the name."""
    try:  # the dir itself may be a link the buildpack planted: never list what it points to
        fd = os.open(bp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # missing, or not a plain directory: reading the layers refuses that clearly
        return
    try:
        names = sorted(entry.name for entry in os.scandir(fd))
    finally:
        os.close(fd)
    for file_name in names:
        if file_name.endswith(".toml") and file_name[: -len(".toml")] not in spec.RESERVED_LAYER_NAMES:
            spec.check_layer_name(file_name[: -len(".toml")], bp.id)


def _buildpack_dir(bp: Buildpack) -> str:
    return f"{BUILDPACKS_DIR}/{bp.escaped_id}/{bp.version}"


def _parents(files: dict[str, Any]) -> set[str]:
    parents: set[str] = set()
    for name in files:
        parts = name.split("/")[:-1]
        parents.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return parents


def _previous_image(reference: str) -> BaseImage | None:
    try:
        image = BaseImage.inspect(reference)
    except PlatformError:
        return None
    return image if LIFECYCLE_METADATA in image.labels else None


def _previous_layer_metadata(previous: BaseImage | None) -> dict[str, dict[str, Any]]:
    if previous is None:
        return {}
    try:
        metadata = json.loads(previous.labels[LIFECYCLE_METADATA])
    except (KeyError, json.JSONDecodeError):
        return {}
    return {bp["key"]: dict(bp.get("layers") or {}) for bp in metadata.get("buildpacks") or []}


def _types_dict(layer: Layer) -> dict[str, bool]:
    return {"build": layer.types.build, "launch": layer.types.launch, "cache": layer.types.cache}


def _build_metadata(group: list[Buildpack], processes: list[Process], default_type: str | None) -> dict[str, Any]:
    return {
        "buildpacks": [{"id": bp.id, "version": bp.version, "homepage": bp.homepage or ""} for bp in group],
        "launcher": {"version": f"bpconform-{__version__}", "source": {"git": {"repository": "buildpack-conformance"}}},
        "processes": [build_metadata_process(p) for p in processes],
        **({"buildpack-default-process-type": default_type} if default_type else {}),
    }


def _image_env(run_image: BaseImage) -> list[str]:
    env = dict(item.split("=", 1) for item in run_image.config.get("Env") or [])
    env["PATH"] = "/cnb/process:/cnb/lifecycle:" + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "CNB_LAYERS_DIR": LAYERS_DIR,
            "CNB_APP_DIR": APP_DIR,
            "CNB_PLATFORM_API": PLATFORM_API,
            "CNB_DEPRECATION_MODE": "quiet",
        }
    )
    return [f"{key}={value}" for key, value in sorted(env.items())]


def _image_user(run_image: BaseImage) -> str:
    if run_image.config.get("User"):
        return str(run_image.config["User"])
    env = dict(item.split("=", 1) for item in run_image.config.get("Env") or [])
    if "CNB_USER_ID" in env:
        return f"{env['CNB_USER_ID']}:{env.get('CNB_GROUP_ID', env['CNB_USER_ID'])}"
    return ""


def _remove_if_unused(image_id: str) -> None:
    """Drop the previous build of the same name once it has no tag left (its layers stay shared)."""
    try:
        image = ensure_engine().images.get(image_id)
        if not image.tags:
            ensure_engine().images.remove(image_id, noprune=False)
    except Exception:  # still used by a container or already gone: leave it to `bpconform clean`
        pass


__all__ = ["BuildRequest", "BuildResult", "LayerReport", "create"]
