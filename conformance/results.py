"""Collecting results: each test of a suite run as a `Record` (check, app, outcome, reason).

A maintainer gating a release wants one answer per promise per app ("is the layer layout right for
the pinned-311 app?"), not a scroll of pytest output; so `ResultCollector`, a pytest plugin object,
records each test in those terms, in collection order, also under pytest-xdist. Loaded with
`-p conformance.results` in a child run (`RECORDS_ENV` set), it writes its records to a file.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import pytest

RECORDS_ENV = "BPCONFORM_RECORDS_FILE"  # set for a run in a subprocess: where its collector writes

OUTCOMES = ("passed", "failed", "error", "skipped")
CELL = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}
NO_APP = "-"
MAX_REASON_LINES = 3  # `condense`: for places that need one short line (e.g. a comparison's changes)
MAX_REASON_CHARS = 300
MAX_LINE_CHARS = 160
MAX_OUTPUT_LINES = 80  # of a failed build's output, kept with the record for the report
NOT_FINISHED = "the check did not finish (the run was interrupted, or its worker crashed): it did not pass"

# Report attributes the plugin sets (they travel with a report from an xdist worker to the controller)
ERROR_ATTR = "bpconform_error"  # the failure is the harness's or a missing input's: an ERROR, not a FAIL
BUILD_FAILED_ATTR = "bpconform_build_failed"  # the app's build failed (the buildpack's fault): a FAIL
DESELECTED_KEY = "bpconform_deselected"  # in an xdist worker's workeroutput: how many tests it deselected
COLLECTED_KEY = "bpconform_collected"


class Verdict(str, Enum):
    """What a run says about the buildpack, and the exit status `bpconform run` gives it."""

    CONFORMS = "CONFORMS"  # every check ran; none failed or errored
    PARTIAL = "PARTIAL"  # a subset ran (-k, --lf, deselection), or snapshots were recorded, not compared
    DOES_NOT_CONFORM = "DOES NOT CONFORM"  # a check failed: the buildpack broke a promise
    ERROR = "ERROR"  # no check failed, but some could not run (missing input, harness failure)
    ABORTED = "ABORTED"  # stopped by a signal: no verdict

    @property
    def exit_code(self) -> int:
        return {"CONFORMS": 0, "PARTIAL": 0, "DOES NOT CONFORM": 1, "ERROR": 2, "ABORTED": 2}[self.value]


SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


# ------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One test's result, in the terms of the conformance report."""

    check: str
    app: str
    outcome: str  # passed | failed | error | skipped
    reason: str = ""  # the whole message (reports wrap it; they never cut it)
    duration: float = 0.0
    nodeid: str = ""
    output: str = ""  # the last lines of a build's output that led to a failure

    @property
    def label(self) -> str:
        return self.check if self.app == NO_APP else f"{self.check}[{self.app}]"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass
