"""WorkDirs: the one table of the build's host dirs and where the build container sees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform.workdir import WorkDirs


def test_the_mounts_are_the_spec_paths_and_only_the_platform_dir_is_read_only(tmp_path: Path) -> None:
    dirs = WorkDirs(tmp_path / "w")
    table = {(m.source, m.target, m.read_only) for m in dirs.mounts()}
    assert table == {
        (dirs.workspace, "/workspace", False),
        (dirs.layers, "/layers", False),
        (dirs.platform, "/platform", True),
        (dirs.plans, "/cnb-plans", False),
    }
    assert set(dirs.writable()) == {dirs.workspace, dirs.layers, dirs.plans}
    assert dirs.in_container(dirs.layers) == "/layers"
    with pytest.raises(PlatformError, match="not a mounted work dir"):
        dirs.in_container(dirs.tars)  # the tars are the host's own: never mounted


def test_error_text_names_in_image_paths(tmp_path: Path) -> None:
    dirs = WorkDirs(tmp_path / "w")
    text = f"bad {dirs.layers}/bp/launch.toml, {dirs.workspace}/app.py, {dirs.platform}/env/X, {dirs.plans}/p"
    expected = "bad /layers/bp/launch.toml, /workspace/app.py, /platform/env/X, /cnb-plans/p"
    assert dirs.in_image_text(text) == expected
