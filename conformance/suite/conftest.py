"""Suite-wide wiring: parametrise checks over the profile's sample apps, and set up snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation

from conformance.fixtures import Build, Settings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`app` parameters come from the profile, so a third-party profile brings its own apps."""
    if "app" in metafunc.fixturenames:
        settings = Settings.from_config(metafunc.config)
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
        config.stash[SNAPSHOT_DIR] = Settings.from_config(config).snapshot_directory()
    return config.stash[SNAPSHOT_DIR]


class SuiteSnapshots(AmberSnapshotExtension):
    """Amber snapshots in the suite's snapshot directory. Defined at module level because under
    pytest-xdist syrupy's controller re-creates it by import path to delete unused snapshots (with
    a class local to the fixture it reports them deleted but leaves them in the file)."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(snapshot_directory(test_location.item.config))


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(SuiteSnapshots)
