"""Build: each buildpack of the group runs `bin/build` in turn, in the build container.

Each gets the environment the lifecycle computes (env.py: the allowed build image variables, the
build=true layers of earlier buildpacks, then the user's `<platform>/env` last), its own layers dir
and its slice of the build plan; afterwards the platform reads what it declared (`<layer>.toml`,
`launch.toml`, `build.toml`) without following links, and passes on the plan entries it left unmet.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import PlatformError
from conformance.platform import env as cnb_env
from conformance.platform import planfiles, safefs, spec
from conformance.platform import sbom as cnb_sbom
from conformance.platform.build_container import BuildContainer
from conformance.platform.buildpack import (
    DEFAULT_EXEC_ENV,
    Buildpack,
    RunTarget,
    bin_problem,
    buildpack_dir,
    interface_env,
)
from conformance.platform.detect import DetectResult, buildpack_plan_from, plan_after_build
from conformance.platform.layers import (
    LaunchConfig,
    Layer,
    LayerTypes,
    Slice,
    read_build_bom,
    read_build_toml,
    read_launch_toml,
    read_layers,
)
from conformance.platform.log import BuildLog
from conformance.platform.workdir import WorkDirs
from conformance.tomlcompat import dumps_toml


@dataclass(frozen=True)
class BuiltBuildpack:
    """What one buildpack left after its build: its layers (sorted by name) and its launch.toml."""

    buildpack: Buildpack
    layers: list[Layer]
    launch: LaunchConfig
    sbom_files: tuple[cnb_sbom.SbomFile, ...] = ()
    build_bom: tuple[dict[str, object], ...] = ()  # legacy [[bom]] of build.toml


@dataclass
class BuildOutcome:
    buildpacks: list[BuiltBuildpack] = field(default_factory=list)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)  # buildpack id -> the env its bin/build got
    # The lifecycle's `<layers>/sbom` (launch/, build/, cache/), staged where no buildpack can reach
    # it (see sbom.py); None when the build was not staged (unit tests that build outcomes by hand).
    sbom_dir: Path | None = None

    @property
    def slices(self) -> list[Slice]:
        """Every buildpack's `[[slices]]` in group order (phase/builder.go:98)."""
        return [s for built in self.buildpacks for s in built.launch.slices]


def stage_sboms(outcome: BuildOutcome, dirs: WorkDirs) -> Path:
    """Copy the SBOM files and the legacy BOMs of every buildpack where export finds them
    (phase/builder.go:109-125: after all buildpacks ran)."""
    stage = dirs.scratch("sbom")
    stage.mkdir(parents=True)
    launch_bom: list[dict[str, object]] = []
    build_bom: list[dict[str, object]] = []
    for built in outcome.buildpacks:
        cnb_sbom.stage_sbom_files(list(built.sbom_files), dirs.layers, stage)
        launch_bom += cnb_sbom.legacy_bom(built.buildpack, built.launch.bom)
        build_bom += cnb_sbom.legacy_bom(built.buildpack, list(built.build_bom))  # type: ignore[arg-type]
    cnb_sbom.write_legacy(stage, launch_bom, build_bom)
    outcome.sbom_dir = stage
    return stage


@contextlib.contextmanager
def build_errors(dirs: WorkDirs) -> Iterator[None]:
    """The build phase's errors as the lifecycle reports them.

    Exit code: the lifecycle's builder gives 51 only to a failed `bin/build` (`buildpack.ErrTypeBuildpack`,
    buildpack/build.go:162-164) and 52 to every other error of the phase (cmd/lifecycle/builder.go:99-106,
    `unwrapBuildFail`): a `<layer>.toml`, `launch.toml` or `build.toml` that does not decode or breaks a
    rule (buildpack/build.go:168-182, 236-341: two default processes, an `[[unmet]]` without a name or not
    in the plan). So an error raised here without a more specific code becomes 52; one with its own code
    (51, or the exporter's 62 for a bad process type) keeps it.
    Paths: the lifecycle runs in the build container and names files as buildpacks see them, so host
    paths of the work dir in the message and hint become in-image paths (`WorkDirs.in_image_text`).
    """
    try:
        yield
    except PlatformError as exc:
        if exc.exit_code == spec.ExitCode.FAILED:
            exc.exit_code = spec.ExitCode.BUILD_ERROR
        exc.message = dirs.in_image_text(exc.message)
        exc.hint = dirs.in_image_text(exc.hint)
        exc.args = (exc.message,)
        raise


