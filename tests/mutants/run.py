"""Run every mutant through the conformance suite and build the kill matrix.

    python -m tests.mutants.run [--only NAME ...] [--no-baseline] [--from-json reports/mutants.json]

Each mutant gets one `bpconform run` (one suite run at a time: the machine's cores are shared) on a
mutated copy of the reference buildpack, with its report in a temporary directory. The unmodified
buildpack runs first with the default selection: a check that already fails there cannot count as
a kill. Results go to `reports/mutants.json`, `reports/mutants.md` and the marked section of
README.md; the process exits non-zero when a mutant survives or misses an intended check.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.paths import REPO_ROOT
from conformance.tomlcompat import dump_toml, load_toml

from .mutants import DEFAULT_SELECTION, MUTANTS, Mutant, by_name, check_matches, is_expected

REPORTS_DIR = REPO_ROOT / "reports"
README = REPO_ROOT / "README.md"
START_MARKER = "<!-- mutants:start -->"
END_MARKER = "<!-- mutants:end -->"
README_HEADING = "## Regressions the suite catches"
REFERENCE_PROFILE = REPO_ROOT / "conformance" / "profiles" / "reference.toml"
BASELINE = "baseline"

# A failure whose reason is a build that did not finish: the check never got to assert anything.
CRASH = re.compile(r"BuildFailed|building \S+ failed \(exit \d+\)")

# Cell states of one check in one run.
FAIL, CRASHED, PASS, SKIP, NOT_RUN = "fail", "crash", "pass", "skip", "not-run"

# Verdicts of one mutant.
KILLED_INTENDED, KILLED_OTHER, SURVIVED = "killed by intended check", "killed by another check only", "survived"


@dataclass
class CheckResult:
    check: str
    state: str
    reasons: list[str] = field(default_factory=list)


@dataclass
class MutantResult:
    name: str
    description: str
    expected_checks: list[str]
    selection: str
    checks: dict[str, CheckResult]
    wall_time: float
    exit_code: int
    verdict: str = SURVIVED
    intended_failed: list[str] = field(default_factory=list)
    intended_missed: list[str] = field(default_factory=list)
    other_failed: list[str] = field(default_factory=list)
    only_expected: bool = False
    note: str = ""

    @property
    def only_ok(self) -> bool:
        """For an `only_expected` mutant: nothing but the intended checks failed."""
        return not self.other_failed


# ------------------------------------------------------------------------------------------------
# Reading a suite run
# ------------------------------------------------------------------------------------------------


def is_crash(reason: str) -> bool:
    return bool(CRASH.search(reason))


def check_states(records: Iterable[dict[str, Any]]) -> dict[str, CheckResult]:
    """One state per check (over its apps): a real failure beats a crash, which beats pass and skip."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["check"], []).append(record)
    results = {}
    for check, items in grouped.items():
        failing = [r for r in items if r["outcome"] in ("failed", "error")]
        real = [r for r in failing if not is_crash(r.get("reason", ""))]
        if real:
            state = FAIL
        elif failing:
            state = CRASHED
        elif any(r["outcome"] == "passed" for r in items):
            state = PASS
        else:
            state = SKIP
        reasons = [f"[{r['app']}] {r.get('reason', '').splitlines()[0] if r.get('reason') else ''}" for r in failing]
        results[check] = CheckResult(check, state, reasons)
    return results


def classify(result: MutantResult, mutant: Mutant, baseline_failing: set[str]) -> None:
    """Fill in the verdict: a kill counts only for a check that passes on the unmodified buildpack."""
    killed = [c for c, r in result.checks.items() if r.state in (FAIL, CRASHED) and c not in baseline_failing]
    result.intended_failed = [c for c in killed if is_expected(mutant, c) and result.checks[c].state == FAIL]
    result.other_failed = [c for c in killed if c not in result.intended_failed]
    result.intended_missed = [
        expected
        for expected in mutant.expected_checks
        if not any(check_matches(expected, c) for c in result.intended_failed)
    ]
    result.only_expected = mutant.only_expected
    if result.intended_failed:
        result.verdict = KILLED_INTENDED
    elif killed:
        result.verdict = KILLED_OTHER
    else:
        result.verdict = SURVIVED
    if result.exit_code not in (0, 1) and not result.checks:
        result.note = f"the suite run itself failed (exit {result.exit_code})"


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------


