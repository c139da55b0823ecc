"""`bpconform run`'s console progress: a line per finished check group and per app's first result."""

from __future__ import annotations

from conformance.progress import GroupProgress
from conformance.results import NO_APP, Record

SUITE = "conformance/suite"


def _record(module: str, check: str, app: str, outcome: str = "passed") -> Record:
    return Record(check=check, app=app, outcome=outcome, nodeid=f"{SUITE}/test_{module}.py::{check}[{app}]")


def test_a_group_line_comes_when_its_last_check_ends_and_an_app_line_with_its_first() -> None:
    lines: list[str] = []
    now = iter([0.0, 5.0, 70.0, 75.0, 200.0])
    progress = GroupProgress(lines.append, clock=lambda: next(now))
    records = [
        _record("profile", "profile_is_valid", NO_APP),
        _record("layers", "layer_types", "minimal"),
        _record("layers", "layer_types", "uv", "failed"),
        _record("launch", "launch_env", "minimal"),
    ]
    progress.expect(record.nodeid for record in records)
    for record in records:
        progress(record)

    assert lines == [
        "4 checks in 3 groups",
        "[1/4] profile  1 passed  (5s)",
        "[2/4] app minimal: first check done  (1m10s)",
        "[3/4] app uv: first check done  (1m15s)",
        "[3/4] layers   1 passed, 1 FAIL  (1m15s)",
        "[4/4] launch   1 passed  (3m20s)",
    ]


def test_one_group_and_one_check_are_singular() -> None:
    lines: list[str] = []
    GroupProgress(lines.append).expect([f"{SUITE}/test_layers.py::test_layer_types[minimal]"])
    assert lines == ["1 check in 1 group"]
    lines.clear()
    GroupProgress(lines.append).expect(
        [f"{SUITE}/test_layers.py::test_layer_types[{app}]" for app in ("minimal", "uv")]
    )
    assert lines == ["2 checks in 1 group"]
