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
from pathlib import Path

from conformance.errors import ConformanceError

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

    stack = stacks.ensure_stack(args.name, force=args.force, on_output=_progress)
    print(f"{stack.build_image}\n{stack.run_image}")
    return 0


def cmd_runtime_build(args: argparse.Namespace) -> int:
    from conformance import runtimes, stacks

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


def cmd_build(args: argparse.Namespace) -> int:
    from conformance import runtimes, stacks
    from conformance.platform.creator import BuildRequest, create

    stack = stacks.ensure_stack(args.stack, on_output=_progress)
    result = create(
        BuildRequest(
            image=args.image,
            app_dir=args.app,
            buildpacks=args.buildpack,
            stack=stack,
            access=_package_access(args),
            runtimes_dir=runtimes.runtimes_dir(),
            user_env=dict(_parse_env(item) for item in args.env),
            env_order="lifecycle-1393" if args.emulate_lifecycle_1393 else "sorted",
            clear_cache=args.clear_cache,
            timeout=args.timeout,
            keep_image=True,
        )
    )
    print(f"{result.image} {result.image_id}")
    for layer in result.layers:
        flags = ",".join(name for name, on in layer.types.items() if on) or "-"
        print(f"  {layer.buildpack_id}:{layer.name:<12} {flags:<20} {layer.action:<12} {layer.diff_id or ''}")
    print("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    import shutil

    from conformance import engine
    from conformance.paths import cache_root, memory_base

    report = engine.cleanup(everything=args.all)
    print(f"bpconform clean: {report.summary()}")
    if memory_base().is_dir():  # work dirs a killed build left in memory
        shutil.rmtree(memory_base(), ignore_errors=True)
        print(f"bpconform clean: removed the in-memory work directory {memory_base()}")
    if args.cache:
        root = cache_root()
        shutil.rmtree(root, ignore_errors=True)
        print(f"bpconform clean: removed the cache directory {root}")
    return 0


# ------------------------------------------------------------------------------------------------
# Argument parsing
# ------------------------------------------------------------------------------------------------


def _parse_env(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConformanceError(f"--env {item!r} is not NAME=VALUE", "write it as --env NAME=VALUE")
    name, value = item.split("=", 1)
    return name, value


def _package_access(args: argparse.Namespace):  # -> PackageAccess
    """Offline by default: wheels for the app's requirements are fetched once on the host."""
    from conformance import access

    if args.online:
        return access.online(args.ca_bundle)
    requirements = [args.app / "requirements.txt"] if (args.app / "requirements.txt").is_file() else []
    return access.offline(access.ensure_sample_wheelhouse(requirements, on_output=_progress))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpconform", description=__doc__.splitlines()[0])
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

    build = sub.add_parser("build", help="build an app into an image with the embedded CNB platform")
    build.add_argument("app", type=Path, help="the app's source directory (never modified)")
    build.add_argument("--buildpack", type=Path, action="append", required=True, help="buildpack dir, in order")
    build.add_argument("--image", required=True, help="name of the image to create")
    build.add_argument("--stack", default=DEFAULT_STACK)
    build.add_argument("--online", action="store_true", help="let pip reach the index (default: offline wheelhouse)")
    build.add_argument("--ca-bundle", type=Path, help="CA bundle for --online (default: the host's)")
    build.add_argument("--env", action="append", default=[], help="NAME=VALUE for <platform>/env (repeatable)")
    build.add_argument("--emulate-lifecycle-1393", action="store_true", help="pre-0.20.1 build env ordering bug")
    build.add_argument("--clear-cache", action="store_true", help="ignore the build cache")
    build.add_argument("--timeout", type=float, default=1800.0, help="seconds a buildpack may run")
    build.set_defaults(func=cmd_build)

    clean = sub.add_parser("clean", help="remove what the harness created in the Docker engine")
    clean.add_argument("--all", action="store_true", help="also the stack images")
    clean.add_argument("--cache", action="store_true", help="also the cache directory (runtimes, wheels, caches)")
    clean.set_defaults(func=cmd_clean)

    _add_run_command(sub)
    from conformance.profile_draft import add_profile_command  # `bpconform profile init`

    add_profile_command(sub)
    return parser


def _add_run_command(sub: argparse._SubParsersAction) -> None:
    try:
        from conformance import report
    except ImportError:  # the suite's report module arrives with the suite
        return
    report.add_run_command(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "stack", None) is None and args.command == "setup":
        args.stack = [DEFAULT_STACK]
    return run_command(args.func, args)


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
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
