"""`project.toml` as `pack` applies it (issue 13 item 13).

The lifecycle does not read `project.toml`; `pack build` does (pack pkg/project/v01, v02): it
uploads only the included / not excluded files (gitignore patterns) into the app dir and adds the
`build.env` variables to `<platform>/env`. The issue asks for pack's result. The v0.2 form is the
one buildpacks/samples `apps/bash-script/project.toml` uses (buildpacks.io "Use project.toml");
its README and bundled buildpack must not reach `/workspace`.
"""

from __future__ import annotations

import pytest

from .conftest import Built, Fidelity, make_buildpack, record, records, write_app

pytestmark = pytest.mark.docker

RECORD = r"""
for entry in * .[!.]*; do [ -e "$entry" ] && echo "@@app-entry=$entry"; done
echo "@@from-project=$(cat "$CNB_PLATFORM_DIR/env/FROM_PROJECT" 2>/dev/null || echo absent)"
"""

V02 = {
    "project.toml": """
        [_]
        schema-version = "0.2"
        id = "io.bpconform.fidelity"

        [io.buildpacks]
        exclude = ["/README.md", "bundled-buildpack"]

        [[io.buildpacks.build.env]]
        name = "FROM_PROJECT"
        value = "project-value"
    """,
    "README.md": "not for the image\n",
    "bundled-buildpack/bin/build": "#!/bin/sh\n",
    "app.sh": "echo app\n",
    "docs/README.md": "only the root README is excluded\n",
}

V01 = {
    "project.toml": """
        [project]
        id = "io.bpconform.fidelity-v01"

        [build]
        include = ["app.sh", "lib/"]

        [[build.env]]
        name = "FROM_PROJECT"
        value = "v01-value"
    """,
    "app.sh": "echo app\n",
    "lib/util.sh": "true\n",
    "notes.txt": "not included\n",
}


@pytest.fixture(scope="module")
def builds(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    root = tmp_path_factory.mktemp("project-toml")
    bp = make_buildpack(root, "fixture/project", RECORD)
    return {
        "v02": fidelity.build(write_app(root / "v02", V02), [bp]),
        "v01": fidelity.build(write_app(root / "v01", V01), [bp]),
    }


def test_exclude_v02(builds: dict[str, Built]) -> None:
    """pack pkg/project/v02 `[io.buildpacks] exclude` (samples apps/bash-script/project.toml):
    `/README.md` and `bundled-buildpack` are neither seen at build nor in the image."""
    seen = set(records(builds["v02"].output, "app-entry"))
    assert "README.md" not in seen and "bundled-buildpack" not in seen, sorted(seen)
    assert {"app.sh", "docs"} <= seen
    assert not builds["v02"].image.path_exists("/workspace/README.md")
    assert builds["v02"].image.path_exists("/workspace/docs/README.md")


def test_build_env_v02(builds: dict[str, Built]) -> None:
    """pack pkg/project/v02 `[[io.buildpacks.build.env]]`: the variable is in `<platform>/env`."""
    assert record(builds["v02"].output, "from-project") == "project-value"


def test_include_v01(builds: dict[str, Built]) -> None:
    """pack pkg/project/v01 `[build] include`: only the included paths reach the app dir."""
    seen = set(records(builds["v01"].output, "app-entry")) - {"project.toml"}
    assert seen == {"app.sh", "lib"}, sorted(seen)


def test_build_env_v01(builds: dict[str, Built]) -> None:
    """pack pkg/project/v01 `[[build.env]]`."""
    assert record(builds["v01"].output, "from-project") == "v01-value"
