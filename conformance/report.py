"""`bpconform run`: run the conformance suite and turn pytest's results into a conformance report.

A maintainer gating a release wants one answer per promise per app ("is the layer layout right for
the pinned-311 app?"), not a scroll of pytest output; so a collector plugin records each test as
(check, app, outcome, reason) and the report is a table of checks x apps with the reason of every
failure and skip under it, written to stdout, Markdown, JSON and (pytest's own) JUnit XML.

`--compare SETTING` runs the suite twice, once without and once with a platform setting (the
lifecycle#1393 emulation, or another pack lifecycle image) and lists the checks whose outcome
changed: that is how a lifecycle upgrade is regression-tested. Each side of a comparison runs in
its own Python process, so session-scoped state of the suite (built images, caches in module
globals) can never leak from one side into the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.errors import ConformanceError

SUITE_MODULE = "conformance.suite"
PLUGIN_MODULE = "conformance.plugin"
PLUGIN_ENTRY_POINT = "bpconform"
RECORDS_ENV = "BPCONFORM_RECORDS_FILE"  # set for a run in a subprocess: where its collector writes
DEFAULT_REPORT_DIR = Path("reports")
COMPARE_SETTINGS = ("lifecycle-1393", "lifecycle-image=IMAGE")

OUTCOMES = ("passed", "failed", "error", "skipped")
CELL = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}
NO_APP = "-"
PYTEST_EXIT_MEANINGS = {
    2: "interrupted (Ctrl-C, or errors while collecting the suite; see above)",
    3: "internal error in pytest or a plugin (see the traceback above)",
    4: "usage error: an option was not understood (see above)",
    5: "no checks were selected (does -k match any check?)",
}
MAX_REASON_LINES = 3
MAX_REASON_CHARS = 300
MAX_LINE_CHARS = 160


# ------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One test's result, in the terms of the conformance report."""

    check: str
    app: str
    outcome: str  # passed | failed | error | skipped
    reason: str = ""
    duration: float = 0.0
    nodeid: str = ""

    @property
    def label(self) -> str:
        return self.check if self.app == NO_APP else f"{self.check}[{self.app}]"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass
class RunResult:
    """Everything a report is made from: records, snapshot findings, settings and timings."""

    records: list[Record]
    settings: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    exit_code: int = 0
    unused_snapshots: list[str] = field(default_factory=list)
    failed_snapshots: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The run conforms: pytest succeeded and no check failed or errored."""
        totals = count_outcomes(self.records)
        return self.exit_code == 0 and totals["failed"] == 0 and totals["error"] == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "totals": count_outcomes(self.records),
            "wall_time": round(self.wall_time, 3),
            "exit_code": self.exit_code,
            "ok": self.ok,
            "snapshots": {"unused": self.unused_snapshots, "failed": self.failed_snapshots},
            "records": [asdict(record) for record in self.records],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        snapshots = data.get("snapshots", {})
        return cls(
            records=[Record.from_dict(item) for item in data.get("records", [])],
            settings=data.get("settings", {}),
            wall_time=data.get("wall_time", 0.0),
            exit_code=data.get("exit_code", 0),
            unused_snapshots=list(snapshots.get("unused", [])),
            failed_snapshots=list(snapshots.get("failed", [])),
        )


def count_outcomes(records: Iterable[Record]) -> dict[str, int]:
    totals = dict.fromkeys(OUTCOMES, 0)
    for record in records:
        totals[record.outcome] = totals.get(record.outcome, 0) + 1
    totals["total"] = sum(totals[outcome] for outcome in OUTCOMES)
    return totals


# ------------------------------------------------------------------------------------------------
# The collector plugin
# ------------------------------------------------------------------------------------------------


def check_name(function_name: str) -> str:
    return function_name[len("test_") :] if function_name.startswith("test_") else function_name


def app_label(value: object) -> str:
    """A parametrised `app` may be a name, a path or an object with a name; show its name."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return Path(value).name
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


