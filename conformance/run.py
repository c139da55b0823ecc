"""`bpconform run`: run the conformance suite (or two variants of it) and write the reports.

Each side of a comparison runs in its own Python process, so session-scoped state of the suite
(built images, caches in module globals) can never leak from one side into the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.compare import (
    Variant,
    compare,
    compare_json,
    compare_snapshots,
    parse_compare_setting,
    render_compare,
)
from conformance.errors import ConformanceError
from conformance.render import render_text_report, write_reports
from conformance.results import RECORDS_ENV, Record, ResultCollector, RunResult

SUITE_MODULE = "conformance.suite"
PLUGIN_MODULE = "conformance.plugin"
PLUGIN_ENTRY_POINT = "bpconform"
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
    if args.k:
        result += ["-k", args.k]
    if args.snapshot_update:
        result.append("--snapshot-update")
    if args.exitfirst:
        result.append("-x")
    if variant:
        result += list(variant.extra_args)
    return result


def build_pytest_argv(args: argparse.Namespace, report_dir: Path, variant: Variant | None = None) -> list[str]:
    """The full pytest command line for one run: the suite, its options, JUnit XML, pass-through args."""
    argv = ["--pyargs", SUITE_MODULE]
    if not plugin_is_autoloaded():
        argv += ["-p", PLUGIN_MODULE]
    argv += suite_args(args, variant)
    if args.workers:
        argv += ["-n", str(args.workers)]  # pytest-xdist; the workers share each app's session build
    argv += ["-v", "-p", "no:cacheprovider", "--junitxml", str(report_dir / "junit.xml")]
    argv += list(args.pytest_args or [])
    return argv


def settings_of(args: argparse.Namespace, variant: Variant | None = None) -> dict[str, Any]:
    return {
        "buildpacks": [str(b) for b in args.buildpack or []],
        "profile": str(args.profile),
        "stack": args.stack,
        "platform": args.platform or "embedded",
        "builder": args.builder,
        "lifecycle_image": (variant.lifecycle_image if variant and variant.lifecycle_image else args.lifecycle_image),
        "network": args.network or "default",
        "ca_bundle": str(args.ca_bundle) if args.ca_bundle else None,
        "k": args.k,
        "variant": variant.label if variant else None,
        "workers": args.workers or None,
        "pytest_args": list(args.pytest_args or []),
    }


def run_pytest_inprocess(argv: list[str]) -> tuple[int, ResultCollector]:
    collector = ResultCollector()
    exit_code = pytest.main(argv, plugins=[collector])
    return int(exit_code), collector


def run_pytest_subprocess(argv: list[str], records_file: Path) -> tuple[int, ResultCollector]:
    """Run pytest in a fresh interpreter; its collector (`-p conformance.results`) writes `records_file`."""
    records_file.unlink(missing_ok=True)
    package_root = str(Path(__file__).resolve().parent.parent)  # importable even when not installed
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, RECORDS_ENV: str(records_file), "PYTHONPATH": python_path}
    completed = subprocess.run([sys.executable, "-m", "pytest", "-p", RESULTS_PLUGIN, *argv], env=env, check=False)
    collector = ResultCollector()
    if records_file.is_file():
        data = json.loads(records_file.read_text())
        collector.records = [Record.from_dict(item) for item in data.get("records", [])]
        collector.unused_snapshots = data.get("snapshots", {}).get("unused", [])
        collector.failed_snapshots = data.get("snapshots", {}).get("failed", [])
    return completed.returncode, collector


def run_once(argv: list[str], settings: dict[str, Any], report_dir: Path, *, isolated: bool = False) -> RunResult:
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if isolated:
        exit_code, collector = run_pytest_subprocess(argv, report_dir / "records.json")
    else:
        exit_code, collector = run_pytest_inprocess(argv)
    return RunResult(
        records=collector.records,
        settings=settings,
        wall_time=time.monotonic() - started,
        exit_code=exit_code,
        unused_snapshots=collector.unused_snapshots,
        failed_snapshots=collector.failed_snapshots,
    )


def _check_inputs(args: argparse.Namespace) -> None:
    if not args.buildpack:
        raise ConformanceError("no buildpack given", "pass --buildpack DIR (repeatable, in group order)")
    for buildpack in args.buildpack:
        if not (Path(buildpack) / "buildpack.toml").is_file():
            raise ConformanceError(
                f"{buildpack} is not a buildpack directory (no buildpack.toml)",
                "pass the directory that holds buildpack.toml and bin/",
            )
    from conformance.profile import load_profile

    load_profile(args.profile)  # fail before starting pytest if the profile is unusable
    if not plugin_is_autoloaded():
        try:
            __import__(PLUGIN_MODULE)
        except ImportError as exc:
            raise ConformanceError(
                f"the conformance suite's pytest plugin ({PLUGIN_MODULE}) cannot be imported: {exc}",
                "install the package (pip install -e .) and run bpconform from its environment",
            ) from None


def _progress(text: str) -> None:
    print(f"bpconform run: {text}", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the suite (or two variants of it) and report; exit 0 iff the run conforms / nothing changed."""
    _check_inputs(args)
    report_dir = Path(args.report_dir)
    if args.compare:
        return _cmd_compare(args, report_dir)
    _progress(f"running {SUITE_MODULE} with profile {args.profile} on stack {args.stack}")
    result = run_once(build_pytest_argv(args, report_dir), settings_of(args), report_dir)
    paths = write_reports(result, report_dir)
    print()
    print(render_text_report(result))
    print(f"\nreports: {paths['markdown']}, {paths['json']}, {report_dir / 'junit.xml'}")
    return 0 if result.ok else 1


