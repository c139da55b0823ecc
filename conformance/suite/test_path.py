"""PATH ordering: the app's venv ahead of the Python runtime, at launch and for later buildpacks."""

from __future__ import annotations

import pytest

from conformance.assertions import assert_path_order, assert_under
from conformance.fixtures import Build


def _bin(build: Build, role: str) -> str:
    spec = build.profile.require_role(role)
    return f"/layers/{build.profile.layers_dir_name}/{spec.name}/bin"


def test_launch_path_order(build: Build) -> None:
    env = build.image.launch_env()
    venv_bin, runtime_bin = _bin(build, "app-deps"), _bin(build, "runtime")
    assert_path_order(env["PATH"], venv_bin, runtime_bin, where="at launch")
    image_path = build.image.env["PATH"].split(":")
    run_image_dir = next(d for d in image_path if not d.startswith("/cnb"))
    assert_path_order(env["PATH"], runtime_bin, run_image_dir, where="at launch")
    for name in ("python", "python3"):
        which = build.image.run(["sh", "-c", f"command -v {name}"]).stdout.strip()
        assert which == f"{venv_bin}/{name}", f"at launch `{name}` resolves to {which!r}, expected {venv_bin}/{name}"


def test_build_time_path_order(build: Build) -> None:
    """What a later buildpack sees: same order, and `python` and the app's modules come from the venv."""
    probe = build.probe
    venv_bin, runtime_bin = _bin(build, "app-deps"), _bin(build, "runtime")
    assert_path_order(probe["env"]["PATH"], venv_bin, runtime_bin, where="at build time, for a later buildpack")
    assert probe["which"]["python"] == f"{venv_bin}/python", (
        f"at build time `python` resolves to {probe['which']['python']}, expected {venv_bin}/python"
    )
    location = probe.get("import_location")
    if isinstance(location, str):
        venv = venv_bin.rsplit("/", 1)[0]
        assert_under(location, venv, what="at build time, the app's first requirement imports from")


def test_build_time_pip(build: Build) -> None:
    """pip works for a later buildpack and installs into the app's venv."""
    probe = build.probe
    assert probe["pip_version"]["exit"] == 0, f"`pip --version` failed at build time: {probe['pip_version']}"
    if "pip_install" not in probe:
        pytest.skip("the app has no requirement for the probe to reinstall, so only `pip --version` was checked")
    assert probe["pip_install"]["exit"] == 0, f"`pip install` failed at build time: {probe['pip_install']['stderr']}"
    venv = _bin(build, "app-deps").rsplit("/", 1)[0]
    after = probe["venv_import_after_install"]
    assert after["exit"] == 0, f"after `pip install` the venv cannot import the package: {after['stderr']}"
    assert_under(after["stdout"].strip().strip('"'), venv, what="`pip install` at build time installed into")
