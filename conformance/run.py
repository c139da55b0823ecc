"""`bpconform run`: run the conformance suite (or two variants of it) and write the reports.

Each side of a comparison runs in its own Python process, so session-scoped state of the suite
(built images, caches in module globals) can never leak from one side into the other.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

import pytest

from conformance import junit, signals
from conformance.compare import (
    Variant,
    compare,
    compare_json,
    compare_snapshots,
    parse_compare_setting,
    render_compare,
)
from conformance.data import reference_buildpack, reference_snapshots
from conformance.errors import ConformanceError, RunAborted, UsageError, usage_errors
from conformance.profile import Profile
from conformance.progress import GroupProgress, NoteIfSelected
from conformance.render import render_console_report, render_text_report, write_reports
from conformance.results import RECORDS_ENV, SIGNAL_EXIT, Progress, Record, ResultCollector, RunResult, Verdict
from conformance.tomlcompat import load_toml

SUITE_MODULE = "conformance.suite"
PLUGIN_MODULE = "conformance.plugin"
PLUGIN_ENTRY_POINT = "bpconform"
SNAPSHOT_GROUP = "snapshots"  # conformance/suite/test_snapshots.py: the suite's only checks that use snapshots
RESULTS_PLUGIN = "conformance.results"  # the collector, loaded with -p in a child run
DEFAULT_REPORT_DIR = Path("reports")

# ------------------------------------------------------------------------------------------------
# Running the suite
# ------------------------------------------------------------------------------------------------


def plugin_is_autoloaded() -> bool:
    """Whether pytest will load our plugin by itself (the package is installed with its entry point)."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    from importlib.metadata import entry_points

    return any(ep.value == PLUGIN_MODULE for ep in entry_points(group="pytest11"))


def suite_args(args: argparse.Namespace, variant: Variant | None = None) -> list[str]:
    """The plugin's options for one run of the suite (without the report/junit plumbing)."""
    result: list[str] = []
    for buildpack in args.buildpack or []:  # absolute: the plugin may resolve paths against its rootdir
        result += ["--buildpack", str(Path(buildpack).resolve())]
    result += ["--profile", str(args.profile), "--stack", args.stack]
    if args.build_image and args.run_image:
        result += ["--build-image", args.build_image, "--run-image", args.run_image]
    if args.platform:
        result += ["--platform", args.platform]
    if args.builder:
        result += ["--builder", args.builder]
    lifecycle_image = variant.lifecycle_image if variant and variant.lifecycle_image else args.lifecycle_image
    if lifecycle_image:
        result += ["--lifecycle-image", lifecycle_image]
    if args.network:
        result.append(f"--{args.network}")
    if args.ca_bundle:
        result += ["--ca-bundle", str(args.ca_bundle)]
    for option, value in (
        ("--apps", args.apps),
        ("--snapshot-dir", args.snapshot_dir),
        ("--previous-buildpack", args.previous_buildpack),
    ):
        if value:  # a directory is made absolute; a git ref (previous buildpack) is passed as it is
            result += [option, str(Path(value).resolve()) if Path(value).exists() else str(value)]
    if args.k:
        result += ["-k", args.k]
    if args.snapshot_update:
        result.append("--snapshot-update")
    if args.exitfirst:
        result.append("-x")
    if variant:
        result += list(variant.extra_args)
    return result


# Full failure messages (snapshot diffs included): pytest cuts assertion explanations at 8 lines otherwise
NO_TRUNCATION = ("-o", "truncation_limit_lines=0", "-o", "truncation_limit_chars=0")