def build(
    detected: DetectResult,
    container: BuildContainer,
    dirs: WorkDirs,
    base_env: dict[str, str],
    target: RunTarget,
    log: BuildLog,
    *,
    env_order: str = "sorted",
    exec_env: str = DEFAULT_EXEC_ENV,
) -> BuildOutcome:
    """Run the group's `bin/build`s in order; every failure is a PlatformError with the lifecycle's code."""
    with build_errors(dirs):
        platform_env = cnb_env.read_platform_env(dirs.platform / "env")
        earlier: list[list[cnb_env.LayerDir]] = []
        plan_entries = list(detected.entries)
        outcome = BuildOutcome()
        for bp in detected.group:
            env = cnb_env.build_env(base_env, platform_env, earlier, clear_env=bp.clear_env, order=env_order)
            plan_name = f"build-{bp.escaped_id}.toml"
            plan_path = f"{spec.PLANS_DIR}/{plan_name}"
            bp_plan = buildpack_plan_from(plan_entries, bp)
            planfiles.write_plan(dirs.plans, plan_name, dumps_toml(bp_plan))
            bp_layers = f"{spec.LAYERS_DIR}/{bp.escaped_id}"
            env.update(
                interface_env(
                    bp,
                    "build",
                    plan_path=plan_path,
                    layers_dir=bp_layers,
                    target=target,
                    exec_env=exec_env,
                )
            )
            outcome.envs[bp.id] = dict(env)
            log.line(f"-----> {bp.id} {bp.version}")
            exit_code = container.run_as_build_user(
                [f"{buildpack_dir(bp)}/bin/build", bp_layers, spec.PLATFORM_DIR, plan_path],
                env,
                log,
                what=f"bin/build of {bp.id} {bp.version}",
                exit_code=spec.ExitCode.FAILED_BUILD,
            )
            if exit_code != 0:
                raise _build_failed(bp, exit_code)
            built = read_buildpack_output(bp, dirs.layers / bp.escaped_id, dirs.layers)
            for warning in built.launch.warnings:
                log.line(warning)
            unmet = set(read_build_toml(dirs.layers / bp.escaped_id / "build.toml", bp_plan["entries"]))
            plan_entries = plan_after_build(
                plan_entries, [e["name"] for e in bp_plan["entries"] if e["name"] not in unmet]
            )
            outcome.buildpacks.append(built)
            earlier.append(
                [
                    cnb_env.LayerDir(layer.path, f"{bp_layers}/{layer.name}", bp.id)
                    for layer in built.layers
                    if layer.types.build and layer.has_dir
                ]
            )
        stage_sboms(outcome, dirs)
        return outcome


def _build_failed(bp: Buildpack, exit_code: int) -> PlatformError:
    """51 either way, as in the lifecycle, where a `bin/build` that cannot be started is an exec error
    of the same `ErrTypeBuildpack` as one that exits non-zero (buildpack/build.go:162-164)."""
    problem = bin_problem(bp, "build")
    if problem is not None:
        return PlatformError(
            f"buildpack {bp.id} {bp.version} failed: bin/build could not be run: {problem}",
            f"a component buildpack needs an executable bin/build (run: chmod +x {bp.path / 'bin' / 'build'}),"
            " or declares [[order]] instead",
            spec.ExitCode.FAILED_BUILD,
        )
    return PlatformError(
        f"buildpack {bp.id} {bp.version} failed: bin/build exited with {exit_code}",
        "read the buildpack's output above for the cause",
        spec.ExitCode.FAILED_BUILD,
    )


def read_buildpack_output(bp: Buildpack, bp_dir: Path, layers_root: Path | None = None) -> BuiltBuildpack:
    """What one buildpack declared: layers, launch.toml, legacy BOMs and SBOM files (validated
    against its `sbom-formats`, exit 52 as in buildpack/bomfile.go `validateMediaTypes`)."""
    _check_layer_names(bp_dir, bp)
    layers = read_layers(bp_dir, bp.id, bp.api, rename_ignored=True)
    launch = read_launch_toml(bp_dir / "launch.toml", bp.api, bp.id)
    build_bom = read_build_bom(bp_dir / "build.toml")
    root = Path(layers_root) if layers_root is not None else Path(bp_dir).parent
    listing = safefs.list_dir(root, Path(bp_dir).name) or []
    by_name = {layer.name: layer.types for layer in layers}
    tomls = {
        name[: -len(".toml")]: by_name.get(name[: -len(".toml")], LayerTypes())
        for name, mode in listing
        if name.endswith(".toml") and not stat.S_ISDIR(mode)
    }
    sbom_files = cnb_sbom.find_sbom_files(bp, listing, tomls)
    cnb_sbom.check_media_types(bp, sbom_files)
    return BuiltBuildpack(bp, layers, launch, tuple(sbom_files), tuple(build_bom))


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
