"""How `make test` runs this suite: two passes (see the Makefile).

1. The bulk in parallel, `-n 2 --dist loadscope --no-loadscope-reorder -m "not slow and not serial"`:
   a module runs on one worker (its module-scoped builds are made once), and the modules in
   `LONGEST_FIRST` are handed out first, longest first, so the run does not end with one worker
   still in a three-minute module while the other idles.
2. The tests marked `serial`, one at a time, `-m "not slow and serial"`: those whose subject is the
   machine's resources or timing (memory and pids limits, signals and interrupts, timeouts, engine
   faults, concurrent builds, xdist runs of their own). They must pass under load too; running them
   alone keeps a neighbour's build from turning a limit or a signal race into a flake.

A plain `pytest` (serial, any selection) still runs everything in collection order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Modules ordered by their cost in a serial run (tests/durations: reference suite run 210 s, cheap
# mutants 150 s, the drafted profile 125 s, acme 117 s, runtimes' ensurepip 95 s, installed wheel
# 90 s, lock-file apps 40 s, the SBOM check 45 s, under load ~10); the rest follow in collection order.
LONGEST_FIRST = (
    "tests/integration/test_suite_reference.py",
    "tests/mutants/test_mutants.py",
    "tests/test_profile_draft.py",
    "tests/thirdparty/test_acme.py",
    "tests/integration/test_runtimes_docker.py",
    "tests/integration/test_installed_wheel.py",
    "tests/integration/test_sbom_check.py",
    "tests/integration/test_lockfile_apps.py",
)

XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


@pytest.fixture(scope="session", autouse=True)
def _children_of_a_worker_are_not_workers() -> Iterator[None]:
    """A `bpconform run` or pytest that a test starts must see the environment it sees in a serial
    run: else it would take this worker's name into its session id, and an inner xdist run's
    workers would lose theirs. This worker's own session id is already fixed (conformance.engine
    reads these at import). A fixture, not import-time code: this file is also loaded by suite runs
    started from the checkout (`pytest --pyargs conformance.suite`), whose workers need the variables,
    and a fixture of tests/ applies to tests/ only."""
    saved = {name: os.environ.pop(name) for name in XDIST_ENV if name in os.environ}
    yield
    os.environ.update(saved)


def _rank(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first, each kept whole and in its own order (a stable sort); a run without
    any of them (e.g. a suite run from the checkout, which loads this file too) is left as it is."""
    if any(_rank(item) < len(LONGEST_FIRST) for item in items):
        items.sort(key=_rank)