def _cmd_compare(args: argparse.Namespace, report_dir: Path) -> int:
    if args.snapshot_update:
        raise ConformanceError(
            "--compare and --snapshot-update do not mix: the second run would compare against the first's snapshots",
            "update snapshots in a plain run first, then compare",
        )
    baseline, variant = parse_compare_setting(args.compare, args.platform, args.lifecycle_image)
    results = []
    for side in (baseline, variant):
        side_dir = report_dir / _slug(side.label)
        _progress(f"comparison run {side.label!r} (reports in {side_dir})")
        result = run_once(build_pytest_argv(args, side_dir, side), settings_of(args, side), side_dir, isolated=True)
        write_reports(result, side_dir)
        print()
        print(render_text_report(result))
        results.append(result)
    a, b = results
    text = render_compare(baseline.label, variant.label, a, b)
    (report_dir / "compare.md").write_text(render_compare(baseline.label, variant.label, a, b, markdown=True))
    (report_dir / "compare.json").write_text(json.dumps(compare_json(baseline.label, variant.label, a, b), indent=2))
    print()
    print(text)
    print(f"reports: {report_dir / 'compare.md'}, {report_dir / 'compare.json'}")
    changed = (
        compare(a.records, b.records) or compare_snapshots(a.failed_snapshots, b.failed_snapshots)["newly_failing"]
    )
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
        "checks x apps. Arguments after -- go to pytest unchanged.",
    )
    run.add_argument(
        "--buildpack", type=Path, action="append", default=[], metavar="DIR", help="buildpack dir, repeatable, in order"
    )
    run.add_argument("--profile", default="reference", metavar="NAME|PATH", help="built-in profile or a profile file")
    run.add_argument("--stack", default="bookworm", help="stack to build on (default: bookworm)")
    run.add_argument("--platform", choices=("embedded", "pack"), help="CNB platform (default: the plugin's, embedded)")
    run.add_argument("--builder", help="builder image for --platform pack")
    run.add_argument("--lifecycle-image", help="lifecycle image for --platform pack")
    network = run.add_mutually_exclusive_group()
    network.add_argument("--offline", dest="network", action="store_const", const="offline", help="offline wheelhouse")
    network.add_argument("--online", dest="network", action="store_const", const="online", help="let pip reach PyPI")
    run.add_argument("--ca-bundle", type=Path, help="CA bundle for --online builds")
    run.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR, help="where reports go (default: reports)")
    run.add_argument("-k", metavar="EXPR", help="only checks matching this pytest -k expression")
    run.add_argument(
        "--compare",
        metavar="SETTING",
        help="run twice, without and with SETTING: lifecycle-1393 | lifecycle-image=IMAGE",
    )
    run.add_argument("--snapshot-update", action="store_true", help="regenerate snapshots (syrupy)")
    run.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
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
