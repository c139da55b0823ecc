"""pip is absent at run time, and `python -m ensurepip --default-pip` brings it back offline."""

from __future__ import annotations

import pytest

from conformance.assertions import key_lines
from conformance.fixtures import Build


@pytest.mark.parametrize("command", ["pip --version", "pip3 --version", "python -m pip --version"])
def test_pip_absent_at_runtime(build: Build, command: str) -> None:
    if build.app == build.profile.app("pip-dependency"):
        pytest.skip("this app lists pip in its requirements, so pip is expected at run time")
    result = build.image.run(["sh", "-c", command])
    assert result.exit_code != 0, f"`{command}` works at run time but pip must be absent; output: {result.output}"


def test_ensurepip_recovers_pip_offline(build: Build) -> None:
    if build.app == build.profile.app("pip-dependency"):
        pytest.skip("this app keeps pip at run time")
    script = "python -m ensurepip --default-pip && pip --version"
    result = build.image.run(["sh", "-c", script], network=False)
    assert result.exit_code == 0, (
        f"`{script}` failed as the image's user ({build.image.user}) with no network:\n{key_lines(result.output)}"
    )
    assert "pip " in result.output


def test_pip_kept_when_required(built_app, profile) -> None:
    app = profile.app("pip-dependency")
    if not app:
        pytest.skip(f"profile {profile.name} has no pip-dependency app")
    result = built_app(app).image.run(["sh", "-c", "pip --version"])
    assert result.exit_code == 0, (
        f"the app lists pip in requirements.txt, so pip must work at run time: {result.output}"
    )


def test_runtime_layer_has_no_pip(build: Build) -> None:
    """pip lives in its own build-only layer: the runtime layer's own interpreter cannot import it."""
    runtime = build.profile.require_role("runtime")
    python = f"/layers/{build.profile.layers_dir_name}/{runtime.name}/bin/python3"
    result = build.image.run([python, "-c", "import pip; print(pip.__file__)"])
    assert result.exit_code != 0, (
        f"the {runtime.name} layer's own python imports pip from {result.stdout.strip()}; rule: pip must be in"
        f" its own layer, not in the {runtime.name} layer"
    )
    assert "No module named" in result.output, f"{python} failed for another reason: {result.output[-500:]}"