def suite_rootdir() -> Path:
    """The directory holding the suite's top-level package (site-packages for the wheel, the checkout
    otherwise), as pytest's rootdir: node ids are then `conformance/suite/test_x.py::...` wherever the
    package is installed, not `venv/lib/python3.11/site-packages/...` relative to the current dir.
    The ini file is still looked for from the current dir and the args, as without --rootdir."""
    import importlib.util

    spec = importlib.util.find_spec(SUITE_MODULE.split(".", 1)[0])
    if spec is None or not spec.submodule_search_locations:
        raise setup_error(
            f"the conformance suite ({SUITE_MODULE}) cannot be found",
            "pip install the buildpack_conformance wheel, and run bpconform from that environment",
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def build_pytest_argv(args: argparse.Namespace, report_dir: Path, variant: Variant | None = None) -> list[str]:
    """The full pytest command line for one run: the suite, its options, JUnit XML, pass-through args."""
    argv = ["--pyargs", SUITE_MODULE]
    if not plugin_is_autoloaded():
        argv += ["-p", PLUGIN_MODULE]
    argv += suite_args(args, variant)
    if args.workers:
        argv += ["-n", str(args.workers)]  # pytest-xdist; the workers share each app's session build
    argv += ["-v", "-p", "no:cacheprovider", *NO_TRUNCATION, "--junitxml", str(report_dir / "junit.xml")]
    argv += ["--rootdir", str(suite_rootdir())]
    argv += list(args.pytest_args or [])
    return argv


def settings_of(args: argparse.Namespace, variant: Variant | None = None) -> dict[str, Any]:
    identities = getattr(args, "identities", None) or []
    return {
        "buildpacks": [str(b) for b in args.buildpack or []],
        "buildpack_ids": [identity.label for identity in identities],
        "profile": str(args.profile),
        "stack": args.stack,
        "platform": args.platform or "embedded",
        "builder": args.builder,
        "lifecycle_image": (variant.lifecycle_image if variant and variant.lifecycle_image else args.lifecycle_image),
        "network": args.network or "default",
        "ca_bundle": str(args.ca_bundle) if args.ca_bundle else None,
        "apps": str(args.apps) if args.apps else None,
        "snapshot_dir": str(args.snapshot_dir) if args.snapshot_dir else None,
        "snapshot_update": bool(getattr(args, "snapshot_update", False)),
        "previous_buildpack": str(args.previous_buildpack) if args.previous_buildpack else None,
        "k": args.k,
        "variant": variant.label if variant else None,
        "workers": args.workers or None,
        "pytest_args": list(args.pytest_args or []),
    }


PYTEST_LOG = "pytest.log"  # in the report dir: pytest's whole output (the console shows it only with -v)


class _Tee(io.TextIOBase):
    """pytest's terminal output, to the console and to the log (`bpconform run -v`)."""

    def __init__(self, console: TextIO, log: TextIO) -> None:
        self._console, self._log = console, log

    def write(self, text: str) -> int:
        self._console.write(text)
        self._log.write(text)
        return len(text)

    def flush(self) -> None:
        self._console.flush()
        self._log.flush()

    def isatty(self) -> bool:  # pytest colours only a terminal; the log then gets the colour codes too
        return self._console.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._console, "encoding", None) or "utf-8"


def run_pytest_inprocess(
    argv: list[str], log: TextIO | None = None, *, verbose: bool = False, progress: Progress | None = None
) -> tuple[int, ResultCollector]:
    """pytest in this process, its terminal output to `log` (and the console with `verbose`; without a
    log, to the console only). A crash of pytest itself (it happens: e.g. in its own clean-up) is
    exit 3, an internal error, with the records collected so far: never a pass, never lost."""
    collector = ResultCollector(progress)
    output = sys.stdout if log is None else _Tee(sys.stdout, log) if verbose else log
    try:
        with contextlib.redirect_stdout(output):  # pytest's terminal reporter writes to sys.stdout
            exit_code = pytest.main(argv, plugins=[collector])
    except Exception as exc:
        print(f"bpconform run: pytest crashed: {type(exc).__name__}: {exc}", file=sys.stderr)
        collector.close_after_crash()
        return 3, collector
    return int(exit_code), collector


