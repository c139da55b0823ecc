"""Rendering a run's results: the checks x apps table and the reasons, as text and Markdown."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

from conformance.results import CELL, NO_APP, OUTCOMES, Record, RunResult, Verdict, count_outcomes

WRAP_WIDTH = 110
ERRORS_HEADING = "Errors (the check could not run: not a verdict on the buildpack)"
MAX_TERMINAL_LINES = 40
TERMINAL_OUTPUT_LINES = 20  # of one reason in the terminal; report.md always has all of it
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
        ("Failures", [r for r in records if r.outcome == "failed"]),
        (
            "Errors (the check could not run: not a verdict on the buildpack)",
            [r for r in records if r.outcome == "error"],
        ),
        ("Skipped", [r for r in records if r.outcome == "skipped"]),
    ]


def selection_text(result: RunResult) -> str:
    """ "98 of 98 checks ran" / "12 of 98 checks ran (-k EXPR)"."""
    ran = len(result.records)
    how = f" (-k {result.settings['k']})" if result.subset and result.settings.get("k") else ""
    if result.deselected is None:  # not known (e.g. a report made from records alone)
        return f"{ran} check{'s' if ran != 1 else ''} ran{how}"
    exist = (result.selected if result.selected is not None else ran) + result.deselected
    return f"{ran} of {exist} check{'s' if exist != 1 else ''} ran{how}"


def summary_line(result: RunResult) -> str:
    """The verdict line: the verdict, how much of the suite ran, the outcomes, the time."""
    totals = count_outcomes(result.records)
    verdict = result.verdict
    counts = ", ".join(f"{totals[outcome]} {outcome}" for outcome in OUTCOMES)
    line = f"{verdict.value}: {selection_text(result)}: {counts}, in {result.wall_time:.1f}s"
    if verdict is Verdict.PARTIAL and result.snapshots_recorded:
        line += " (snapshots were recorded, not compared: review them, then run without --snapshot-update)"
    elif verdict is Verdict.PARTIAL:
        line += " (a subset of the suite: not a verdict on the whole profile)"
    elif verdict is Verdict.ABORTED:
        line += f" (stopped by {result.aborted or 'an interrupt'}: no verdict)"
    elif verdict is Verdict.ERROR:
        line += " (checks could not run: fix the set-up errors above, then run again)"
    return line


def wrap(text: str, width: int = WRAP_WIDTH) -> list[str]:
    """Every line of `text`, long ones wrapped (never cut); indentation is kept."""
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        indent = line[: len(line) - len(line.lstrip())]
        pieces = textwrap.wrap(
            line,
            width=width,
            subsequent_indent=indent + "  ",
            break_long_words=True,
            break_on_hyphens=False,
            drop_whitespace=False,
        )
        lines.extend(piece.rstrip() for piece in pieces) if pieces else lines.append("")
    return lines


def render_text_report(result: RunResult) -> str:
    parts = [title(result), "", render_table(result.records)]
    for heading, records in _reason_sections(result.records):
        if records:
            parts += ["", f"{heading}:"]
            for record in records:
                parts.append(f"  {CELL.get(record.outcome, record.outcome)} {record.label}")
                lines = wrap(record.reason or "(no reason given)", WRAP_WIDTH - 6)
                if len(lines) > MAX_TERMINAL_LINES:
                    hidden = len(lines) - MAX_TERMINAL_LINES
                    lines = [*lines[:MAX_TERMINAL_LINES], f"... ({hidden} more lines in report.md)"]
                parts += [f"      {line}" for line in lines]
    parts += _build_output_lines(result.records)
    parts += _snapshot_lines(result, bullet="  ")
    if result.exit_code not in (0, 1) and not result.aborted:
        meaning = PYTEST_EXIT_MEANINGS.get(result.exit_code, "see its output above")
        parts += ["", f"pytest exited with code {result.exit_code}: {meaning}"]
    parts += ["", summary_line(result)]
    return "\n".join(parts)


LOG_TAIL_LINES = 20  # of pytest's output, in the lean report, when pytest itself failed (exit 2-4)


def render_console_report(result: RunResult, pytest_log: Path) -> str:
    """`bpconform run`'s default output after its progress lines: the title, every failure and error in
    full (the whole reason, the end of the build output), one line for the skips, the snapshot
    findings, and the verdict. The table of checks x apps is in report.md (and `-v` prints it);
    pytest's own output is in `pytest_log`, whose end is shown when pytest itself failed."""
    parts = [title(result)]
    for heading, records in _reason_sections(result.records):
        if records and heading != "Skipped":
            parts += ["", f"{heading}:"]
            for record in records:
                parts.append(f"  {CELL.get(record.outcome, record.outcome)} {record.label}")
                parts += [f"      {line}" for line in wrap(record.reason or "(no reason given)", WRAP_WIDTH - 6)]
    parts += _build_output_lines(result.records)
    skipped = sum(1 for record in result.records if record.outcome == "skipped")
    if skipped:
        parts += ["", f"{skipped} check{'s' if skipped != 1 else ''} skipped: the reasons are in report.md"]
    parts += _snapshot_lines(result, bullet="  ")
    if result.exit_code not in (0, 1) and not result.aborted:
        meaning = PYTEST_EXIT_MEANINGS.get(result.exit_code, "see its output above").replace(
            "above", f"in {pytest_log}"
        )
        parts += ["", f"pytest exited with code {result.exit_code}: {meaning}"]
        tail = _log_tail(pytest_log) if result.exit_code in (2, 3) else []
        if tail:
            parts += [f"The end of {pytest_log}:", *(f"  | {line}" for line in tail)]
    parts += ["", summary_line(result)]
    return "\n".join(parts)


