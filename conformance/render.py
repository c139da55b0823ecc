"""Rendering a run's results: the checks x apps table and the reasons, as text and Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from conformance.results import CELL, NO_APP, OUTCOMES, Record, RunResult, count_outcomes

PYTEST_EXIT_MEANINGS = {
    2: "interrupted (Ctrl-C, or errors while collecting the suite; see above)",
    3: "internal error in pytest or a plugin (see the traceback above)",
    4: "usage error: an option was not understood (see above)",
    5: "no checks were selected (does -k match any check?)",
}

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