def run_pytest_subprocess(
    argv: list[str], records_file: Path, log: TextIO | None = None, *, verbose: bool = False
) -> tuple[int, ResultCollector]:
    """Run pytest in a fresh interpreter; its collector (`-p conformance.results`) writes `records_file`.
    Its stdout (pytest's output) goes to `log`, and with `verbose` to the console too; without
    `verbose` the child prints progress lines to its stderr, which is ours. Without a log, its
    output is the console's.

    On SIGINT/SIGTERM (forwarded to the child by `conformance.signals`) the child is given time to
    clean up after itself instead of being killed, as `subprocess.run` would do."""
    from conformance.progress import PROGRESS_ENV

    records_file.unlink(missing_ok=True)
    package_root = str(Path(__file__).resolve().parent.parent)  # importable even when not installed
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, RECORDS_ENV: str(records_file), "PYTHONPATH": python_path}
    tee = log is not None and verbose
    if log is not None and not verbose:
        env[PROGRESS_ENV] = "1"
        log.flush()
    command = [sys.executable, "-m", "pytest", "-p", RESULTS_PLUGIN, *argv]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE if tee else log, text=tee)
    pump = threading.Thread(target=_copy_lines, args=(child.stdout, sys.stdout, log), daemon=True)
    if tee:
        pump.start()
    try:
        returncode = child.wait()
    except KeyboardInterrupt:
        try:
            child.wait(timeout=CHILD_CLEANUP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    finally:
        if tee:
            pump.join(timeout=CHILD_CLEANUP_SECONDS)
    collector = ResultCollector()
    if records_file.is_file():
        data = json.loads(records_file.read_text())
        collector.records = [Record.from_dict(item) for item in data.get("records", [])]
        collector.unused_snapshots = data.get("snapshots", {}).get("unused", [])
        collector.failed_snapshots = data.get("snapshots", {}).get("failed", [])
        collector.selected = data.get("selection", {}).get("selected")
        collector.deselected = data.get("selection", {}).get("deselected")
    return returncode, collector


CHILD_CLEANUP_SECONDS = 60.0


def _copy_lines(source: IO[str] | None, *sinks: TextIO) -> None:
    """A child's output, line by line, to each sink (the console and the log) until it closes."""
    if source is None:
        return
    for line in source:
        for sink in sinks:
            sink.write(line)
            sink.flush()


def run_once(
    argv: list[str],
    settings: dict[str, Any],
    report_dir: Path,
    *,
    isolated: bool = False,
    verbose: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """One run of the suite. Nothing is written but the reports (pytest's output in `PYTEST_LOG`): no
    bytecode next to the installed suite (pytest's assertion rewriting would write it into
    site-packages), no pytest cache."""
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # A private tmp root: pytest's default one is shared by every pytest run of this user, and its
    # clean-up of old runs' dirs there must not be able to break (or slow) this run.
    basetemp = Path(tempfile.mkdtemp(prefix="bpconform-run-"))
    argv = ["--basetemp", str(basetemp), *argv]
    previous_flag, previous_env = sys.dont_write_bytecode, os.environ.get("PYTHONDONTWRITEBYTECODE")
    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # for xdist workers and isolated runs
    try:
        with (report_dir / PYTEST_LOG).open("w", encoding="utf-8", errors="replace") as log:
            if isolated:
                exit_code, collector = run_pytest_subprocess(argv, report_dir / "records.json", log, verbose=verbose)
            else:
                exit_code, collector = run_pytest_inprocess(argv, log, verbose=verbose, progress=progress)
    except KeyboardInterrupt:
        exit_code, collector = 2, ResultCollector()
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)
        sys.dont_write_bytecode = previous_flag
        if previous_env is None:
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        else:
            os.environ["PYTHONDONTWRITEBYTECODE"] = previous_env
    return RunResult(
        records=collector.records,
        settings=settings,
        wall_time=time.monotonic() - started,
        exit_code=exit_code,
        unused_snapshots=collector.unused_snapshots,
        failed_snapshots=collector.failed_snapshots,
        selected=collector.selected,
        deselected=collector.deselected,
        aborted=signals.received(),
    )


# ------------------------------------------------------------------------------------------------
# Checks before a run: every set-up problem is one message and exit 2, not a page of failures
# ------------------------------------------------------------------------------------------------

REFERENCE_BUILDPACK = "reference"  # `--buildpack reference`: the reference buildpack shipped with the suite


@dataclass(frozen=True)
class Identity:
    """A buildpack's id and version, from its buildpack.toml."""

    path: Path
    id: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.id} {self.version}"


