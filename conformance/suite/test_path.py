"""PATH ordering: the app's venv ahead of the Python runtime, at launch and for later buildpacks."""

from __future__ import annotations

from typing import Any

from conformance.assertions import assert_path_order, assert_under
from conformance.fixtures import Build
from conformance.suite.requirements import need_role
from conformance.suite.requirements import probe as probe


def _bin(build: Build, role: str) -> str:
    spec = need_role(build.profile, role)
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


def test_build_time_path_order(build: Build, probe: dict[str, Any]) -> None:
    """What a later buildpack sees: same order, and `python` and the app's modules come from the venv."""
    venv_bin, runtime_bin = _bin(build, "app-deps"), _bin(build, "runtime")
    assert_path_order(probe["env"]["PATH"], venv_bin, runtime_bin, where="at build time, for a later buildpack")
    assert probe["which"]["python"] == f"{venv_bin}/python", (
        f"at build time `python` resolves to {probe['which']['python']}, expected {venv_bin}/python"
    )
    location = probe.get("import_location")
    if isinstance(location, str):
        venv = venv_bin.rsplit("/", 1)[0]
        assert_under(location, venv, what="at build time, the app's first requirement imports from")


def test_build_time_pip(build: Build, probe: dict[str, Any]) -> None:
    """pip works for a later buildpack, and its target environment is the app's venv.

    Proven without touching the venv: `pip inspect` (read-only) must report the app's packages in
    the venv, and a real `pip install` goes into a throwaway `--target` directory of the probe's own.
    """
    venv = _bin(build, "app-deps").rsplit("/", 1)[0]
    assert probe["pip_version"]["exit"] == 0, (
        f"`pip --version` failed at build time for a later buildpack: {probe['pip_version']['stderr'][-800:]}"
    )
    inspect = probe["pip_inspect"]
    assert inspect["exit"] == 0, f"`pip inspect` failed at build time: {inspect['stderr'][-800:]}"
    package = probe.get("probe_import")
    if not package:
        return  # an app without requirements: `pip --version` and `pip inspect` are all there is to run
    location = inspect["locations"].get(package)
    assert location, (
        f"at build time `pip inspect` does not list {package}, which the app requires: pip's target environment is"
        f" not the app's venv ({venv}); it lists {sorted(inspect['locations'])}"
    )
    assert_under(location, venv, what=f"at build time pip's target environment keeps {package} in")
    install = probe["pip_target_install"]
    assert install["exit"] == 0, f"`pip install --target DIR {package}` failed at build time: {install['stderr']}"
    assert any(
        name == package or name.startswith(f"{package}.") or name.startswith(f"{package}-")
        for name in install["installed"]
    ), f"`pip install --target DIR {package}` succeeded at build time but DIR holds only {install['installed']}"
