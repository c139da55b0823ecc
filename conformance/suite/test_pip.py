"""pip is absent at run time, and `python -m ensurepip --default-pip` brings it back offline.

Every negative check here says *why* the command must fail (the program is absent: "not found",
"No module named pip") and first shows that the image itself works (`python -c 'print(1)'`), so an
image in which nothing can start does not pass as "pip is absent"."""

from __future__ import annotations

import pytest

from conformance.assertions import assert_image_starts, assert_not_found, key_lines
from conformance.fixtures import Build
from conformance.suite.requirements import need_app, need_role

PIP_ABSENT_RULE = "pip must be absent at run time (it lives in a build-only layer)"


def _keeps_pip(build: Build) -> bool:
    return build.app == build.profile.app("pip-dependency")


@pytest.mark.parametrize("command", ["pip --version", "pip3 --version", "python -m pip --version"])
def test_pip_absent_at_runtime(build: Build, command: str) -> None:
    if _keeps_pip(build):
        pytest.skip("this app lists pip in its requirements, so pip is expected at run time")
    assert_image_starts(build.image, what=f"`{command}` at run time")
    result = build.image.run(["sh", "-c", command])
    assert_not_found(result, command, what="at run time", rule=PIP_ABSENT_RULE)


def test_ensurepip_recovers_pip_offline(build: Build) -> None:
    if _keeps_pip(build):
        pytest.skip("this app keeps pip at run time")
    script = "python -m ensurepip --default-pip && pip --version"
    result = build.image.run(["sh", "-c", script], network=False)
    assert result.exit_code == 0, (
        f"`{script}` failed as the image's user ({build.image.user}) with no network:\n{key_lines(result.output)}"
    )
    assert "pip " in result.output, f"`{script}` printed no pip version: {result.output[-500:]}"


def test_pip_kept_when_required(built_app, profile) -> None:
    app = need_app(profile, "pip-dependency")
    result = built_app(app).image.run(["sh", "-c", "pip --version"])
    assert result.exit_code == 0, (
        f"the app lists pip in requirements.txt, so pip must work at run time: {result.output}"
    )


def test_runtime_layer_has_no_pip(build: Build) -> None:
    """pip lives in its own build-only layer: the runtime layer's own interpreter cannot import it."""
    runtime = need_role(build.profile, "runtime")
    python = f"/layers/{build.profile.layers_dir_name}/{runtime.name}/bin/python3"
    started = build.image.run([python, "-c", "print(1)"])
    assert started.exit_code == 0 and started.stdout.strip().endswith("1"), (
        f"the {runtime.name} layer's own {python} does not run at all, so whether it has pip cannot be told:"
        f" {started.output[-500:]}"
    )
    result = build.image.run([python, "-c", "import pip; print(pip.__file__)"])
    assert result.exit_code != 0, (
        f"the {runtime.name} layer's own python imports pip from {result.stdout.strip()}; rule: pip must be in"
        f" its own layer, not in the {runtime.name} layer"
    )
    assert "No module named 'pip'" in result.output or "No module named pip" in result.output, (
        f"{python} failed to import pip for another reason than its absence: {result.output[-500:]}"
    )