class RunResult:
    """Everything a report is made from: records, snapshot findings, settings, selection and timings.

    `selected` / `deselected`: how many tests ran / were left out by -k, --lf or --deselect (None:
    unknown, e.g. every xdist worker crashed); `aborted`: the signal that stopped the run.
    """

    records: list[Record]
    settings: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    exit_code: int = 0
    unused_snapshots: list[str] = field(default_factory=list)
    failed_snapshots: list[str] = field(default_factory=list)
    selected: int | None = None
    deselected: int | None = None
    aborted: str | None = None

    @property
    def subset(self) -> bool:
        """Only part of the suite was selected (or it cannot be told, which is not the whole)."""
        if self.deselected is None:
            return bool(self.settings.get("k"))
        return self.deselected > 0

    @property
    def snapshots_recorded(self) -> bool:
        """`--snapshot-update`: the snapshot checks wrote what they saw instead of comparing it."""
        pytest_args = self.settings.get("pytest_args") or []
        return bool(self.settings.get("snapshot_update")) or "--snapshot-update" in pytest_args

    @property
    def verdict(self) -> Verdict:
        totals = count_outcomes(self.records)
        if self.aborted:
            return Verdict.ABORTED
        if totals["failed"]:
            return Verdict.DOES_NOT_CONFORM
        if totals["error"] or self.exit_code not in (0, 1) or not self.records:
            return Verdict.ERROR
        if self.exit_code == 1:  # pytest saw a failure our records do not show: never a pass
            return Verdict.ERROR
        return Verdict.PARTIAL if self.subset or self.snapshots_recorded else Verdict.CONFORMS

    @property
    def ok(self) -> bool:
        """The checks that ran conform (CONFORMS, or PARTIAL for a subset)."""
        return self.verdict in (Verdict.CONFORMS, Verdict.PARTIAL)

    @property
    def status(self) -> int:
        """The exit status of `bpconform run` for this result."""
        if self.aborted:
            return SIGNAL_EXIT.get(self.aborted, 2)
        return self.verdict.exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "verdict": self.verdict.value,
            "totals": count_outcomes(self.records),
            "selection": {"selected": self.selected, "deselected": self.deselected, "subset": self.subset},
            "wall_time": round(self.wall_time, 3),
            "exit_code": self.exit_code,
            "aborted": self.aborted,
            "ok": self.ok,
            "snapshots": {"unused": self.unused_snapshots, "failed": self.failed_snapshots},
            "records": [asdict(record) for record in self.records],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        snapshots = data.get("snapshots", {})
        selection = data.get("selection", {})
        return cls(
            records=[Record.from_dict(item) for item in data.get("records", [])],
            settings=data.get("settings", {}),
            wall_time=data.get("wall_time", 0.0),
            exit_code=data.get("exit_code", 0),
            unused_snapshots=list(snapshots.get("unused", [])),
            failed_snapshots=list(snapshots.get("failed", [])),
            selected=selection.get("selected"),
            deselected=selection.get("deselected"),
            aborted=data.get("aborted"),
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
    """The whole failure message (reports wrap it, never cut it), without pytest's introspection."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return _undent(without_introspection(crash.message.removeprefix("AssertionError: ")).strip())
    text = report.longreprtext
    # collection errors come as text: pytest's "E   " lines carry the actual exception
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return ("\n".join(errors) if errors else text).strip()


def _undent(message: str) -> str:
    """pytest indents the lines after the first of an assertion message: take that indent away
    (keeping a snapshot diff's own `-`/`+` columns)."""
    first, _, rest = message.partition("\n")
    return f"{first}\n{textwrap.dedent(rest)}" if rest else first


def build_output_of(report: pytest.TestReport) -> str:
    """The last lines of the build output the plugin attached to a failed report (sections
    named "build output..."), so the report shows why a build failed."""
    texts = [text for name, text in report.sections if name.startswith("build output")]
    if not texts:
        return ""
    lines = "\n\n".join(texts).splitlines()
    return "\n".join(lines[-MAX_OUTPUT_LINES:])


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
    """A test being reported. Until its call phase says otherwise it did not pass: a test that never
    got there (interrupted, its worker crashed) is an ERROR, never a pass."""

    check: str
    app: str
    outcome: str = "error"
    reason: str = NOT_FINISHED
    duration: float = 0.0
    output: str = ""


class Progress(Protocol):
    """Told what was selected, then each record as it is made (conformance.progress.GroupProgress)."""

    def expect(self, nodeids: Iterable[str]) -> None: ...

    def __call__(self, record: Record) -> None: ...


class ResultCollector:
    """A pytest plugin object recording every test as a `Record`, in collection order.

    Under pytest-xdist it runs in the controller, which collects nothing: the workers name each test
    (the plugin's `bpconform_check` on each report) and say the collection order, so the records come
    out as in a serial run.
    """

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress  # told the selection and each record as it is made (`bpconform run`'s lines)
        self.records: list[Record] = []
        self.unused_snapshots: list[str] = []
        self.failed_snapshots: list[str] = []
        self._names: dict[str, tuple[str, str]] = {}
        self._order: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        self._namer = CheckNamer()
        self.selected: int | None = None
        self.deselected: int | None = None

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
        self.selected = len(items)
        self.deselected = self.deselected or 0
        if self.progress is not None:
            self.progress.expect([item.nodeid for item in items])

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """-k, -m, --lf and --deselect all report what they leave out here (not under xdist, where
        the workers collect: see `pytest_testnodedown`)."""
        self.deselected = (self.deselected or 0) + len(items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """(xdist controller) Every worker collects the same tests; the first one's order is the order."""
        if not self._order:
            self._order = {nodeid: index for index, nodeid in enumerate(ids)}
            self.selected = len(ids)
            if self.progress is not None:
                self.progress.expect(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """(xdist controller) A worker ended; it says in its workeroutput how many tests it deselected
        (every worker collects the whole suite, so they agree)."""
        output = getattr(node, "workeroutput", None) or {}
        if isinstance(output.get(DESELECTED_KEY), int):
            self.deselected = max(self.deselected or 0, output[DESELECTED_KEY])

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            where = report.nodeid or "collection"
            self.records.append(Record(f"collect {where}", NO_APP, "error", failure_reason(report), 0.0, where))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pending = self._pending.get(report.nodeid)
        if pending is None:
            pending = self._pending[report.nodeid] = _Pending(*self._name_of(report))
        pending.duration += report.duration
        if report.failed:
            pending.output = build_output_of(report) or pending.output
        if report.when == "setup":
            if report.failed and getattr(report, BUILD_FAILED_ATTR, False):
                pending.outcome, pending.reason = "failed", failure_reason(report)
            elif report.failed:
                pending.outcome, pending.reason = "error", _error_reason(report)
            elif report.skipped:
                pending.outcome, pending.reason = "skipped", skip_reason(report)
        elif report.when == "call":
            if hasattr(report, "wasxfail") and not report.failed:
                pending.outcome = "skipped" if report.skipped else "passed"
                pending.reason = skip_reason(report) if report.skipped else ""
            elif report.failed and getattr(report, ERROR_ATTR, None):
                pending.outcome, pending.reason = "error", _error_reason(report)
            elif report.failed:
                pending.outcome, pending.reason = "failed", failure_reason(report)
            elif report.skipped:
                pending.outcome, pending.reason = "skipped", skip_reason(report)
            else:
                pending.outcome, pending.reason = "passed", ""
        elif report.when == "teardown" and report.failed and pending.outcome in ("passed", "skipped"):
            pending.outcome, pending.reason = "error", "teardown: " + _error_reason(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self._finish(nodeid)

    def _finish(self, nodeid: str) -> None:
        pending = self._pending.pop(nodeid, None)
        if pending is not None:
            duration = round(pending.duration, 3)
            outcome, reason, output = pending.outcome, pending.reason, pending.output
            record = Record(pending.check, pending.app, outcome, reason, duration, nodeid, output)
            self.records.append(record)
            if self.progress is not None:
                self.progress(record)

    def _close(self) -> None:
        for nodeid in list(self._pending):  # e.g. the test an xdist worker crashed in: reported, never finished
            self._finish(nodeid)
        # Collection errors (no order) first, as in a serial run; then tests in collection order.
        self.records.sort(key=lambda record: self._order.get(record.nodeid, -1))

    def close_after_crash(self) -> None:
        """pytest crashed before its session finished: keep what was recorded."""
        self._close()

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Any:
        """Records are closed before any other plugin's session finish (one of them may crash);
        snapshot findings are read after them (syrupy makes its report there)."""
        self._close()
        try:
            return (yield)
        finally:
            self.unused_snapshots, self.failed_snapshots = _syrupy_findings(session.config)
            self._write_records_file(session.config)

    def _write_records_file(self, config: pytest.Config) -> None:
        target = os.environ.get(RECORDS_ENV)
        if target and config.pluginmanager.get_plugin("bpconform-collector") is self:
            data = {
                "records": [asdict(record) for record in self.records],
                "snapshots": {"unused": self.unused_snapshots, "failed": self.failed_snapshots},
                "selection": {"selected": self.selected, "deselected": self.deselected},
            }
            Path(target).write_text(json.dumps(data, indent=2))


def _error_reason(report: pytest.TestReport) -> str:
    """The message of an ERROR: what the plugin said about it (e.g. a hint), then the failure."""
    said = getattr(report, ERROR_ATTR, None)
    message = re.sub(r"^conformance\.errors\.\w+: ", "", failure_reason(report))
    if not isinstance(said, str) or not said or said in message:
        return message
    return f"{said}: {message}" if "\n" not in said else f"{said}\n{message}"


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
    """Loaded with `-p conformance.results` in a child run: collect and write records to a file
    (in the xdist controller only: each worker sees only its share of the tests)."""
    in_worker = hasattr(config, "workerinput")
    if os.environ.get(RECORDS_ENV) and not in_worker and not config.pluginmanager.has_plugin("bpconform-collector"):
        config.pluginmanager.register(ResultCollector(_progress_from_env()), "bpconform-collector")


def _progress_from_env() -> Progress | None:
    """`bpconform run`'s lean output for a run in a subprocess: its stdout (pytest's) goes to the log,
    the progress lines to its stderr, which is the console's."""
    from conformance.progress import PROGRESS_ENV, GroupProgress

    if not os.environ.get(PROGRESS_ENV):
        return None
    stderr = sys.stderr  # now, while pytest captures nothing: the console's

    def say(line: str) -> None:
        print(f"bpconform run: {line}", file=stderr, flush=True)

    return GroupProgress(say)
