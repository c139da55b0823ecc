"""Under pytest-xdist every check of one chain of builds runs in one worker (`conformance.scheduling`).

The fixture suite `tests/integration/fixtures/chain_suite.py` stands in for the package-manager
checks and counts its chains' builds; on the scheduling before this (xdist's `--dist load`), each
of its two chains is built by both workers. The real suite's chains, with Docker, are in
tests/integration/test_suite_xdist.py (slow), the installed wheel's in test_installed_wheel.py.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.paths import REPO_ROOT
from conformance.scheduling import (
    SCOPE_PREFIX,
    ChainScheduling,
    chain_key,
    map_path,
    read_chain_maps,
    write_chain_map,
)

pytest_plugins = ["pytester"]

CHAIN_SUITE = REPO_ROOT / "tests" / "integration" / "fixtures" / "chain_suite.py"


def _run(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """Run the fixture suite; (chain -> the workers that built it, one entry per build; test -> workers)."""
    pytester.makepyfile(test_chains=CHAIN_SUITE.read_text())
    builds = tmp_path / "builds.txt"
    pytester._monkeypatch.setenv("CHAIN_BUILDS", str(builds))
    pytester._monkeypatch.setenv("BPCONFORM_CACHE", str(tmp_path / "cache"))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "BPCONFORM_KEEP"):
        pytester._monkeypatch.delenv(name, raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", *args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    built: dict[str, list[str]] = collections.defaultdict(list)
    for line in builds.read_text().splitlines():
        key, worker = line.split()
        built[key].append(worker)
    ran: dict[str, set[str]] = collections.defaultdict(set)
    for worker, nodeid in re.findall(r"\[(gw\d+)\] \[\s*\d+%\] PASSED (\S+)", result.stdout.str()):
        ran[nodeid.split("::")[-1]].add(worker)
    return dict(built), dict(ran)


SUITE_RUN = ("--buildpack", str(REPO_ROOT / "buildpack_under_test"))


def test_each_chain_is_built_once_and_the_other_checks_spread(pytester: pytest.Pytester, tmp_path: Path) -> None:
    built, ran = _run(pytester, tmp_path, "-n", "2", *SUITE_RUN)
    assert {key: len(workers) for key, workers in built.items()} == {"a": 1, "b": 1}, (
        f"each chain must be built by one worker, once: {built}"
    )
    assert built["a"] != built["b"], f"the two chains should run side by side on the two workers: {built}"
    others = set().union(*(workers for test, workers in ran.items() if test.startswith("test_other")))
    assert others == {"gw0", "gw1"}, f"the checks in no chain must still spread over both workers: {ran}"
    assert not list((tmp_path / "cache").glob("test-sessions/*-shared")), "the run's shared dir must be removed"


def test_without_xdist_each_chain_is_built_once_in_the_one_process(pytester: pytest.Pytester, tmp_path: Path) -> None:
    built, _ = _run(pytester, tmp_path, *SUITE_RUN)
    assert built == {"a": ["main"], "b": ["main"]}


def test_only_suite_runs_under_load_get_the_chain_scheduler(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Without --buildpack (not a suite run) xdist's own `load` schedules, and splits the chains:
    which is also what the suite run got before the chain scheduler."""
    built, _ = _run(pytester, tmp_path, "-n", "2")
    assert sorted(built["a"]) == sorted(built["b"]) == ["gw0", "gw1"], built


# -- the pieces ------------------------------------------------------------------------------------


def test_the_map_round_trip_and_a_missing_map(tmp_path: Path) -> None:
    write_chain_map(tmp_path, "gw0", {"s.py::test_x[uv]": "uv"})
    write_chain_map(tmp_path, "gw1", {"s.py::test_x[uv]": "uv", "s.py::test_y": "poetry"})
    assert json.loads(map_path(tmp_path, "gw0").read_text()) == {"s.py::test_x[uv]": "uv"}
    (tmp_path / "chains" / "gw2.json").write_text("{not json")
    assert read_chain_maps(tmp_path, ["gw0", "gw1", "gw2", "gw3"]) == {
        "s.py::test_x[uv]": "uv",
        "s.py::test_y": "poetry",
    }


def test_an_unwritable_map_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "chains").write_text("a file where the dir should be")
    with pytest.warns(UserWarning, match="could not write the chain map"):
        write_chain_map(tmp_path, "gw0", {"s.py::test_x": "uv"})


def test_a_chain_is_one_scope_and_every_other_check_its_own() -> None:
    scheduler = ChainScheduling.__new__(ChainScheduling)  # __init__ wants xdist's --tx/-n settings
    scheduler.chains = {"m.py::test_a[uv]": "uv", "m.py::test_b[uv]": "uv", "m.py::test_a[poetry]": "poetry"}
    scopes = {nodeid: scheduler._split_scope(nodeid) for nodeid in [*scheduler.chains, "m.py::test_c", "m.py::test_d"]}
    assert scopes == {
        "m.py::test_a[uv]": f"{SCOPE_PREFIX}uv",
        "m.py::test_b[uv]": f"{SCOPE_PREFIX}uv",
        "m.py::test_a[poetry]": f"{SCOPE_PREFIX}poetry",
        "m.py::test_c": "m.py::test_c",  # not the module (LoadScopeScheduling's scope): spread like `load`
        "m.py::test_d": "m.py::test_d",
    }


@pytest.mark.parametrize(
    "mark", [pytest.mark.bpconform_chain(), pytest.mark.bpconform_chain(""), pytest.mark.bpconform_chain(key="uv")]
)
def test_a_chain_mark_without_a_plain_key_is_a_usage_error(mark) -> None:
    item = SimpleNamespace(nodeid="m.py::test_x", get_closest_marker=lambda name: mark.mark)
    with pytest.raises(pytest.UsageError, match="takes exactly one argument"):
        chain_key(item)


def test_a_chain_mark_names_its_chain() -> None:
    mark = pytest.mark.bpconform_chain("uv").mark
    assert chain_key(SimpleNamespace(nodeid="m.py::test_x", get_closest_marker=lambda name: mark)) == "uv"
    assert chain_key(SimpleNamespace(nodeid="m.py::test_x", get_closest_marker=lambda name: None)) is None
