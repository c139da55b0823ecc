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

# A worker's children are not workers: a `bpconform run` or pytest started by a test must see the
# environment it sees in a serial run (else it would take the worker's name into its session id, or
# an inner xdist run would think itself a worker). This worker's own session id is already fixed
# (conformance.engine reads these at import, before this file).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        os.environ.pop(_name, None)


def _rank(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first, each kept whole and in its own order (a stable sort)."""
    items.sort(key=_rank)
