"""`bpconform run`'s progress lines: one per check group (a module of the suite) when its last check ends,
and one per sample app when its first check ends (which is when its build is done: a full run
would otherwise be silent for minutes while the first apps build).

The full pytest output of a run goes to `<report dir>/pytest.log`; the console gets only these
lines, then the failures and the verdict. A group is the module (`test_layers.py` -> `layers`),
so a line means "every check of this kind, for every app, is done"; under pytest-xdist groups
end in any order, each line says how far the whole run is.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

from conformance.results import CELL, NO_APP, OUTCOMES, Progress, Record

PROGRESS_ENV = "BPCONFORM_PROGRESS"  # set for a run in a subprocess: its collector prints progress to stderr


def group_of(nodeid: str) -> str:
    """`.../conformance/suite/test_layers.py::test_layer_types[minimal]` -> `layers`."""
    return PurePosixPath(nodeid.split("::", 1)[0]).stem.removeprefix("test_") or "collection"


def describe(counts: Counter[str]) -> str:
    """`9 passed, 1 FAIL, 2 ERROR` (outcomes that did not happen are left out; failures shout)."""
    parts = []
    for outcome in OUTCOMES:
        if counts[outcome]:
            word = CELL[outcome] if outcome in ("failed", "error") else outcome
            parts.append(f"{counts[outcome]} {word}")
    return ", ".join(parts) or "nothing ran"


class GroupProgress:
    """Fed every record as it is made (`ResultCollector.on_record`); says a line when a group is complete."""

    def __init__(self, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._say = say
        self._clock = clock
        self._started = clock()
        self._expected: Counter[str] = Counter()
        self._done: dict[str, Counter[str]] = {}
        self._total = 0
        self._finished = 0
        self._width = 0
        self._apps_seen: set[str] = set()

    def expect(self, nodeids: Iterable[str]) -> None:
        """The selected tests, once known (after collection; from the first xdist worker's)."""
        if self._total:
            return
        self._expected = Counter(group_of(nodeid) for nodeid in nodeids)
        self._total = sum(self._expected.values())
        self._width = max((len(group) for group in self._expected), default=0)
        self._say(f"{_count(self._total, 'check')} in {_count(len(self._expected), 'group')}")

    def __call__(self, record: Record) -> None:
        if not record.nodeid or not self._total:
            return
        group = group_of(record.nodeid)
        counts = self._done.setdefault(group, Counter())
        counts[record.outcome] += 1
        self._finished += 1
        lines = []
        if record.app != NO_APP and record.app not in self._apps_seen:
            self._apps_seen.add(record.app)
            lines.append(f"app {record.app}: first check done")
        if sum(counts.values()) == self._expected.get(group):
            lines.append(f"{group:<{self._width}}  {describe(counts)}")
        if lines:
            where = f"[{self._finished:>{len(str(self._total))}}/{self._total}]"
            elapsed = _duration(self._clock() - self._started)
            for line in lines:
                self._say(f"{where} {line}  ({elapsed})")


class NoteIfSelected:
    """Says `note` once the selection is known, only when a selected check is in one of `groups`
    (the snapshot warning: pointless for `-k package_managers`); passes everything on to `inner`."""

    def __init__(self, say: Callable[[str], None], note: str, groups: Iterable[str], inner: Progress | None) -> None:
        self._say = say
        self._note = note
        self._groups = frozenset(groups)
        self._inner = inner
        self._said = False

    def expect(self, nodeids: Iterable[str]) -> None:
        nodeids = list(nodeids)
        if not self._said and any(group_of(nodeid) in self._groups for nodeid in nodeids):
            self._said = True
            self._say(self._note)
        if self._inner is not None:
            self._inner.expect(nodeids)

    def __call__(self, record: Record) -> None:
        if self._inner is not None:
            self._inner(record)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
