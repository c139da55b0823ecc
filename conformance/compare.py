"""Comparing two runs: which checks changed outcome between a baseline and a variant.

`--compare SETTING` runs the suite twice, once without and once with a platform setting (the
lifecycle#1393 emulation, or another pack lifecycle image) and lists the checks whose outcome
changed: that is how a lifecycle upgrade is regression-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from conformance.errors import ConformanceError
from conformance.render import summary_line
from conformance.results import CELL, NO_APP, Record, RunResult, count_outcomes

COMPARE_SETTINGS = ("lifecycle-1393", "lifecycle-image=IMAGE")

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
