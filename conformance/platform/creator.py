"""The creator: every lifecycle phase in one call, like the lifecycle's `creator` binary.

app dir + buildpacks + build/run images -> analyze -> detect -> restore -> build -> export -> image.

Buildpacks run in one long-lived container of the build image, as its non-root user, through
`docker exec` (build_container.py); the app copy, layers and platform dirs are host directories
bind-mounted into it (workdir.py), so the host side reads layer TOML and writes tars directly. Each
phase is its own module with named records between them; this one only orchestrates. The platform
takes plain inputs: images, the build user, the target, `<platform>/env`, extra mounts, network.
The user's app directory is only ever read.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.engine import ContainerLimits, Mount, check_timeout, labels
from conformance.errors import PlatformError
from conformance.paths import no_space_error
from conformance.platform import spec
from conformance.platform.analyze import analyze
from conformance.platform.archive import Owner
from conformance.platform.build import build
from conformance.platform.build_container import build_container
from conformance.platform.buildpack import DEFAULT_EXEC_ENV, Buildpack, RunTarget, buildpack_dir, load_buildpack
from conformance.platform.cache import BuildCache, CacheIndex
from conformance.platform.detect import detect
from conformance.platform.export import ExportInputs, LayerReport, assemble, export, save_cache
from conformance.platform.log import BuildLog, Output
from conformance.platform.oci import ExportResult
from conformance.platform.restore import plan_restore, restore
from conformance.platform.workdir import WorkDirs


@dataclass
class BuildRequest:
    """Everything one build needs, as plain inputs (the platform knows nothing of stacks or runtimes)."""

    image: str
    app_dir: Path
    buildpacks: list[Path]
    build_image: str
    run_image: str
    target: RunTarget  # what CNB_TARGET_* say and buildpack targets are matched against
    build_user: Owner = field(default_factory=lambda: Owner(1000, 1000))
    platform_env: dict[str, str] = field(default_factory=dict)  # the files of <platform>/env
    app_filter: Callable[[str], bool] | None = None  # which app paths reach /workspace (project.toml include/exclude)
    mounts: list[Mount] = field(default_factory=list)  # extra mounts into the build container
    network: bool = True
    exec_env: str = DEFAULT_EXEC_ENV  # CNB_EXEC_ENV for Buildpack API >= 0.12 buildpacks (detect and build)
    env_order: str = "sorted"  # or "lifecycle-1393": emulate the pre-0.20.1 build env ordering bug
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
class BuildResult:
    image: str
    image_id: str
    output: str
    group: list[tuple[str, str]]
    layers: list[LayerReport]
    export: ExportResult
    timings: dict[str, float]
    build_env: dict[str, dict[str, str]]  # buildpack id -> the environment its bin/build received


def create(request: BuildRequest) -> BuildResult:
    """Build `request.app_dir` into the image `request.image`; raises PlatformError on failure."""
    log = BuildLog(request.on_output)
    dirs = WorkDirs.fresh()
    cache = request.cache or BuildCache.for_image(request.image)
    interrupted = False
    try:
        with cache.locked(log.line):  # one build per cache (image name) at a time: no crash, no mixing
            cache.check(clear=request.clear_cache)
            return _run(request, dirs, cache, log)
    except PlatformError as exc:
        exc.build_output = log.text
        raise
    except OSError as exc:
        failure = no_space_error(exc, dirs.root, cache.root)
        if failure is None:
            raise
        failure.build_output = log.text
        raise failure from None
    except BaseException:  # Ctrl-C, SIGTERM (SystemExit): the process ends, delete the work dir now
        interrupted = True
        raise
    finally:
        dirs.remove(now=interrupted)


def _run(request: BuildRequest, dirs: WorkDirs, cache: BuildCache, log: BuildLog) -> BuildResult:
    timings: dict[str, float] = {}
    if request.timeout is not None:
        check_timeout(request.timeout)
    analysis = analyze(request.image, request.run_image, request.build_image)
    buildpacks = [load_buildpack(Path(path).resolve()) for path in request.buildpacks]
    if not buildpacks:
        raise PlatformError("no buildpacks given", "pass at least one buildpack directory", spec.ExitCode.BUILD_ERROR)
    dirs.prepare(Path(request.app_dir), request.platform_env, request.app_filter)
    with build_container(
        request.build_image,
        dirs,
        request.build_user,
        mounts=_mounts(dirs, buildpacks, request.mounts),
        network=request.network,
        limits=request.limits or ContainerLimits.from_env(),
        timeout=request.timeout,
    ) as container:
        container.own_work_dirs()
        base_env = container.base_env()
        with _phase("detect", log, timings):
            detected = detect(buildpacks, container, dirs, base_env, request.target, log, exec_env=request.exec_env)
        cache_index = CacheIndex() if request.clear_cache else cache.load_index()
        for note in cache_index.notes:
            log.line(note)
        with _phase("restore", log, timings):
            restore_plan = plan_restore(detected.group, analysis, cache_index, skip_layers=request.clear_cache)
            restored = restore(restore_plan, detected.group, dirs, cache, log)
            container.give_to_build_user(dirs.layers)
        with _phase("build", log, timings):
            outcome = build(
                detected,
                container,
                dirs,
                base_env,
                request.target,
                log,
                env_order=request.env_order,
                exec_env=request.exec_env,
            )
    if request.inspect_layers is not None:
        request.inspect_layers(dirs.layers)
    with _phase("export", log, timings):
        harness_labels = labels("app", session=not request.keep_image, session_id=request.session_id)
        plan = assemble(
            outcome, analysis, restored, cache, cache_index, dirs, ExportInputs(request.build_user, harness_labels)
        )
        exported = export(request.image, plan, analysis, log)
    with _Timed(timings, "cache"):
        save_cache(plan, cache)
    return BuildResult(
        image=request.image,
        image_id=exported.image_id,
        output=log.text,
        group=[(bp.id, bp.version) for bp in detected.group],
        layers=plan.reports,
        export=exported,
        timings=timings,
        build_env=outcome.envs,
    )


def _mounts(dirs: WorkDirs, buildpacks: list[Buildpack], extra: list[Mount]) -> list[Mount]:
    mounts = dirs.mounts()
    for bp in buildpacks:  # id and version were validated on load; this stops a bug mounting over /usr
        target = buildpack_dir(bp)
        if posixpath.normpath(target) != target or posixpath.dirname(posixpath.dirname(target)) != spec.BUILDPACKS_DIR:
            raise PlatformError(
                f"refusing to mount buildpack {bp.path} at {target!r}: not a directory of {spec.BUILDPACKS_DIR}",
                "the buildpack's id or version makes an unsafe path; fix buildpack.toml",
                spec.ExitCode.BUILD_ERROR,
            )
        mounts.append(Mount(bp.path, target, read_only=True))
    return mounts + list(extra)


def _phase(name: str, log: BuildLog, timings: dict[str, float]) -> _Timed:
    log.line(f"===> {name.upper()}")
    return _Timed(timings, name)


class _Timed:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> _Timed:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = round(time.monotonic() - self.start, 3)


__all__ = ["BuildRequest", "BuildResult", "LayerReport", "create"]