def condense(text: str) -> str:
    """The first lines of a message, short enough for a report cell's footnote."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines = [line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..." for line in lines]
    short = "\n".join(lines[:MAX_REASON_LINES])
    if len(lines) > MAX_REASON_LINES or len(short) > MAX_REASON_CHARS:
        short = short[: MAX_REASON_CHARS - 3].rstrip() + "..."
    return short


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    if hasattr(report, "wasxfail"):
        return condense(f"xfail: {report.wasxfail}" if report.wasxfail else "xfail")
    return condense(text.removeprefix("Skipped: "))


def without_introspection(message: str) -> str:
    """Drop pytest's `assert ...` / `+ where ...` lines when the assertion has its own message."""
    lines = message.strip().splitlines()
    for index, line in enumerate(lines):
        if index > 0 and line.startswith("assert "):
            return "\n".join(lines[:index])
    return message


def failure_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return condense(without_introspection(crash.message.removeprefix("AssertionError: ")))
    text = report.longreprtext
    # collection errors come as text: pytest's "E   " lines carry the actual exception
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return condense("\n".join(errors) if errors else text)


class CheckNamer:
    """Names tests as (check, app), in collection order: the same test name in two modules is
    qualified with its module."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, str], str] = {}

    def __call__(self, item: pytest.Item) -> tuple[str, str]:
        marker = item.get_closest_marker("bpconform_check")  # the suite may name its checks explicitly
        if marker is not None and marker.args:
            check = str(marker.args[0])
        else:
            check = check_name(getattr(item, "originalname", None) or item.name.split("[", 1)[0])
        params = dict(getattr(getattr(item, "callspec", None), "params", {}) or {})
        app = app_label(params.pop("app")) if "app" in params else NO_APP
        if params:  # other parameters distinguish variants of the same check
            check += "[" + ",".join(f"{key}={app_label(value)}" for key, value in sorted(params.items())) + "]"
        owner = self._owners.setdefault((check, app), item.nodeid)
        if owner != item.nodeid:  # same test name in two modules: qualify with the module
            module = Path(item.nodeid.split("::", 1)[0]).stem.removeprefix("test_")
            check = f"{module}.{check}"
        return check, app


@dataclass
class _Pending:
    check: str
    app: str
    outcome: str = "passed"
    reason: str = ""
    duration: float = 0.0


class ResultCollector:
    """A pytest plugin object recording every test as a `Record`, in collection order.

    Under pytest-xdist it runs in the controller, which collects nothing: the workers name each test
    (the plugin's `bpconform_check` on each report) and say the collection order, so the records come
    out as in a serial run.
    """

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.unused_snapshots: list[str] = []
        self.failed_snapshots: list[str] = []
        self._names: dict[str, tuple[str, str]] = {}
        self._order: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        self._namer = CheckNamer()

    # -- naming --------------------------------------------------------------------------------

    def _name_of(self, report: pytest.TestReport) -> tuple[str, str]:
        if report.nodeid in self._names:
            return self._names[report.nodeid]
        named = getattr(report, "bpconform_check", None)  # set by the plugin in an xdist worker
        if isinstance(named, (list, tuple)) and len(named) == 2:
            return str(named[0]), str(named[1])
        return self._name_from_nodeid(report.nodeid)

    @staticmethod
    def _name_from_nodeid(nodeid: str) -> tuple[str, str]:
        """Last resort, for a report from a worker that did not name its tests."""
        last = nodeid.rsplit("::", 1)[-1]
        name, _, rest = last.partition("[")
        return check_name(name), rest.rstrip("]") or NO_APP

    # -- hooks ---------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after deselection (-k), as the plugin names tests in workers
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for index, item in enumerate(items):
            self._names[item.nodeid] = self._namer(item)
            self._order[item.nodeid] = index

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """(xdist controller) Every worker collects the same tests; the first one's order is the order."""
        if not self._order:
            self._order = {nodeid: index for index, nodeid in enumerate(ids)}

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            where = report.nodeid or "collection"
            self.records.append(Record(f"collect {where}", NO_APP, "error", failure_reason(report), 0.0, where))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pending = self._pending.get(report.nodeid)
        if pending is None:
            pending = self._pending[report.nodeid] = _Pending(*self._name_of(report))
        pending.duration += report.duration
        if report.when == "setup":
            if report.failed:
                pending.outcome, pending.reason = "error", failure_reason(report)
            elif report.skipped:
                pending.outcome, pending.reason = "skipped", skip_reason(report)
        elif report.when == "call":
            if hasattr(report, "wasxfail") and not report.failed:
                pending.outcome = "skipped" if report.skipped else "passed"
                pending.reason = skip_reason(report)
            elif report.failed:
                pending.outcome, pending.reason = "failed", failure_reason(report)
            elif report.skipped:
                pending.outcome, pending.reason = "skipped", skip_reason(report)
            else:
                pending.outcome = "passed"
        elif report.when == "teardown" and report.failed and pending.outcome in ("passed", "skipped"):
            pending.outcome, pending.reason = "error", "teardown: " + failure_reason(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self._finish(nodeid)

    def _finish(self, nodeid: str) -> None:
        pending = self._pending.pop(nodeid, None)
        if pending is not None:
            self.records.append(
                Record(pending.check, pending.app, pending.outcome, pending.reason, round(pending.duration, 3), nodeid)
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for nodeid in list(self._pending):  # e.g. the test an xdist worker crashed in: reported, never finished
            self._finish(nodeid)
        # Collection errors (no order) first, as in a serial run; then tests in collection order.
        self.records.sort(key=lambda record: self._order.get(record.nodeid, -1))
        self.unused_snapshots, self.failed_snapshots = _syrupy_findings(session.config)
        target = os.environ.get(RECORDS_ENV)
        if target and session.config.pluginmanager.get_plugin("bpconform-collector") is self:
            data = {
                "records": [asdict(record) for record in self.records],
                "snapshots": {"unused": self.unused_snapshots, "failed": self.failed_snapshots},
            }
            Path(target).write_text(json.dumps(data, indent=2))


def _syrupy_findings(config: pytest.Config) -> tuple[list[str], list[str]]:
    """(unused, failed) snapshot names from syrupy's session report, when syrupy ran."""
    try:
        report = config._syrupy.report  # type: ignore[attr-defined]
        if report is None:
            return [], []

        def names(collections: Any) -> list[str]:
            return sorted(f"{Path(c.location).name}::{s.name}" for c in collections for s in c)

        unused = [] if report.unused_detection_incomplete else names(report.unused)
        return unused, names(report.failed)
    except Exception:  # syrupy absent, disabled or changed: snapshots are simply not reported
        return [], []


def pytest_configure(config: pytest.Config) -> None:
    """Loaded with `-p conformance.report` in a child run: collect and write records to a file
    (in the xdist controller only: each worker sees only its share of the tests)."""
    in_worker = hasattr(config, "workerinput")
    if os.environ.get(RECORDS_ENV) and not in_worker and not config.pluginmanager.has_plugin("bpconform-collector"):
        config.pluginmanager.register(ResultCollector(), "bpconform-collector")


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------


def _ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def result_grid(records: Sequence[Record]) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    """(checks, apps, cells): rows and columns in run order; `-` (no app) comes last."""
    checks = _ordered(record.check for record in records)
    apps = _ordered(record.app for record in records if record.app != NO_APP)
    if any(record.app == NO_APP for record in records):
        apps.append(NO_APP)
    cells = {(record.check, record.app): CELL.get(record.outcome, record.outcome) for record in records}
    return checks, apps, cells


def render_table(records: Sequence[Record]) -> str:
    checks, apps, cells = result_grid(records)
    if not checks:
        return "(no checks ran)"
    header = ["check", *apps]
    rows = [[check, *(cells.get((check, app), "") for app in apps)] for check in checks]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [header]]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def render_markdown_table(records: Sequence[Record]) -> str:
    checks, apps, cells = result_grid(records)
    if not checks:
        return "_No checks ran._"
    markdown_cell = {"FAIL": "**FAIL**", "ERROR": "**ERROR**"}
    lines = ["| check | " + " | ".join(f"`{app}`" for app in apps) + " |", "|---" * (len(apps) + 1) + "|"]
    for check in checks:
        row = [markdown_cell.get(cells.get((check, app), ""), cells.get((check, app), "")) for app in apps]
        lines.append(f"| `{check}` | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _reason_sections(records: Sequence[Record]) -> list[tuple[str, list[Record]]]:
    return [
        ("Failures", [r for r in records if r.outcome in ("failed", "error")]),
        ("Skipped", [r for r in records if r.outcome == "skipped"]),
    ]


def summary_line(result: RunResult) -> str:
    totals = count_outcomes(result.records)
    verdict = "CONFORMS" if result.ok else "DOES NOT CONFORM"
    counts = ", ".join(f"{totals[outcome]} {outcome}" for outcome in OUTCOMES)
    return f"{verdict}: {counts} ({totals['total']} tests) in {result.wall_time:.1f}s"


def render_text_report(result: RunResult) -> str:
    parts = [_title(result), "", render_table(result.records)]
    for title, records in _reason_sections(result.records):
        if records:
            parts += ["", f"{title}:"]
            for record in records:
                parts.append(f"  {CELL.get(record.outcome, record.outcome)} {record.label}")
                parts += [f"      {line}" for line in (record.reason or "(no reason given)").splitlines()]
    parts += _snapshot_lines(result, bullet="  ")
    if result.exit_code not in (0, 1):
        meaning = PYTEST_EXIT_MEANINGS.get(result.exit_code, "see its output above")
        parts += ["", f"pytest exited with code {result.exit_code}: {meaning}"]
    parts += ["", summary_line(result)]
    return "\n".join(parts)


def render_markdown_report(result: RunResult) -> str:
    settings = "\n".join(f"- {key}: `{value}`" for key, value in result.settings.items() if value not in (None, []))
    parts = [f"# {_title(result)}", "", summary_line(result), "", settings, "", render_markdown_table(result.records)]
    for title, records in _reason_sections(result.records):
        if records:
            parts += ["", f"## {title}", ""]
            for record in records:
                reason = (record.reason or "(no reason given)").replace("\n", " / ")
                parts.append(f"- **{CELL.get(record.outcome, record.outcome)}** `{record.label}`: {reason}")
    snapshot_lines = _snapshot_lines(result, bullet="- ")
    if snapshot_lines:
        parts += ["", "## Snapshots", *snapshot_lines[1:]]
    return "\n".join(parts).replace("\n\n\n", "\n\n") + "\n"


def _title(result: RunResult) -> str:
    profile = result.settings.get("profile", "?")
    buildpacks = ", ".join(str(b) for b in result.settings.get("buildpacks", [])) or "?"
    return f"Conformance report: {buildpacks} (profile {profile})"


def _snapshot_lines(result: RunResult, bullet: str) -> list[str]:
    lines: list[str] = []
    if result.failed_snapshots:
        lines += [f"{bullet}snapshot failed: {name}" for name in result.failed_snapshots]
    if result.unused_snapshots:
        lines += [f"{bullet}snapshot unused: {name}" for name in result.unused_snapshots]
        lines.append(f"{bullet}(run with --snapshot-update to delete unused snapshots)")
    return ["", "Snapshots:", *lines] if lines else []


def write_reports(result: RunResult, report_dir: Path) -> dict[str, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": report_dir / "report.md", "json": report_dir / "report.json"}
    paths["markdown"].write_text(render_markdown_report(result))
    paths["json"].write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return paths


# ------------------------------------------------------------------------------------------------
# Comparison of two runs
# ------------------------------------------------------------------------------------------------

ABSENT = "absent"


@dataclass(frozen=True)
class Change:
    check: str
    app: str
    before: str  # an outcome, or "absent"
    after: str
    reason: str = ""  # the reason of the new outcome (or the old one if the check disappeared)

    @property
    def label(self) -> str:
        return self.check if self.app == NO_APP else f"{self.check}[{self.app}]"

    def describe(self) -> str:
        return f"{self.label}: {_cell(self.before)} -> {_cell(self.after)}"


def _cell(outcome: str) -> str:
    return CELL.get(outcome, outcome)


def compare(records_a: Sequence[Record], records_b: Sequence[Record]) -> list[Change]:
    """Checks whose outcome differs between run A and run B, in B's order, then A-only checks."""
    before = {(r.check, r.app): r for r in records_a}
    after = {(r.check, r.app): r for r in records_b}
    changes = []
    for key, record in after.items():
        old = before.get(key)
        if old is None:
            changes.append(Change(record.check, record.app, ABSENT, record.outcome, record.reason))
        elif old.outcome != record.outcome:
            changes.append(Change(record.check, record.app, old.outcome, record.outcome, record.reason or old.reason))
    for key, record in before.items():
        if key not in after:
            changes.append(Change(record.check, record.app, record.outcome, ABSENT, record.reason))
    return changes


def compare_snapshots(failed_a: Iterable[str], failed_b: Iterable[str]) -> dict[str, list[str]]:
    a, b = set(failed_a), set(failed_b)
    return {"newly_failing": sorted(b - a), "no_longer_failing": sorted(a - b)}


@dataclass(frozen=True)
class Variant:
    """One side of a comparison: a label and the suite options that make it different."""

    label: str
    extra_args: tuple[str, ...] = ()
    lifecycle_image: str | None = None


def parse_compare_setting(setting: str, platform: str | None, lifecycle_image: str | None) -> tuple[Variant, Variant]:
    """(baseline, variant) for `--compare SETTING`."""
    if setting == "lifecycle-1393":
        return Variant("baseline"), Variant("lifecycle-1393", ("--emulate-lifecycle-1393",))
    if setting.startswith("lifecycle-image="):
        image = setting.split("=", 1)[1].strip()
        if not image:
            raise ConformanceError("--compare lifecycle-image= needs an image", "write --compare lifecycle-image=IMAGE")
        if platform != "pack":
            raise ConformanceError(
                "--compare lifecycle-image=... compares pack lifecycle images, but the platform is not pack",
                "add --platform pack (and --builder), or compare the embedded platform with --compare lifecycle-1393",
            )
        baseline_label = f"lifecycle-image={lifecycle_image}" if lifecycle_image else "baseline"
        return Variant(baseline_label, (), lifecycle_image), Variant(f"lifecycle-image={image}", (), image)
    raise ConformanceError(
        f"unknown --compare setting {setting!r}",
        f"use one of: {', '.join(COMPARE_SETTINGS)}",
    )


def render_compare(label_a: str, label_b: str, a: RunResult, b: RunResult, *, markdown: bool = False) -> str:
    changes = compare(a.records, b.records)
    snapshots = compare_snapshots(a.failed_snapshots, b.failed_snapshots)
    head = f"Comparison: {label_a} -> {label_b}"
    lines = [f"# {head}" if markdown else head, ""]
    bullet = "- " if markdown else "  "
    lines.append(f"{label_a}: {summary_line(a)}")
    lines.append(f"{label_b}: {summary_line(b)}")
    lines.append("")
    if changes:
        lines.append(f"{len(changes)} check(s) changed outcome:")
        for change in changes:
            text = (
                f"`{change.label}`: {_cell(change.before)} -> {_cell(change.after)}" if markdown else change.describe()
            )
            lines.append(bullet + text)
            if change.reason and change.after in ("failed", "error", "skipped"):
                reason = change.reason.replace("\n", " / ")
                lines.append(("  " if markdown else "      ") + reason)
    else:
        lines.append("No check changed outcome.")
    for kind, names in (
        ("newly failing", snapshots["newly_failing"]),
        ("no longer failing", snapshots["no_longer_failing"]),
    ):
        for name in names:
            lines.append(f"{bullet}snapshot {kind}: {name}")
    return "\n".join(lines) + "\n"


def compare_json(label_a: str, label_b: str, a: RunResult, b: RunResult) -> dict[str, Any]:
    return {
        "a": {"label": label_a, "totals": count_outcomes(a.records), "ok": a.ok},
        "b": {"label": label_b, "totals": count_outcomes(b.records), "ok": b.ok},
        "changes": [asdict(change) for change in compare(a.records, b.records)],
        "snapshots": compare_snapshots(a.failed_snapshots, b.failed_snapshots),
    }


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
    """Run pytest in a fresh interpreter; its collector (`-p conformance.report`) writes `records_file`."""
    records_file.unlink(missing_ok=True)
    package_root = str(Path(__file__).resolve().parent.parent)  # importable even when not installed
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, RECORDS_ENV: str(records_file), "PYTHONPATH": python_path}
    completed = subprocess.run([sys.executable, "-m", "pytest", "-p", __name__, *argv], env=env, check=False)
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
