"""Collecting results: each test of a suite run as a `Record` (check, app, outcome, reason).

A maintainer gating a release wants one answer per promise per app ("is the layer layout right for
the pinned-311 app?"), not a scroll of pytest output; so `ResultCollector`, a pytest plugin object,
records each test in those terms, in collection order, also under pytest-xdist. Loaded with
`-p conformance.results` in a child run (`RECORDS_ENV` set), it writes its records to a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

RECORDS_ENV = "BPCONFORM_RECORDS_FILE"  # set for a run in a subprocess: where its collector writes

OUTCOMES = ("passed", "failed", "error", "skipped")
CELL = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}
NO_APP = "-"
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
    """Loaded with `-p conformance.results` in a child run: collect and write records to a file
    (in the xdist controller only: each worker sees only its share of the tests)."""
    in_worker = hasattr(config, "workerinput")
    if os.environ.get(RECORDS_ENV) and not in_worker and not config.pluginmanager.has_plugin("bpconform-collector"):
        config.pluginmanager.register(ResultCollector(), "bpconform-collector")
