"""The full conformance suite three times in a row: the same outcome for every check, no snapshot drift.

Slow (three full suite runs): `make soak` only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conformance.paths import REPO_ROOT

from .conftest import NOTES, run_cli, take_inventory

RUNS = 3
RUN_TIMEOUT = 1800.0


def _snapshot_digests() -> dict[str, str]:
    root = REPO_ROOT / "snapshots"
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _outcomes(report: dict) -> dict[str, str]:
    return {f"{r['nodeid']}[{r['app']}]": r["outcome"] for r in report["records"]}


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.docker
def test_full_suite_three_times_gives_identical_results_and_snapshots(tmp_path: Path, stack, record_property) -> None:
    snapshots_before = _snapshot_digests()
    reports, walls = [], []
    for number in range(1, RUNS + 1):
        report_dir = tmp_path / f"run-{number}"
        run = run_cli(
            ["run", "--buildpack", "buildpack_under_test", "--report-dir", str(report_dir)],
            tmp_path,
            timeout=RUN_TIMEOUT,
        )
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
        report = json.loads((report_dir / "report.json").read_text())
        reports.append(report)
        walls.append(report["wall_time"])
        NOTES.append(
            f"suite run {number}: exit {run.exit_code}, {report['totals']}, wall {report['wall_time']:.0f}s, "
            f"snapshots {report['snapshots']}"
        )
        leftover = take_inventory(None, run.session)
        assert (leftover.containers, leftover.volumes, leftover.images) == (frozenset(),) * 3, leftover
        assert list(run.work_root.iterdir()) == [], "the suite left build work dirs behind"
        assert _snapshot_digests() == snapshots_before, f"run {number} changed snapshots/"
    record_property("suite_wall_times_s", walls)

    first = _outcomes(reports[0])
    assert first, "the suite reported no checks"
    for number, report in enumerate(reports[1:], start=2):
        differing = {k: (first.get(k), v) for k, v in _outcomes(report).items() if first.get(k) != v}
        differing.update({k: (v, None) for k, v in first.items() if k not in _outcomes(report)})
        assert differing == {}, f"run {number} differs from run 1: {differing}"
        assert report["exit_code"] == reports[0]["exit_code"]
        assert report["snapshots"] == reports[0]["snapshots"]
