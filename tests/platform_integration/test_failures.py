"""Bad buildpacks: hangs end in a timeout without leaked containers; broken descriptors name the file."""

from __future__ import annotations

import filecmp
import os
import shutil
import time
from pathlib import Path

import pytest

from conformance.engine import SESSION, SESSION_ID, ensure_engine
from conformance.errors import PlatformError

from .conftest import BUILDPACKS, fixture_buildpack

FIXTURES = ("layers", "env-writer", "env-reader", "clear-env", "sbom")


def _session_containers() -> set[str]:
    return {c.id for c in ensure_engine().containers.list(all=True, filters={"label": f"{SESSION}={SESSION_ID}"})}


def _broken_copy(tmp_path: Path) -> Path:
    target = tmp_path / "broken-buildpack"
    shutil.copytree(fixture_buildpack("layers"), target)
    return target


@pytest.mark.serial
@pytest.mark.docker
def test_build_past_timeout_is_stopped_without_leaking_containers(builder, app) -> None:
    before = _session_containers()
    source = app({"layers.build.sh": "echo 'starting a long job'\nsleep 60\n"})
    started = time.monotonic()
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"], timeout=5)

    assert time.monotonic() - started < 30
    assert "fixture/layers" in str(failed.value)
    assert "did not finish within 5s" in str(failed.value)
    assert _session_containers() - before == set()  # the build container is gone


@pytest.mark.serial
@pytest.mark.docker
def test_detect_past_timeout_is_stopped(builder, app) -> None:
    source = app({"layers.detect.sh": "sleep 4\n"})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"], timeout=1)
    assert "did not finish within 1s" in str(failed.value)


@pytest.mark.docker
def test_malformed_buildpack_toml_names_the_file(builder, app, tmp_path) -> None:
    broken = _broken_copy(tmp_path)
    (broken / "buildpack.toml").write_text('api = "0.10"\n[buildpack\nid = "fixture/layers"\n')
    with pytest.raises(PlatformError) as failed:
        builder.build(app(), [str(broken)])

    assert str(broken / "buildpack.toml") in str(failed.value)


@pytest.mark.docker
def test_missing_bin_build_is_reported(builder, app, tmp_path) -> None:
    """As the lifecycle: found when it is run, a failed bin/build (51), named as the buildpack sees it."""
    broken = _broken_copy(tmp_path)
    (broken / "bin" / "build").unlink()
    with pytest.raises(PlatformError) as failed:
        builder.build(app(), [str(broken)])

    assert failed.value.exit_code == 51
    assert "/cnb/buildpacks/fixture_layers/0.0.1/bin/build does not exist" in str(failed.value)


@pytest.mark.docker
def test_non_executable_bin_build_hints_chmod(builder, app, tmp_path) -> None:
    broken = _broken_copy(tmp_path)
    (broken / "bin" / "build").chmod(0o644)
    with pytest.raises(PlatformError) as failed:
        builder.build(app(), [str(broken)])

    assert failed.value.exit_code == 51
    assert "not executable" in str(failed.value)
    assert f"chmod +x {broken / 'bin' / 'build'}" in failed.value.hint


def test_fixture_buildpacks_share_identical_executables() -> None:
    """The fixtures' bin/ are copies of one driver (a buildpack dir is mounted alone, so they can't
    share a file): keep them in step."""
    for name in FIXTURES[1:]:
        for program in ("detect", "build"):
            ours, theirs = BUILDPACKS / "layers" / "bin" / program, BUILDPACKS / name / "bin" / program
            assert filecmp.cmp(ours, theirs, shallow=False), f"{theirs} differs from {ours}"
            assert os.access(theirs, os.X_OK)
