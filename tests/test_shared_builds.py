"""Builds shared by the processes of a test run: the record round trip, one build per app across
processes, and a retry after a builder died. The suite under pytest-xdist, with Docker, is in
tests/integration/test_suite_xdist.py."""

from __future__ import annotations

import importlib
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance import fixtures
from conformance.engine import SESSION_ID
from conformance.errors import ConformanceError
from conformance.fixtures import Build, BuildFailed, build_outcome, build_record
from conformance.profile import load_profile
from conformance.shared_builds import RUN_ID_KEY, BuildRecord, SharedBuilds, run_id

CONTEXT = multiprocessing.get_context("fork")
PATIENCE = 60.0


def test_a_failure_survives_the_record_round_trip(tmp_path: Path) -> None:
    failure = BuildFailed("minimal", "buildpack bpconform/python failed", "line 1\nline 2\n", 51)
    record = BuildRecord.from_json(build_record(failure, tmp_path / "minimal").to_json())
    again = build_outcome(record, load_profile("reference"))
    assert isinstance(again, BuildFailed)
    assert (again.app, again.message, again.output, again.exit_code) == (
        "minimal",
        "buildpack bpconform/python failed",
        "line 1\nline 2\n",
        51,
    )
    assert record.built_by == SESSION_ID and record.image == ""


def test_a_build_survives_the_record_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = load_profile("reference")
    image = SimpleNamespace(reference="bpconform-app/shared-minimal-abc123:run1")
    build = Build(
        "minimal", tmp_path / "minimal", image, "Exported ...\n", profile, {"bpconform/python:venv": "exported"}
    )
    monkeypatch.setattr(
        fixtures.AppImage, "load", classmethod(lambda cls, reference: SimpleNamespace(reference=reference))
    )
    record = BuildRecord.from_json(build_record(build, build.app_dir).to_json())
    again = build_outcome(record, profile)
    assert isinstance(again, Build)
    assert (again.app, again.app_dir, again.image.reference, again.output, again.layer_actions) == (
        "minimal",
        tmp_path / "minimal",
        "bpconform-app/shared-minimal-abc123:run1",
        "Exported ...\n",
        {"bpconform/python:venv": "exported"},
    )
    assert again.profile is profile


def _obtain(directory: Path, app: str, start, results, builds_log: Path) -> None:
    def build(image: str) -> BuildRecord:
        with builds_log.open("a") as log:  # one line per build that really ran
            log.write(f"{app} {image}\n")
        return BuildRecord(app, f"/apps/{app}", image=image, output=f"{multiprocessing.current_process().name}")

    start.wait(PATIENCE)
    results.put(SharedBuilds("run1", directory).obtain(app, build))


def test_processes_asking_at_once_build_each_app_once_and_share_the_record(tmp_path: Path) -> None:
    start, results = CONTEXT.Event(), CONTEXT.Queue()
    builds_log = tmp_path / "builds.log"
    asks = ["minimal", "minimal", "minimal", "pinned-311", "pinned-311"]
    processes = [
        CONTEXT.Process(target=_obtain, args=(tmp_path / "shared", app, start, results, builds_log), name=f"p{i}")
        for i, app in enumerate(asks)
    ]
    for process in processes:
        process.start()
    start.set()
    records = [results.get(timeout=PATIENCE) for _ in asks]
    for process in processes:
        process.join(PATIENCE)
    built = sorted(builds_log.read_text().splitlines())
    shared = SharedBuilds("run1", tmp_path / "shared")
    minimal, pinned = shared.image_name(shared.key("minimal")), shared.image_name(shared.key("pinned-311"))
    assert built == sorted([f"minimal {minimal}", f"pinned-311 {pinned}"])
    for app in ("minimal", "pinned-311"):  # every asker got the one builder's record
        assert len({r.to_json() for r in records if r.app == app}) == 1, [r for r in records if r.app == app]
    assert minimal.endswith(":run1") and minimal != pinned
    assert shared.images() == {minimal, pinned}


def test_no_record_after_a_failed_attempt_so_the_next_process_builds(tmp_path: Path) -> None:
    shared = SharedBuilds("run1", tmp_path / "shared")

    def crash(image: str) -> BuildRecord:
        raise KeyboardInterrupt  # like Ctrl-C (or a worker dying) mid-build

    with pytest.raises(KeyboardInterrupt):
        shared.obtain("minimal", crash)
    attempted = shared.images()
    record = shared.obtain("minimal", lambda image: BuildRecord("minimal", "/apps/minimal", image=image))
    assert record.image in attempted  # the half-made image is still found for removal at the run's end
    assert shared.obtain("minimal", lambda image: pytest.fail("built twice")) == record


def test_keys_tell_similar_app_names_apart() -> None:
    assert SharedBuilds.key("a_b") != SharedBuilds.key("a-b")
    assert SharedBuilds.key("Pinned 311").startswith("pinned-311-")


def test_run_id_is_the_controllers_in_a_worker_and_this_process_otherwise() -> None:
    assert run_id(SimpleNamespace()) == SESSION_ID
    assert run_id(SimpleNamespace(workerinput={"workerid": "gw0", RUN_ID_KEY: "controller1"})) == "controller1"


def test_worker_sessions_are_registered(tmp_path: Path) -> None:
    shared = SharedBuilds("run1", tmp_path / "shared")
    assert shared.sessions() == []
    shared.register_session("run1-gw1")
    shared.register_session("run1-gw0")
    assert shared.sessions() == ["run1-gw0", "run1-gw1"]


def test_snapshot_extension_can_be_imported_by_name() -> None:
    """syrupy's xdist controller re-creates extensions by import path to delete unused snapshots."""
    from conformance.suite.conftest import SuiteSnapshots

    module = importlib.import_module(SuiteSnapshots.__module__)
    assert getattr(module, SuiteSnapshots.__qualname__) is SuiteSnapshots


def test_a_shared_build_cannot_be_rebuilt(tmp_path: Path) -> None:
    """Other tests, maybe in other workers, read the shared image: a rebuild would change it under them."""
    shared = SharedBuilds("run1", tmp_path / "shared")
    image = SimpleNamespace(reference=shared.image_name(shared.key("minimal")))
    build = Build("minimal", tmp_path / "minimal", image, "", load_profile("reference"))
    with pytest.raises(ConformanceError, match="shared by the whole test run"):
        fixtures.Platform(None, tmp_path).rebuild(build)  # type: ignore[arg-type]