def setup_error(message: str, hint: str) -> ConformanceError:
    return UsageError(message, hint)


def resolve_buildpacks(values: list[Path]) -> list[Path]:
    """The buildpack dirs; `reference` (when no such directory exists) is the shipped reference buildpack."""
    resolved = []
    for value in values:
        if str(value) == REFERENCE_BUILDPACK and not Path(value).exists():
            resolved.append(reference_buildpack())
        else:
            resolved.append(Path(value))
    return resolved


def read_identity(buildpack: Path) -> Identity:
    """The one up-front check of a buildpack directory that `run`, `build` and `profile init` share:
    buildpack.toml is there, is TOML, and has a usable `[buildpack] id` and `version` (the spec's
    rules, `spec.buildpack_id_problem`). Every problem is a usage error (exit 2): for `run`, exit 1
    means the buildpack does not conform, and for `build` a lifecycle code means a build ran and failed."""
    from conformance.platform import spec

    descriptor = buildpack / "buildpack.toml"
    if not descriptor.is_file():
        raise setup_error(
            f"{buildpack} is not a buildpack directory (no buildpack.toml)",
            "pass the directory that holds buildpack.toml and bin/ (or `reference` for the"
            " reference buildpack shipped with the suite)",
        )
    with usage_errors():
        data = load_toml(descriptor, what="buildpack descriptor")
    table = data.get("buildpack") if isinstance(data.get("buildpack"), dict) else {}
    bp_id, version = table.get("id"), table.get("version")
    if not isinstance(bp_id, str) or not bp_id or not isinstance(version, str) or not version:
        raise setup_error(
            f"{descriptor} has no [buildpack] id and version",
            'add [buildpack] id = "..." and version = "..." (CNB buildpack.toml)',
        )
    for what, value, problem in (
        ("id", bp_id, spec.buildpack_id_problem(bp_id)),
        ("version", version, spec.buildpack_version_problem(version)),
    ):
        if problem:
            raise setup_error(f"{descriptor}: invalid buildpack {what} {value!r}: {problem}", "fix [buildpack] " + what)
    return Identity(buildpack, bp_id, version)


def check_profile_matches(profile: Profile, identities: list[Identity]) -> None:
    """The profile is about one of the buildpacks given, in a version its `[buildpack] version` allows."""
    matching = [identity for identity in identities if identity.id == profile.buildpack_id]
    if not matching:
        given = ", ".join(identity.id for identity in identities)
        raise setup_error(
            f"profile {profile.name} describes buildpack {profile.buildpack_id}, but the buildpacks given are: {given}",
            f"pass that buildpack with --buildpack, or a profile for {given} (`bpconform profile init` drafts one)",
        )
    identity = matching[0]
    if not profile.buildpack_version_matches(identity.version):
        raise setup_error(
            f"{identity.path / 'buildpack.toml'}: version {identity.version} of {identity.id} is outside the"
            f" profile's [buildpack] version = {profile.buildpack_version!r} ({profile.path})",
            "run the profile that matches this release, or update the profile's [buildpack] version",
        )


def check_base_images_given(args: argparse.Namespace) -> None:
    """`--build-image`/`--run-image`: check the pair against the base-image contract before any
    check runs (one error naming every problem), and name the run's stack after its distro (the
    snapshot dir and the reference buildpack's runtimes follow it)."""
    if not (args.build_image or args.run_image):
        return
    from conformance.base_images import stack_for

    try:
        stack = stack_for(args.stack, args.build_image, args.run_image, on_output=_progress)
    except ConformanceError as exc:
        raise setup_error(exc.message, exc.hint) from None
    args.stack = stack.name