def _log_tail(path: Path) -> list[str]:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return []
    return lines[-LOG_TAIL_LINES:]


def _build_output_lines(records: Sequence[Record]) -> list[str]:
    """The end of each failed build's output, once per build (the same shared build fails many checks)."""
    lines: list[str] = []
    shown: set[str] = set()
    for record in records:
        if record.output and record.outcome in ("failed", "error") and record.output not in shown:
            shown.add(record.output)
            tail = record.output.splitlines()[-TERMINAL_OUTPUT_LINES:]
            lines += ["", f"Build output for {record.label} (last {len(tail)} lines; more in report.md):"]
            lines += [f"  | {line}" for line in tail]
    return lines


def _fenced(text: str) -> list[str]:
    """A reason as a fenced block: a snapshot diff as `diff` (readable, + received / - snapshot),
    anything else as wrapped text. Backticks in the text cannot end the fence."""
    lines = text.splitlines() or [""]
    if lines[0].startswith("assert [+ received] == [- snapshot]"):
        body = [
            "# - snapshot (expected)   + received (this build)",
            *(line[2:] if line.startswith("  ") else line for line in lines[1:]),
        ]
        kind = "diff"
    else:
        body, kind = wrap(text), "text"
    fence = "~~~~" if any(line.lstrip().startswith("```") for line in body) else "```"
    return [f"{fence}{kind}", *body, fence]


def render_markdown_report(result: RunResult) -> str:
    settings = "\n".join(f"- {key}: `{value}`" for key, value in result.settings.items() if value not in (None, []))
    parts = [
        f"# {title(result)}",
        "",
        f"**{summary_line(result)}**",
        "",
        settings,
        "",
        render_markdown_table(result.records),
    ]
    outputs_shown: dict[str, str] = {}
    for heading, records in _reason_sections(result.records):
        if not records:
            continue
        parts += ["", f"## {heading}", ""]
        for record in records:
            if record.outcome == "skipped":
                parts.append(f"- `{record.label}`: {(record.reason or '(no reason given)').replace(chr(10), ' / ')}")
                continue
            parts += [f"### {CELL.get(record.outcome, record.outcome)} `{record.label}`", ""]
            parts += [*_fenced(record.reason or "(no reason given)"), ""]
            if record.output:
                if record.output in outputs_shown:
                    parts += [f"Build output: the same as for `{outputs_shown[record.output]}` above.", ""]
                else:
                    outputs_shown[record.output] = record.label
                    count = len(record.output.splitlines())
                    parts += [f"<details><summary>build output (last {count} lines)</summary>", ""]
                    parts += [*_fenced_raw(record.output), "", "</details>", ""]
    snapshot_lines = _snapshot_lines(result, bullet="- ")
    if snapshot_lines:
        parts += ["", "## Snapshots", *snapshot_lines[1:]]
    return "\n".join(parts).replace("\n\n\n", "\n\n") + "\n"


def _fenced_raw(text: str) -> list[str]:
    fence = "~~~~" if "```" in text else "```"
    return [f"{fence}text", *text.splitlines(), fence]


def title(result: RunResult) -> str:
    """Names the buildpack by id and version (and the directory), the profile and the stack."""
    profile = result.settings.get("profile", "?")
    identities = result.settings.get("buildpack_ids") or []
    buildpacks = ", ".join(identities) or ", ".join(str(b) for b in result.settings.get("buildpacks", [])) or "?"
    stack = result.settings.get("stack")
    return f"Conformance report: {buildpacks} (profile {profile}" + (f", stack {stack})" if stack else ")")


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
