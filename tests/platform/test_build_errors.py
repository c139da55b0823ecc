"""The build phase's errors as the lifecycle reports them, from temp dirs alone (no Docker).

cmd/lifecycle/builder.go:99-106: only a failed `bin/build` is 51; every other error of the phase
(the outputs a buildpack left that do not decode or break a rule, buildpack/build.go:168-341) is
52. The lifecycle names files from inside the build container (`/layers/<bp>/launch.toml`); the
platform reads them on the host, so the phase translates its work dir's paths back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform import spec
from conformance.platform.build import build_errors, read_buildpack_output
from conformance.platform.buildpack import load_buildpack
from conformance.platform.layers import read_build_toml
from conformance.platform.safefs import UnsafePath
from conformance.platform.workdir import WorkDirs


def _setup(tmp_path: Path) -> tuple[WorkDirs, Path]:
    bp_dir = tmp_path / "bp"
    (bp_dir / "bin").mkdir(parents=True)
    (bp_dir / "buildpack.toml").write_text('api = "0.10"\n[buildpack]\nid = "example/bp"\nversion = "1.0.0"\n')
    dirs = WorkDirs(tmp_path / "work")
    (dirs.layers / "example_bp").mkdir(parents=True)
    return dirs, bp_dir


OUTPUTS = {
    "launch.toml": ("[[processes]\n", "malformed launch.toml /layers/example_bp/launch.toml"),
    "bad.toml": ("launch = true\n", "/layers/example_bp/bad.toml: launch must be in the [types] table"),
    "two-defaults": (
        '[[processes]]\ntype = "a"\ncommand = ["x"]\ndefault = true\n'
        '[[processes]]\ntype = "b"\ncommand = ["y"]\ndefault = true\n',
        "/layers/example_bp/launch.toml: several processes are marked default (a, b)",
    ),
}


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_bad_outputs_are_build_errors_named_in_image(tmp_path: Path, case: str) -> None:
    dirs, bp_dir = _setup(tmp_path)
    text, expected = OUTPUTS[case]
    name = "launch.toml" if case == "two-defaults" else case
    (dirs.layers / "example_bp" / name).write_text(text)
    with pytest.raises(PlatformError) as failed, build_errors(dirs):
        read_buildpack_output(load_buildpack(bp_dir), dirs.layers / "example_bp")
    assert failed.value.exit_code == spec.ExitCode.BUILD_ERROR == 52
    assert expected in failed.value.message
    assert str(dirs.root) not in str(failed.value)


def test_a_bad_unmet_is_a_build_error(tmp_path: Path) -> None:
    dirs, _ = _setup(tmp_path)
    build_toml = dirs.layers / "example_bp" / "build.toml"
    build_toml.write_text('[[unmet]]\nname = "other"\n')
    with pytest.raises(PlatformError) as failed, build_errors(dirs):
        read_build_toml(build_toml, [{"name": "python"}])
    assert failed.value.exit_code == 52
    assert failed.value.message.startswith("/layers/example_bp/build.toml: unmet name 'other'")


def test_codes_already_given_are_kept_and_every_work_dir_is_translated(tmp_path: Path) -> None:
    dirs, _ = _setup(tmp_path)
    with pytest.raises(PlatformError) as failed, build_errors(dirs):
        raise PlatformError(f"bin/build failed in {dirs.workspace}", f"see {dirs.plans}/x.toml", 51)
    assert (failed.value.exit_code, failed.value.message, failed.value.hint) == (
        51,
        "bin/build failed in /workspace",
        "see /cnb-plans/x.toml",
    )
    with pytest.raises(UnsafePath) as unsafe, build_errors(dirs):  # the type is kept for callers that test it
        raise UnsafePath(f"{dirs.layers}/example_bp/x.toml is a symbolic link")
    assert unsafe.value.message == "/layers/example_bp/x.toml is a symbolic link"
    with pytest.raises(PlatformError) as export, build_errors(dirs):
        raise PlatformError(f"{dirs.platform}/env/X: bad", "", spec.ExitCode.EXPORT_ERROR)
    assert (export.value.exit_code, export.value.message) == (62, "/platform/env/X: bad")