def check_stack_ready(name: str, *, images_given: bool = False) -> None:
    """The stack is known and set up (its images and the Python runtimes exist): otherwise every
    check would fail on it; one message with a "did you mean" is better. With `--build-image`/
    `--run-image` (already checked) there are no stack images to look for."""
    from conformance import runtimes, stacks

    if images_given and name not in stacks.STACK_NAMES:
        return  # a distro we have no runtimes for: a third-party buildpack brings its own

    with usage_errors():
        stacks.check_stack_name(name)
    from conformance.engine import ensure_engine

    ensure_engine()
    missing = [] if images_given else [kind for kind in stacks.KINDS if not stacks.image_is_current(name, kind)]
    arch = stacks.host_arch()
    for version in runtimes.DEFAULT_VERSIONS:
        entry = runtimes.find_entry(version, name, arch)
        if entry is None or not entry.path.is_file():
            missing.append(f"Python {version}")
    if missing:
        raise setup_error(
            f"stack {name} is not set up: missing {', '.join(missing)}",
            f"run `bpconform setup --stack {name}` once (it builds the base images and Python runtimes)",
        )


def check_apps_exist(profile: Profile, apps: Path | None) -> None:
    """Every sample app the profile names is a directory in the run's apps dir; otherwise one set-up
    error naming them all, before any build (each check would only repeat it as an ERROR)."""
    from conformance.settings import apps_dir_for

    root = apps_dir_for(profile, apps)
    missing = sorted({name for name in profile.apps.values() if not (root / name).is_dir()})
    if missing:
        raise setup_error(
            f"sample app{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in {root}",
            "put the apps there, point --apps (or the profile's apps-dir) at the directory that holds them,"
            " or opt out in the profile ([apps] PURPOSE = false: the checks that need it are then skipped)",
        )


def check_inputs(args: argparse.Namespace) -> Profile:
    """Everything that can be checked before pytest starts; a problem is a set-up error (exit 2)."""
    if not args.buildpack:
        raise setup_error(
            "no buildpack given",
            "pass --buildpack DIR (repeatable, in group order); `--buildpack reference` runs the reference buildpack",
        )
    args.buildpack = resolve_buildpacks(list(args.buildpack))
    args.identities = [read_identity(buildpack) for buildpack in args.buildpack]
    from conformance.profile import load_profile

    try:
        profile = load_profile(args.profile)  # fail before starting pytest if the profile is unusable
    except ConformanceError as exc:
        raise setup_error(exc.message, exc.hint) from None
    check_profile_matches(profile, args.identities)
    if args.apps and not Path(args.apps).is_dir():
        raise setup_error(f"--apps {args.apps} is not a directory", "pass the directory that holds your sample apps")
    check_apps_exist(profile, Path(args.apps) if args.apps else None)
    if args.previous_buildpack and Path(args.previous_buildpack).exists():
        read_identity(Path(args.previous_buildpack))
    if not plugin_is_autoloaded():
        try:
            __import__(PLUGIN_MODULE)
        except ImportError as exc:
            raise setup_error(
                f"the conformance suite's pytest plugin ({PLUGIN_MODULE}) cannot be imported: {exc}",
                "pip install the buildpack_conformance wheel, and run bpconform from that environment",
            ) from None
    return profile


def snapshot_note(args: argparse.Namespace, profile: Profile) -> str | None:
    """A hint before the run when the profile has no snapshots yet (its snapshot checks will ERROR)."""
    if args.snapshot_update:
        return None
    from conformance.settings import REFERENCE_PROFILE

    if args.snapshot_dir:
        root = Path(args.snapshot_dir)
    elif profile.name == REFERENCE_PROFILE and str(args.profile) == REFERENCE_PROFILE:
        root = reference_snapshots()
    else:
        root = Path.cwd() / "snapshots"
    directory = root / profile.name / args.stack
    if any(directory.glob("*.ambr")):
        return None
    return (
        f"no snapshots for profile {profile.name} on stack {args.stack} in {directory}: the snapshot checks will be"
        " ERRORs; record them once with --snapshot-update, review them, and keep them with your project"
    )