def set_key(document: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        document = document.setdefault(key, {})
    document[keys[-1]] = value


def write_profile(mutant: Mutant, directory: Path) -> Path | None:
    """A copy of the reference profile with the mutant's overrides (None when it has none)."""
    if not mutant.profile_overrides:
        return None
    document = load_toml(REFERENCE_PROFILE, what="profile")
    for key, value in mutant.profile_overrides.items():
        set_key(document, key, value)
    path = directory / f"profile-{mutant.name}.toml"
    dump_toml(document, path)
    return path


def suite_command(
    buildpack: Path, report_dir: Path, selection: str, profile: Path | None, extra: Sequence[str]
) -> list[str]:
    command = [sys.executable, "-m", "conformance.cli", "run", "--buildpack", str(buildpack)]
    command += ["--report-dir", str(report_dir), "-k", selection]
    if profile is not None:
        command += ["--profile", str(profile)]
    if extra:
        command += ["--", *extra]
    return command


def run_suite(
    name: str, buildpack: Path, selection: str, work: Path, *, profile: Path | None = None, extra: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], float, int]:
    """One `bpconform run`; returns its records, wall time and exit code (the suite's own output is logged)."""
    report_dir = work / f"report-{name}"
    log_path = work / f"{name}.log"
    command = suite_command(buildpack, report_dir, selection, profile, extra)
    started = time.monotonic()
    with log_path.open("w") as log:
        completed = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    report = report_dir / "report.json"
    records = json.loads(report.read_text())["records"] if report.is_file() else []
    if not records:
        tail = log_path.read_text()[-3000:]
        print(f"  ! no records from the suite run of {name} (exit {completed.returncode}):\n{tail}", file=sys.stderr)
    return records, elapsed, completed.returncode


def run_mutant(mutant: Mutant, work: Path, baseline_failing: set[str]) -> MutantResult:
    directory = work / mutant.name
    directory.mkdir()
    buildpack = mutant.make_copy(directory)
    profile = write_profile(mutant, directory)
    records, elapsed, exit_code = run_suite(
        mutant.name, buildpack, mutant.selection, directory, profile=profile, extra=mutant.pytest_args
    )
    result = MutantResult(
        name=mutant.name,
        description=mutant.description,
        expected_checks=list(mutant.expected_checks),
        selection=mutant.selection,
        checks=check_states(records),
        wall_time=elapsed,
        exit_code=exit_code,
        only_expected=mutant.only_expected,
    )
    classify(result, mutant, baseline_failing)
    return result


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------

LEGEND = (
    "**K** failed, an intended check · k failed, another check · c failed only because a build crashed · "
    "! intended check that did not fail · . passed · s skipped · blank: not selected"
)


def cell(result: MutantResult, check: str, mutant: Mutant | None) -> str:
    state = result.checks.get(check)
    expected = mutant is not None and is_expected(mutant, check)
    if state is None:
        return ""
    if check in result.intended_failed:
        return "**K**"
    if state.state == FAIL:
        return "k"
    if state.state == CRASHED:
        return "c"
    if expected:
        return "!"
    return "." if state.state == PASS else "s"


def ordered_checks(results: Sequence[MutantResult], baseline: MutantResult | None) -> list[str]:
    seen: dict[str, None] = {}
    for result in ([baseline] if baseline else []) + list(results):
        for check in result.checks:
            seen.setdefault(check, None)
    return list(seen)


def totals(results: Sequence[MutantResult]) -> dict[str, int]:
    counts = {KILLED_INTENDED: 0, KILLED_OTHER: 0, SURVIVED: 0}
    for result in results:
        counts[result.verdict] += 1
    counts["total"] = len(results)
    return counts


def _mutant_of(name: str) -> Mutant | None:
    try:
        return by_name(name)
    except KeyError:
        return None


def summary_rows(results: Sequence[MutantResult]) -> list[list[str]]:
    rows = []
    for index, result in enumerate(results, 1):
        verdict = result.verdict
        if result.only_expected and result.verdict == KILLED_INTENDED:
            verdict += " (and only it)" if result.only_ok else " (but not only it)"
        rows.append(
            [
                str(index),
                result.name,
                verdict,
                ", ".join(result.intended_failed) or "-",
                ", ".join(result.intended_missed) or "-",
                ", ".join(result.other_failed) or "-",
                f"{result.wall_time:.0f}s",
            ]
        )
    return rows


