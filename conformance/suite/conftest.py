"""Suite-wide wiring: parametrise checks over the profile's sample apps, and set up snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation

from conformance.errors import MissingInput
from conformance.fixtures import Build
from conformance.settings import settings_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`app` parameters come from the profile, so a third-party profile brings its own apps."""
    if "app" in metafunc.fixturenames:
        settings = settings_of(metafunc.config)
        metafunc.parametrize("app", settings.profile.buildable_apps())


@pytest.fixture
def build(app: str, built_app) -> Build:
    """The session's shared build of `app` (built on first use)."""
    return built_app(app)


SNAPSHOT_DIR = pytest.StashKey[Path]()


def snapshot_directory(config: pytest.Config) -> Path:
    """`<snapshot-dir>/<profile>/<stack>/` (`Settings.snapshot_root` says which root): a profile's
    snapshots live with the user's project; the reference profile's ship with the package."""
    if SNAPSHOT_DIR not in config.stash:
        config.stash[SNAPSHOT_DIR] = settings_of(config).snapshot_directory()
    return config.stash[SNAPSHOT_DIR]


class SuiteSnapshots(AmberSnapshotExtension):
    """Amber snapshots in the suite's snapshot directory. Defined at module level because under
    pytest-xdist syrupy's controller re-creates it by import path to delete unused snapshots (with
    a class local to the fixture it reports them deleted but leaves them in the file)."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(snapshot_directory(test_location.item.config))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """No snapshot file for a check that compares one (a new profile's first run, or a stack never
    recorded) is a missing input: an ERROR saying how to record them, before any build for it."""
    if "snapshot" not in getattr(item, "fixturenames", ()):
        return
    settings = settings_of(item.config)
    expected = snapshot_directory(item.config) / f"{Path(str(item.path)).stem}.ambr"
    if not settings.snapshot_update and not expected.is_file():
        raise MissingInput(
            f"no snapshots for profile {settings.profile.name} on stack {settings.stack_name}:"
            f" {expected} does not exist",
            "record them once with `bpconform run ... --snapshot-update` (add --snapshot-dir DIR to keep them"
            " elsewhere than ./snapshots), review the .ambr file and keep it with your project",
        )


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Syrupy's snapshot, in the suite's snapshot dir."""
    return snapshot.use_extension(SuiteSnapshots)