def _progress(text: str) -> None:
    print(f"bpconform run: {text}", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the suite (or two variants of it) and report. Exit status: 0 conforms (or a subset that
    passed: PARTIAL), 1 does not conform, 2 a usage or set-up error, 130/143 stopped by SIGINT/SIGTERM."""
    with signals.stop_on_signals():
        try:
            return _cmd_run(args)
        except KeyboardInterrupt:
            name = signals.received() or "SIGINT"
            raise RunAborted(name, SIGNAL_EXIT.get(name, 130)) from None


def _cmd_run(args: argparse.Namespace) -> int:
    profile = check_inputs(args)
    report_dir = Path(args.report_dir)
    if args.compare:
        return _cmd_compare(args, report_dir)
    check_base_images_given(args)
    check_stack_ready(args.stack, images_given=bool(args.build_image))
    identities = ", ".join(identity.label for identity in args.identities)
    _progress(f"running {SUITE_MODULE} on {identities} with profile {args.profile} on stack {args.stack}")
    progress: Progress | None = None if args.verbose else GroupProgress(_progress)
    note = snapshot_note(args, profile)
    if note:  # said once collection shows a snapshot check is selected (not for `-k package_managers`)
        progress = NoteIfSelected(_progress, note, [SNAPSHOT_GROUP], progress)
    result = run_once(
        build_pytest_argv(args, report_dir), settings_of(args), report_dir, verbose=args.verbose, progress=progress
    )
    junit.finish(report_dir / "junit.xml", junit_properties(args))
    paths = write_reports(result, report_dir)
    print()
    print(_render_result(result, report_dir, verbose=args.verbose))
    print()
    print(reports_line(paths["markdown"], paths["json"], report_dir / "junit.xml", report_dir / PYTEST_LOG))
    return result.status


def _render_result(result: RunResult, report_dir: Path, *, verbose: bool) -> str:
    """-v: today's table of every check and app after pytest's own output; by default the lean form
    (failures and errors in full, the verdict; the table is in report.md, pytest's output in the log)."""
    return render_text_report(result) if verbose else render_console_report(result, report_dir / PYTEST_LOG)


def reports_line(*paths: Path) -> str:
    """The last line of a run: where everything is, pytest's full output last."""
    *reports, log = paths
    return f"reports: {', '.join(str(path) for path in reports)}; pytest's full output: {log}"


def junit_properties(args: argparse.Namespace) -> dict[str, str]:
    identities = getattr(args, "identities", None) or []
    return {
        "buildpack": ", ".join(identity.id for identity in identities),
        "version": ", ".join(identity.version for identity in identities),
        "profile": str(args.profile),
        "stack": args.stack,
        "platform": args.platform or "embedded",
    }


def _cmd_compare(args: argparse.Namespace, report_dir: Path) -> int:
    if args.snapshot_update:
        raise setup_error(
            "--compare and --snapshot-update do not mix: the second run would compare against the first's snapshots",
            "update snapshots in a plain run first, then compare",
        )
    try:
        baseline, variant = parse_compare_setting(args.compare, args.platform, args.lifecycle_image)
    except ConformanceError as exc:
        raise setup_error(exc.message, exc.hint) from None
    check_base_images_given(args)
    check_stack_ready(args.stack, images_given=bool(args.build_image))
    results = []
    for side in (baseline, variant):
        side_dir = report_dir / _slug(side.label)
        _progress(f"comparison run {side.label!r} (reports in {side_dir})")
        result = run_once(
            build_pytest_argv(args, side_dir, side),
            settings_of(args, side),
            side_dir,
            isolated=True,
            verbose=args.verbose,
        )
        junit.finish(side_dir / "junit.xml", junit_properties(args))
        write_reports(result, side_dir)
        print()
        print(_render_result(result, side_dir, verbose=args.verbose))
        results.append(result)
        if result.aborted:
            return result.status
    a, b = results
    text = render_compare(baseline.label, variant.label, a, b)
    (report_dir / "compare.md").write_text(render_compare(baseline.label, variant.label, a, b, markdown=True))
    (report_dir / "compare.json").write_text(json.dumps(compare_json(baseline.label, variant.label, a, b), indent=2))
    print()
    print(text)
    sides = ", ".join(str(report_dir / _slug(side.label)) for side in (baseline, variant))
    print(
        f"reports: {report_dir / 'compare.md'}, {report_dir / 'compare.json'}; each side's, with pytest's full output"
        f" ({PYTEST_LOG}): {sides}"
    )
    changed = (
        compare(a.records, b.records) or compare_snapshots(a.failed_snapshots, b.failed_snapshots)["newly_failing"]
    )
    if a.verdict in (Verdict.ERROR, Verdict.ABORTED) or b.verdict in (Verdict.ERROR, Verdict.ABORTED):
        return 2
    return 0 if a.ok and not changed else 1


def _worker_count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of processes (0 or more), got {value!r}")
    return int(value)


def _slug(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)[:80]


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def add_run_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    run = subparsers.add_parser(
        "run",
        help="run the conformance suite against buildpack(s) and write a report",
        description="Run the conformance suite (pytest --pyargs conformance.suite) and print a report of "
        "checks x apps. Exit status: 0 conforms (PARTIAL: the selected subset passed), 1 does not conform, "
        "2 usage or set-up error (ERROR: checks could not run), 130/143 stopped by SIGINT/SIGTERM. "
        "Arguments after -- go to pytest unchanged.",
    )
    run.add_argument(
        "--buildpack",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="buildpack dir, repeatable, in group order; `reference`: the reference buildpack shipped with the suite",
    )
    run.add_argument("--profile", default="reference", metavar="NAME|PATH", help="built-in profile or a profile file")
    run.add_argument("--stack", default="bookworm", help="stack to build on (default: bookworm)")
    run.add_argument("--build-image", help="any build image meeting the CNB base-image contract (with --run-image)")
    run.add_argument("--run-image", help="any run image meeting the CNB base-image contract (with --build-image)")
    run.add_argument("--platform", choices=("embedded", "pack"), help="build backend (default: embedded)")
    run.add_argument("--builder", help="builder image for --platform pack")
    run.add_argument("--lifecycle-image", help="lifecycle image for --platform pack")
    network = run.add_mutually_exclusive_group()
    network.add_argument(
        "--offline",
        dest="network",
        action="store_const",
        const="offline",
        help="the default: build containers have no network; the harness's wheelhouse (wheels for the run's"
        " sample apps, and for pip, uv and Poetry) is mounted and named by PIP_NO_INDEX=1 and PIP_FIND_LINKS"
        " in <platform>/env (pip's names: a buildpack passes them on to uv and Poetry itself)",
    )
    network.add_argument(
        "--online",
        dest="network",
        action="store_const",
        const="online",
        help="build containers have the network, for everything the buildpack runs (pip, uv, Poetry), and the"
        " host's CA bundle (or --ca-bundle), named by PIP_CERT and SSL_CERT_FILE in <platform>/env",
    )
    run.add_argument("--ca-bundle", type=Path, metavar="FILE", help="PEM CA bundle for --online builds")
    run.add_argument(
        "--apps", type=Path, metavar="DIR", help="your sample apps (default: the profile's apps-dir, else the shipped)"
    )
    run.add_argument(
        "--snapshot-dir",
        type=Path,
        metavar="DIR",
        help="snapshots root, holding <profile>/<stack>/ (default: ./snapshots; the reference profile's ship"
        " with the suite)",
    )
    run.add_argument(
        "--previous-buildpack",
        metavar="DIR|GIT-REF",
        help="the previous release, for the upgrade check: a directory or a git ref of the buildpack's repository",
    )
    run.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR, help="where reports go (default: reports)")
    run.add_argument("-k", metavar="EXPR", help="only checks matching this pytest -k expression (verdict: PARTIAL)")
    run.add_argument(
        "--compare",
        metavar="SETTING",
        help="run twice, without and with SETTING: lifecycle-1393 | lifecycle-image=IMAGE",
    )
    run.add_argument(
        "--snapshot-update",
        action="store_true",
        help="record or update snapshots (in --snapshot-dir, else ./snapshots)",
    )
    run.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help=f"print pytest's whole output and the table of checks x apps (by default: a line per check group,"
        f" the failures and the verdict; pytest's output is always in <report dir>/{PYTEST_LOG})",
    )
    run.add_argument(
        "--workers",
        type=_worker_count,
        default=0,
        metavar="N",
        help="run the checks in N parallel processes (pytest-xdist); 0 (default): in this one",
    )
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    run.set_defaults(func=cmd_run, network=None)
    return run