SUMMARY_HEADER = [
    "#",
    "mutant",
    "verdict",
    "intended checks failed",
    "intended, not failed",
    "other checks failed",
    "time",
]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(item)) for item in column) for column in zip(header, *rows, strict=False)]

    def line(items: Sequence[str]) -> str:
        return "  ".join(str(item).ljust(width) for item, width in zip(items, widths, strict=False)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def matrix_rows(results: Sequence[MutantResult], baseline: MutantResult | None) -> list[list[str]]:
    rows = []
    for check in ordered_checks(results, baseline):
        base = baseline.checks.get(check) if baseline else None
        base_cell = "" if base is None else {PASS: ".", SKIP: "s"}.get(base.state, "FAIL")
        rows.append([check, base_cell, *(cell(r, check, _mutant_of(r.name)) for r in results)])
    return rows


def matrix_header(results: Sequence[MutantResult]) -> list[str]:
    return ["check", "base", *(str(index) for index in range(1, len(results) + 1))]


def totals_line(results: Sequence[MutantResult], wall_time: float) -> str:
    counts = totals(results)
    return (
        f"{counts['total']} mutants: {counts[KILLED_INTENDED]} killed by an intended check, "
        f"{counts[KILLED_OTHER]} killed by another check only, {counts[SURVIVED]} survived "
        f"(wall time {wall_time / 60:.1f} min)"
    )


def render_markdown(results: Sequence[MutantResult], baseline: MutantResult | None, wall_time: float) -> str:
    parts = [
        "Generated by `make mutants` (`tests/mutants/`): each mutant is a copy of `buildpack_under_test/` with one"
        " promise broken (or, for the last one, a platform setting), run through the suite; do not edit by hand.",
        "",
        f"**{totals_line(results, wall_time)}.**",
        "",
        f'Default selection of each run: `-k "{DEFAULT_SELECTION}"` — every check on the default app `minimal`'
        " plus the caching, reproducibility, bogus-env and upgrade checks (the error checks and the other sample"
        " apps are left out: no mutant touches those paths). A check counts as a kill only if it passes on the"
        " unmodified buildpack (column *base*). A mutant with its own selection names it below; the baseline"
        " runs the union of all selections.",
        "",
        markdown_table(SUMMARY_HEADER, summary_rows(results)),
        "",
        "Mutants:",
        "",
    ]
    for index, result in enumerate(results, 1):
        mutant = _mutant_of(result.name)
        why = f" Expected: {', '.join(result.expected_checks)} ({mutant.why_expected})." if mutant else ""
        own = f' Selection: `-k "{result.selection}"`.' if result.selection != DEFAULT_SELECTION else ""
        parts.append(f"{index}. `{result.name}`: {result.description}.{why}{own}")
    parts += [
        "",
        "Kill matrix (checks x mutants):",
        "",
        LEGEND,
        "",
        markdown_table(matrix_header(results), matrix_rows(results, baseline)),
    ]
    return "\n".join(parts) + "\n"


def render_text(results: Sequence[MutantResult], baseline: MutantResult | None, wall_time: float) -> str:
    parts = [
        text_table(SUMMARY_HEADER, summary_rows(results)),
        "",
        text_table(
            matrix_header(results), [[c.replace("**", "") for c in row] for row in matrix_rows(results, baseline)]
        ),
        "",
        LEGEND.replace("**", ""),
        "",
        totals_line(results, wall_time),
    ]
    return "\n".join(parts)


def update_readme(readme: Path, body: str) -> None:
    """Replace the text between the markers (adding heading and markers at the end the first time)."""
    text = readme.read_text(encoding="utf-8")
    section = f"{START_MARKER}\n{body.rstrip()}\n{END_MARKER}"
    if START_MARKER in text and END_MARKER in text:
        before, rest = text.split(START_MARKER, 1)
        _, after = rest.split(END_MARKER, 1)
        text = before + section + after
    else:
        text = text.rstrip("\n") + f"\n\n{README_HEADING}\n\n{section}\n"
    readme.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------------


def to_json(results: Sequence[MutantResult], baseline: MutantResult | None, wall_time: float) -> dict[str, Any]:
    return {
        "totals": totals(results),
        "wall_time": round(wall_time, 1),
        "default_selection": DEFAULT_SELECTION,
        "baseline": asdict(baseline) if baseline else None,
        "mutants": [asdict(result) for result in results],
    }


def result_from_json(data: dict[str, Any]) -> MutantResult:
    checks = {name: CheckResult(**item) for name, item in data.pop("checks").items()}
    return MutantResult(checks=checks, **data)


def from_json(data: dict[str, Any]) -> tuple[list[MutantResult], MutantResult | None, float]:
    baseline = result_from_json(dict(data["baseline"])) if data.get("baseline") else None
    return [result_from_json(dict(item)) for item in data["mutants"]], baseline, float(data.get("wall_time", 0))


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def baseline_selection(mutants: Sequence[Mutant]) -> str:
    """The -k of the baseline run: every selection of the chosen mutants, so a check that already fails
    on the unmodified buildpack (in any mutant's selection) can never count as a kill."""
    selections = list(dict.fromkeys(mutant.selection for mutant in mutants)) or [DEFAULT_SELECTION]
    return selections[0] if len(selections) == 1 else " or ".join(f"({selection})" for selection in selections)


def run_baseline(work: Path, selection: str, report: Path | None = None) -> MutantResult:
    """The unmodified buildpack with the default selection, or a report.json of such a run."""
    if report is not None:
        data = json.loads(report.read_text())
        return MutantResult(
            BASELINE,
            f"the unmodified reference buildpack ({report})",
            [],
            selection,
            check_states(data["records"]),
            float(data.get("wall_time", 0)),
            int(data.get("exit_code", 0)),
        )
    directory = work / BASELINE
    directory.mkdir()
    records, elapsed, exit_code = run_suite(BASELINE, REPO_ROOT / "buildpack_under_test", selection, directory)
    return MutantResult(
        BASELINE, "the unmodified reference buildpack", [], selection, check_states(records), elapsed, exit_code
    )


def reclassify(results: Sequence[MutantResult], baseline: MutantResult | None) -> None:
    """Apply the current expectations in mutants.py to stored check states (the mutants are unchanged)."""
    failing = {c for c, r in (baseline.checks if baseline else {}).items() if r.state in (FAIL, CRASHED)}
    for result in results:
        mutant = _mutant_of(result.name)
        if mutant is not None:
            result.expected_checks = list(mutant.expected_checks)
            classify(result, mutant, failing)


def write_outputs(
    results: Sequence[MutantResult], baseline: MutantResult | None, wall_time: float, reports: Path, readme: Path | None
) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "mutants.json").write_text(json.dumps(to_json(results, baseline, wall_time), indent=2) + "\n")
    markdown = render_markdown(results, baseline, wall_time)
    (reports / "mutants.md").write_text("# Mutation kill matrix\n\n" + markdown)
    if readme is not None:
        update_readme(readme, markdown)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutant (repeatable)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmodified buildpack")
    parser.add_argument(
        "--baseline-report",
        type=Path,
        help="report.json of a recent run of the unmodified buildpack with the default selection",
    )
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR, help="where mutants.json/.md go")
    parser.add_argument("--no-readme", action="store_true", help="do not regenerate the README section")
    parser.add_argument("--from-json", type=Path, help="re-render from a previous mutants.json, running nothing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies and suite reports")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    readme = None if args.no_readme else README
    if args.from_json:
        results, baseline, wall_time = from_json(json.loads(args.from_json.read_text()))
        reclassify(results, baseline)
    else:
        chosen = [by_name(name) for name in args.only] if args.only else list(MUTANTS)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="bpconform-mutants-"))
        print(f"mutants: working in {work}", flush=True)
        baseline = None
        if not args.no_baseline:
            selection = baseline_selection(chosen)
            print(f"mutants: baseline (unmodified buildpack), -k {selection!r}", flush=True)
            baseline = run_baseline(work, selection, args.baseline_report)
            failing = [c for c, r in baseline.checks.items() if r.state in (FAIL, CRASHED)]
            print(
                f"  {baseline.wall_time:.0f}s, {len(baseline.checks)} checks, failing on baseline: {failing or 'none'}"
            )
        baseline_failing = {c for c, r in (baseline.checks if baseline else {}).items() if r.state in (FAIL, CRASHED)}
        results = []
        for index, mutant in enumerate(chosen, 1):
            print(f"mutants: [{index}/{len(chosen)}] {mutant.name}: {mutant.description}", flush=True)
            result = run_mutant(mutant, work, baseline_failing)
            print(
                f"  {result.wall_time:.0f}s: {result.verdict}; intended failed {result.intended_failed or '-'};"
                f" others failed {result.other_failed or '-'}",
                flush=True,
            )
            results.append(result)
        wall_time = time.monotonic() - started
        if args.keep:
            print(f"mutants: kept {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    write_outputs(results, baseline, wall_time, args.reports, readme)
    print()
    print(render_text(results, baseline, wall_time))
    print(f"\nwrote {args.reports / 'mutants.json'}, {args.reports / 'mutants.md'}" + (f", {readme}" if readme else ""))
    bad = [r for r in results if r.verdict != KILLED_INTENDED or (r.only_expected and not r.only_ok)]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
