"""Suite-wide wiring: parametrise checks over the profile's sample apps, and set up snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension

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


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion, conformance_settings: Settings, pytestconfig: pytest.Config):
    """Snapshots live in `<snapshot-dir>/<profile>/<stack>/`, not next to the installed suite."""
    root = Path(pytestconfig.getoption("bpconform_snapshot_dir") or Path.cwd() / "snapshots")
    directory = root / conformance_settings.profile.name / conformance_settings.stack_name

    class SuiteSnapshots(AmberSnapshotExtension):
        @classmethod
        def dirname(cls, *, test_location) -> str:  # type: ignore[override]
            return str(directory)

    return snapshot.use_extension(SuiteSnapshots)
