"""`bpconform`: set up the machine, build stacks and runtimes, build apps, run the suite, clean up.

Every command ends either in success or in a two-line message (what went wrong, what to do);
a traceback only appears with `BPCONFORM_DEBUG=1`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.errors import ConformanceError, UsageError, did_you_mean, usage_errors

DEFAULT_STACK = "bookworm"


def _progress(text: str) -> None:
    print(text if text.endswith("\n") else text + "\n", end="", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------


def cmd_setup(args: argparse.Namespace) -> int:
    """Everything a run needs, each step skipped when its cached result is current."""
    from conformance import access, engine, runtimes, stacks

    started = time.monotonic()
    with usage_errors():
        for name in args.stack:
            stacks.check_stack_name(name)
        for version in args.python or []:
            runtimes.check_runtime_request(version)
    engine.ensure_engine()
    for name in args.stack:
        stacks.ensure_stack(name, on_output=_progress)
        for version in args.python or runtimes.DEFAULT_VERSIONS:
            runtimes.ensure_runtime(version, name, on_output=_progress)
    if not args.no_wheelhouse:
        access.ensure_sample_wheelhouse(python_versions=args.python, on_output=_progress)
    _progress(f"setup complete in {time.monotonic() - started:.1f}s")
    return 0


def cmd_stack_build(args: argparse.Namespace) -> int:
    from conformance import stacks

    with usage_errors():
        stacks.check_stack_name(args.name)
    stack = stacks.ensure_stack(args.name, force=args.force, on_output=_progress)
    print(f"{stack.build_image}\n{stack.run_image}")
    return 0


def cmd_runtime_build(args: argparse.Namespace) -> int:
    from conformance import runtimes, stacks

    with usage_errors():
        stacks.check_stack_name(args.stack)
        runtimes.check_runtime_request(args.version, args.source, args.prebuilt)
    stacks.ensure_stack(args.stack, on_output=_progress)
    archive = runtimes.ensure_runtime(
        args.version,
        args.stack,
        source=args.source,
        prebuilt=args.prebuilt,
        force=args.force,
        allow_pip=args.allow_pip,
        on_output=_progress,
    )
    print(f"{archive.path}  sha256:{archive.sha256}  {archive.size / 1e6:.1f} MB")
    return 0


@dataclass(frozen=True)
class BuildInputs:
    """What `bpconform build` was asked to do, checked before anything slow (the engine, a stack)."""

    app: Path
    project: Any  # conformance.project.Project
    buildpacks: list[Path]
    user_env: dict[str, str]
    timeout: float
    limits: Any  # engine.ContainerLimits
    package_access: Any  # access.PackageAccess | None; None also while --offline's wheelhouse is not made yet


def check_build_inputs(args: argparse.Namespace) -> BuildInputs:
    """Every check of the command line and the files it names, without the engine: a problem here
    is a usage error (exit 2), never mistaken for a failed build (the lifecycle's codes)."""
    from conformance import engine, stacks
    from conformance.base_images import check_image_pair
    from conformance.platform import spec
    from conformance.project import read_project
    from conformance.run import read_identity

    with usage_errors():
        _refuse_old_spelling(args)
        spec.check_image_reference(args.image, "IMAGE")  # before anything slow, and before any cache dir
        timeout = engine.check_timeout(args.timeout, "--timeout")
        limits = _limits(args)
        app = Path(args.path)
        if not app.is_dir():
            raise UsageError(f"--path {app}: the app directory does not exist", "pass the directory of your app")
        project = read_project(app, args.descriptor)
        buildpacks = _buildpacks(args, project)
        for buildpack in buildpacks:  # as run and profile init do; what the platform finds later is the build's
            read_identity(buildpack)
        user_env = project.build_env(_user_env(args))  # pack: project.toml's build env, the user's values win
        check_image_pair(args.build_image, args.run_image)
        if args.build_image is None:
            stacks.check_stack_name(args.stack)
        package_access = None if _needs_sample_wheelhouse(args) else _package_access(args, app)
    return BuildInputs(app, project, buildpacks, user_env, timeout, limits, package_access)


def cmd_build(args: argparse.Namespace) -> int:
    """`bpconform build IMAGE --path APP -b BP -e NAME[=VALUE]`: pack's shape and meaning (`bpconform docs
    build`). Exit status: `build_exit_status` (usage errors 2; a failed build the lifecycle's code)."""
    from conformance import runtimes
    from conformance.base_images import stack_for
    from conformance.build_caches import tracked_cache
    from conformance.errors import EngineError
    from conformance.platform.creator import create
    from conformance.platform.oci import check_build_target
    from conformance.platform_inputs import stack_build_request

    inputs = check_build_inputs(args)
    for warning in inputs.project.warnings:
        _progress(f"warning: {warning}")
    if args.build_image:  # images that are missing or break the base-image contract: the command line's, as in run
        with usage_errors(except_for=(EngineError,)):
            stack = stack_for(args.stack, args.build_image, args.run_image, on_output=_progress)
    else:
        stack = stack_for(args.stack, on_output=_progress)  # made if missing: a failure there is the machine's
    with usage_errors(except_for=(EngineError,)):  # IMAGE names a stack image
        check_build_target(args.image, stack.run_image, stack.build_image)
    package_access = _package_access(args, inputs.app) if _needs_sample_wheelhouse(args) else inputs.package_access
    cache = tracked_cache(args.image)
    result = create(
        stack_build_request(
            image=args.image,
            app_dir=inputs.app,
            buildpacks=inputs.buildpacks,
            stack=stack,
            access=package_access,
            runtimes_dir=runtimes.runtimes_dir(),
            user_env=inputs.user_env,
            app_filter=inputs.project.copy_filter,
            env_order="lifecycle-1393" if args.emulate_lifecycle_1393 else "sorted",
            clear_cache=args.clear_cache,
            timeout=inputs.timeout,
            keep_image=True,
            cache=cache,
            limits=inputs.limits,
        )
    )
    tracked_cache(args.image)  # the save replaced the cache dir: record it again, now that the image exists
    print(f"{result.image} {result.image_id}")
    for layer in result.layers:
        flags = ",".join(name for name, on in layer.types.items() if on) or "-"
        print(f"  {layer.buildpack_id}:{layer.name:<12} {flags:<20} {layer.action:<12} {layer.diff_id or ''}")
    print("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    """`bpconform docs [TOPIC] [--path]`: the guides ship with the package, so every message can point at
    one by a command that works from an installed wheel (a `docs/...` path exists only in a checkout)."""
    from conformance.data import DOC_TOPICS, doc_path

    if args.topic is None:
        for topic in DOC_TOPICS:
            print(f"{topic:<14} {doc_path(topic)}")
        return 0
    if args.topic not in DOC_TOPICS:
        raise UsageError(
            f"no guide {args.topic!r}{did_you_mean(args.topic, DOC_TOPICS, cutoff=0.5)}",
            f"use one of: {', '.join(DOC_TOPICS)} (`bpconform docs` lists them with their files)",
        )
    path = doc_path(args.topic)
    if not path.is_file():  # a broken install: say so instead of a traceback
        raise ConformanceError(f"the guide {path} is missing", "reinstall the buildpack-conformance wheel")
    if args.path:
        print(path)
    else:
        print(path.read_text(), end="")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    import shutil

    from conformance import build_caches, engine
    from conformance.paths import cache_root, memory_base

    report = engine.cleanup(everything=args.all)
    print(f"bpconform clean: {report.summary()}")
    removed = _clean_build_caches(everything=args.all)
    if removed:
        print(f"bpconform clean: removed {len(removed)} build caches of images that no longer exist")
        for cache in removed:
            print(f"  {cache.path} ({cache.image or 'untracked'})")
    locks = build_caches.remove_stale_locks()
    if locks:
        print(f"bpconform clean: removed {len(locks)} build-cache lock files no build holds")
    live = engine.live_sessions()
    if memory_base().is_dir() and (args.all or not live):  # work dirs a killed build left in memory
        shutil.rmtree(memory_base(), ignore_errors=True)
        print(f"bpconform clean: removed the in-memory work directory {memory_base()}")
    elif memory_base().is_dir():
        print(f"bpconform clean: kept {memory_base()}: {len(live)} runs are still going (--all removes it anyway)")
    if args.cache:
        root = cache_root()
        shutil.rmtree(root, ignore_errors=True)
        print(f"bpconform clean: removed the cache directory {root}")
    return 0


def _clean_build_caches(*, everything: bool):  # -> list[TrackedCache]
    """`bpconform build` caches whose image is gone (after the engine cleanup above removed the app
    images the CLI made), or every one with --all."""
    import docker.errors

    from conformance import build_caches, engine

    def exists(reference: str) -> bool:
        try:
            return engine.image_exists(reference)
        except docker.errors.DockerException:  # cannot tell: keep the cache
            return True

    def tags() -> set[str]:
        return {tag for image in engine.ensure_engine().images.list() for tag in image.tags}

    return build_caches.clean_caches(exists, tags, everything=everything)


def _limits(args: argparse.Namespace):  # -> engine.ContainerLimits
    """`--memory` / `--pids-limit`, falling back to BPCONFORM_BUILD_MEMORY / _PIDS and the defaults."""
    from conformance import engine

    limits = engine.ContainerLimits.from_env()
    return engine.ContainerLimits(
        memory=engine.parse_memory(args.memory) if args.memory else limits.memory,
        pids=engine.parse_pids(args.pids_limit) if args.pids_limit else limits.pids,
    )


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    from conformance import engine

    parser.add_argument(
        "--memory",
        metavar="SIZE",
        help=f"memory of each build container, no swap (default {engine.format_memory(engine.DEFAULT_BUILD_MEMORY)};"
        f" env {engine.MEMORY_ENV})",
    )
    parser.add_argument(
        "--pids-limit",
        metavar="N",
        help=f"processes in each build container (default {engine.DEFAULT_BUILD_PIDS}; env {engine.PIDS_ENV})",
    )


def _export_limits(args: argparse.Namespace) -> None:
    """`bpconform run --memory/--pids-limit`: the suite's builds read the limits from the environment
    (BPCONFORM_BUILD_MEMORY / _PIDS), in this process and in pytest subprocesses alike."""
    from conformance import engine

    if getattr(args, "memory", None) or getattr(args, "pids_limit", None):
        limits = _limits(args)
        os.environ[engine.MEMORY_ENV] = str(limits.memory)
        os.environ[engine.PIDS_ENV] = str(limits.pids)


# ------------------------------------------------------------------------------------------------
# Argument parsing
# ------------------------------------------------------------------------------------------------


def _refuse_old_spelling(args: argparse.Namespace) -> None:
    """The build command before issue 13 was `bpconform build APP --buildpack BP --image NAME`; now the
    image is the argument and the app is `--path`, as in `pack build`. An old command line is
    refused with the new one spelled out (silently reading APP as an image name would be worse)."""
    if args.old_image is None:
        if args.image is None:
            raise ConformanceError(
                "bpconform build needs the name of the image to create",
                "write: bpconform build IMAGE --path APP -b BUILDPACK (like `pack build`)",
            )
        return
    rest = f" --path {args.image}" if args.image else ""
    raise ConformanceError(
        "--image is gone: `bpconform build` now takes the image name as its argument and the app as --path,"
        " like `pack build`",
        f"write: bpconform build {args.old_image}{rest} -b BUILDPACK ... (see `bpconform build --help`)",
    )


def _buildpacks(args: argparse.Namespace, project) -> list[Path]:  # project: conformance.project.Project
    """`-b` values in order (each may be a comma-separated list, as pack's); without any, the
    project.toml group, as pack does; `reference` names the shipped reference buildpack."""
    from conformance.run import resolve_buildpacks

    given = [Path(part) for value in args.buildpack for part in value.split(",") if part]
    if given:
        return resolve_buildpacks(given)
    if project.buildpacks:
        return project.buildpack_dirs()
    raise ConformanceError(
        "no buildpacks to build with",
        "pass --buildpack/-b DIR (repeat it, in order; `-b reference` is the reference buildpack), or list them"
        ' in the app\'s project.toml [[io.buildpacks.group]] with uri = "path/to/buildpack"',
    )


def _env_item(item: str, where: str) -> tuple[str, str]:
    """pack's `addEnvVar`: `NAME=VALUE`, or `NAME`, whose value is this process's (empty if unset)."""
    name, eq, value = item.partition("=")
    if not eq:
        value = os.environ.get(name, "")
    from conformance.platform import spec

    if not spec.ENV_NAME.fullmatch(name):
        raise ConformanceError(
            f"{where} {item!r}: {name!r} is not a variable name (it names a file in <platform>/env)",
            "write NAME=VALUE or NAME, the name made of letters, digits and underscores, not starting with a digit",
        )
    return name, value


def _user_env(args: argparse.Namespace) -> dict[str, str]:
    """`--env-file`s in order, then `--env`s, later values winning (pack's `parseEnv`)."""
    env: dict[str, str] = {}
    for env_file in args.env_file:
        try:
            text = Path(env_file).read_text()
        except OSError as exc:
            raise ConformanceError(
                f"--env-file {env_file}: {exc.strerror}", "pass a file with one NAME=VALUE or NAME per line"
            ) from None
        for line in text.split("\n"):
            if line.strip():
                name, value = _env_item(line.strip(), f"--env-file {env_file}: line")
                env[name] = value
    for item in args.env:
        name, value = _env_item(item, "--env")
        env[name] = value
    return env


def _needs_sample_wheelhouse(args: argparse.Namespace) -> bool:
    """`--offline` without `--wheelhouse`: the harness's wheelhouse is made (downloaded) first."""
    return bool(args.offline and args.wheelhouse is None)


def _package_access(args: argparse.Namespace, app: Path):  # -> PackageAccess | None
    """Only what the user asks for, like pack: by default no mounts and nothing in <platform>/env.

    `--offline` / `--wheelhouse DIR` mount a wheelhouse and add `PIP_NO_INDEX=1` and
    `PIP_FIND_LINKS=/bpconform/wheelhouse` to <platform>/env (network off); `--ca-bundle FILE` mounts
    a CA bundle and adds `PIP_CERT` and `SSL_CERT_FILE` naming it. Their own `--env` values win."""
    from conformance import access

    if args.online:
        _progress("warning: --online is deprecated: the network is on by default; it now means --ca-bundle <host's>")
    if args.wheelhouse is not None:
        return access.offline(args.wheelhouse)
    if args.offline:
        requirements = [app / "requirements.txt"] if (app / "requirements.txt").is_file() else []
        return access.offline(access.ensure_sample_wheelhouse(requirements, on_output=_progress))
    if args.ca_bundle is not None or args.online:
        return access.online(args.ca_bundle)
    return None


def build_exit_status() -> str:
    """`bpconform build`'s exit codes, from the one table of the lifecycle's (spec.ExitCode): a failed
    build passes its phase's code through, as the lifecycle (and so pack) does."""
    from conformance.errors import USAGE_EXIT
    from conformance.platform.spec import ExitCode

    failed = ", ".join(
        f"{code.value} {code.name.lower().replace('_', ' ').replace(' api', ' API')}"
        for code in ExitCode
        if code is not ExitCode.FAILED
    )
    return (
        f"Exit status: 0 the image was built; {USAGE_EXIT} usage error (the command line, or a file, buildpack,"
        f" stack or base image it names, is not usable: nothing was built); a failed build exits with the"
        f" lifecycle's code of its phase ({failed}); {ExitCode.FAILED.value} anything else (e.g. no Docker"
        " engine, a stack that could not be made); 130 interrupted."
    )


def _add_build_command(sub: argparse._SubParsersAction) -> None:
    from conformance import access

    build = sub.add_parser(
        "build",
        help="build an app into an image with the embedded CNB platform (pack build's shape)",
        description="Build the app at --path into IMAGE, like `pack build IMAGE --path APP -b BP -e NAME=VALUE`."
        " project.toml in the app (include/exclude, build env, buildpacks) is applied as pack applies it."
        " <platform>/env holds only what you pass (-e, --env-file, project.toml, and the variables --offline,"
        " --wheelhouse and --ca-bundle document). Guide: `bpconform docs build`.",
        epilog=build_exit_status(),
    )
    build.add_argument("image", metavar="IMAGE", nargs="?", help="name of the image to create")
    build.add_argument("--path", "-p", type=Path, default=Path("."), help="the app's directory (default: .)")
    build.add_argument(
        "--buildpack",
        "-b",
        action="append",
        default=[],
        metavar="BUILDPACK",
        help="buildpack directory (or `reference`); repeat in order, or give a comma-separated list"
        " (default: the group in project.toml)",
    )
    build.add_argument(
        "--env",
        "-e",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="build-time variable for <platform>/env; NAME alone takes its value from this environment;"
        " overrides --env-file and project.toml (repeatable)",
    )
    build.add_argument(
        "--env-file", action="append", default=[], metavar="FILE", help="one NAME=VALUE or NAME per line (repeatable)"
    )
    build.add_argument("--descriptor", "-d", type=Path, help="project descriptor (default: <path>/project.toml)")
    build.add_argument("--clear-cache", action="store_true", help="clear the image's build cache before building")
    build.add_argument("--stack", default=DEFAULT_STACK, help=f"our stack to build on (default: {DEFAULT_STACK})")
    build.add_argument("--build-image", help="any build image meeting the CNB base-image contract (with --run-image)")
    build.add_argument("--run-image", help="any run image meeting the CNB base-image contract (with --build-image)")
    build.add_argument(
        "--offline",
        action="store_true",
        help="no network; mount the harness's wheelhouse (wheels for the app's requirements.txt, the sample"
        f" apps' packages, pip, uv and Poetry) at {access.WHEELHOUSE_TARGET} and add PIP_NO_INDEX=1 and"
        f" PIP_FIND_LINKS={access.WHEELHOUSE_TARGET} to <platform>/env; a uv.lock or poetry.lock made against"
        " PyPI needs the network (leave this out) or a lock made against the wheelhouse (`bpconform docs build`)",
    )
    build.add_argument("--wheelhouse", type=Path, metavar="DIR", help="like --offline, with your own wheel directory")
    build.add_argument(
        "--ca-bundle",
        type=Path,
        metavar="FILE",
        help=f"mount a PEM CA bundle at {access.CA_BUNDLE_TARGET} and add PIP_CERT and SSL_CERT_FILE naming it"
        " to <platform>/env (for a TLS-intercepting proxy)",
    )
    build.add_argument("--online", action="store_true", help=argparse.SUPPRESS)  # deprecated: --ca-bundle <host's>
    build.add_argument("--image", dest="old_image", help=argparse.SUPPRESS)  # the old spelling: refused with a hint
    build.add_argument("--emulate-lifecycle-1393", action="store_true", help="pre-0.20.1 build env ordering bug")
    build.add_argument("--timeout", type=_number, default=1800.0, help="seconds a buildpack may run (positive)")
    _add_limit_options(build)
    build.set_defaults(func=cmd_build)


DISTRIBUTION = "buildpack-conformance"


def version_text() -> str:
    """`bpconform --version`: the package's version, and the CNB APIs the embedded platform speaks."""
    from importlib.metadata import PackageNotFoundError, version

    from conformance.platform import spec
    from conformance.platform.buildpack import SUPPORTED_APIS

    try:
        installed = version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never pip-installed
        installed = "unknown (not installed)"
    return (
        f"bpconform {installed} ({DISTRIBUTION})\n"
        f"Platform API {spec.PLATFORM_API} (the embedded platform)\n"
        f"Buildpack APIs {', '.join(SUPPORTED_APIS)}"
    )


class _VersionAction(argparse.Action):
    """argparse's "version" action, with the text made only when asked (it imports the platform spec)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string=None):
        print(version_text())
        parser.exit()


USAGE_NOTE = (
    "Every command exits 2 on a usage error (a wrong option, or a file or name it gives that is not"
    " usable: nothing was built or run); `bpconform run --help` and `bpconform build --help` list their"
    " other exit codes. Guides: `bpconform docs`."
)


CLEAN_DESCRIPTION = (
    "A plain `bpconform clean` removes the containers, volumes, networks and app images of harness runs"
    " that are over (another run still going keeps its own), the `bpconform build` caches whose image no"
    " longer exists, their lock files no build holds, and the in-memory work directory when no run is going."
    " It keeps the stack images, the images `bpconform build` made and the cache directory. --all removes"
    " those images and every build cache too, even a running build's. --cache deletes the cache directory"
    " (runtimes, wheelhouse, stack records, build caches) that every run and checkout on this machine shares."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpconform", description=__doc__.splitlines()[0], epilog=USAGE_NOTE)
    parser.add_argument(
        "--version", action=_VersionAction, help="show the version and the Platform and Buildpack APIs, and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    setup = sub.add_parser("setup", help="prepare the engine, stacks, Python runtimes and the wheelhouse")
    setup.add_argument("--stack", action="append", default=None, help="stack(s) to prepare (default: bookworm)")
    setup.add_argument("--python", action="append", help="Python version(s) to build (default: the pinned ones)")
    setup.add_argument("--no-wheelhouse", action="store_true", help="skip downloading the offline wheelhouse")
    setup.set_defaults(func=cmd_setup)

    stack = sub.add_parser("stack", help="base images").add_subparsers(dest="stack_command", required=True)
    stack_build = stack.add_parser("build", help="build a stack's build and run images with debootstrap")
    stack_build.add_argument("name", help="bookworm or trixie")
    stack_build.add_argument("--force", action="store_true", help="rebuild even if the recipe is unchanged")
    stack_build.set_defaults(func=cmd_stack_build)

    runtime = sub.add_parser("runtime", help="Python runtimes").add_subparsers(dest="runtime_command", required=True)
    runtime_build = runtime.add_parser("build", help="compile (or pack) a relocatable CPython archive")
    runtime_build.add_argument("version")
    runtime_build.add_argument("--stack", default=DEFAULT_STACK)
    source = runtime_build.add_mutually_exclusive_group()
    source.add_argument("--source", type=Path, help="a CPython source tarball of your own")
    source.add_argument("--prebuilt", type=Path, help="a prebuilt relocatable install tree")
    runtime_build.add_argument("--force", action="store_true")
    runtime_build.add_argument("--allow-pip", action="store_true", help="accept a prebuilt tree that contains pip")
    runtime_build.set_defaults(func=cmd_runtime_build)

    _add_build_command(sub)

    from conformance.inspect import cmd_inspect  # stdlib-only at import; reads images via conformance.image

    inspect = sub.add_parser("inspect", help="show what a CNB-built image holds, like `pack inspect`")
    inspect.add_argument("image", help="the app image (name or id) in the Docker engine")
    inspect.add_argument("--json", action="store_true", help="print a JSON document (`bpconform docs inspect`)")
    inspect.add_argument("--cache-dir", type=Path, help="build cache to read (default: the one kept for IMAGE)")
    inspect.add_argument("--no-trunc", action="store_true", help="full digests, no cut cells")
    inspect.set_defaults(func=cmd_inspect)

    docs = sub.add_parser("docs", help="show a guide shipped with the package (the messages name them)")
    docs.add_argument("topic", nargs="?", metavar="TOPIC", help="build, inspect, profile-init, profiles, third-party")
    docs.add_argument("--path", action="store_true", help="print the guide's file name instead of its text")
    docs.set_defaults(func=cmd_docs)

    clean = sub.add_parser(
        "clean",
        help="remove what the harness created in the Docker engine, and build caches of removed images",
        description=CLEAN_DESCRIPTION,
    )
    clean.add_argument(
        "--all",
        action="store_true",
        help="also the stack images, the images `bpconform build` made, every build cache, and what runs"
        " still going use (stop them first)",
    )
    clean.add_argument(
        "--cache",
        action="store_true",
        help="also delete the whole cache directory: the stacks' records, Python runtimes, wheelhouse and build"
        " caches shared by every run on this machine; `bpconform setup` makes them again (minutes, with network)",
    )
    clean.set_defaults(func=cmd_clean)

    _add_run_command(sub)
    _add_profile_command(sub)
    return parser


def _add_profile_command(sub: argparse._SubParsersAction) -> None:
    """`bpconform profile init` (conformance.profile_draft), its inputs checked first as a usage error."""
    from conformance.profile_draft import add_profile_command, cmd_profile_init

    add_profile_command(sub)
    profile = sub.choices["profile"]
    [commands] = [action for action in profile._actions if isinstance(action, argparse._SubParsersAction)]

    def checked(args: argparse.Namespace) -> int:
        _check_profile_init_inputs(args)
        return cmd_profile_init(args)

    commands.choices["init"].set_defaults(func=checked)


def _check_profile_init_inputs(args: argparse.Namespace) -> None:
    """What `profile init` is given, before any build: exit 2, as every command's usage errors; and
    `--buildpack reference` is the shipped reference buildpack, as for build and run."""
    from conformance import stacks
    from conformance.run import read_identity, resolve_buildpacks

    with usage_errors():
        [args.buildpack] = resolve_buildpacks([args.buildpack])
        read_identity(args.buildpack)  # the check build and run make: no buildpack.toml, not TOML, no id
        if args.app is not None and not args.app.is_dir():
            raise UsageError(f"sample app {args.app} is not a directory", "pass --app DIR, an app the buildpack builds")
        if args.output is not None and args.output.exists() and not args.force:
            raise UsageError(f"{args.output} exists", "pass --force to overwrite it, or another --output")
        stacks.check_stack_name(args.stack)


def _add_run_command(sub: argparse._SubParsersAction) -> None:
    from conformance import run

    _add_limit_options(run.add_run_command(sub))


def _number(text: str) -> float:
    """argparse type: a float, kept as given (validated with a clear message by the command)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "stack", None) is None and args.command == "setup":
        args.stack = [DEFAULT_STACK]
    return run_command(args.func, args)


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        if getattr(args, "command", None) == "run":
            _export_limits(args)
        return func(args)
    except ConformanceError as exc:
        if os.environ.get("BPCONFORM_DEBUG"):
            traceback.print_exc()
        print(f"bpconform: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  -> {exc.hint}", file=sys.stderr)
        return exc.exit_code or 1
    except KeyboardInterrupt:
        print("bpconform: interrupted; removing the containers this run created", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
