"""Buildpack APIs 0.7-0.9 (issue 13 item 7): the lifecycle still supports them (api/apis.go), with
their older shapes: `[[stacks]]` instead of `[[targets]]`, a `command` string plus `direct`
before 0.9, no `CNB_LAYERS_DIR`/`CNB_PLATFORM_DIR`/`CNB_BP_PLAN_PATH` before 0.8. The lifecycle's
own creator acceptance buildpack (samples/hello-world 0.0.1) is API 0.7.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Built, Fidelity, make_buildpack, record, write_app

pytestmark = pytest.mark.docker

STRING_COMMAND = """
echo "@@layers-dir=${CNB_LAYERS_DIR-unset}"
mkdir -p "$1/some-layer/env"; printf 'some-val' > "$1/some-layer/env/SOME_VAR"
printf '[types]\\nlaunch = true\\n' > "$1/some-layer.toml"
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "web"
command = "echo"
args = ["api-{api}"]
direct = true
TOML
"""

ARRAY_COMMAND = """
echo "@@layers-dir=${CNB_LAYERS_DIR-unset}"
mkdir -p "$1/some-layer/env"; printf 'some-val' > "$1/some-layer/env/SOME_VAR"
printf '[types]\\nlaunch = true\\n' > "$1/some-layer.toml"
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "web"
command = ["echo", "api-{api}"]
TOML
"""

OLD_APIS = ["0.7", "0.8", "0.9"]


@pytest.fixture(scope="module")
def api_build(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Built]:
    root = tmp_path_factory.mktemp("apis")
    builds: dict[str, Built] = {}

    def build(api: str) -> Built:
        if api not in builds:
            script = (STRING_COMMAND if api in ("0.7", "0.8") else ARRAY_COMMAND).replace("{api}", api)
            bp = make_buildpack(root / api, f"fixture/api-{api.replace('.', '-')}", script, api=api)
            builds[api] = fidelity.build(write_app(root / f"app-{api}"), [bp])
        return builds[api]

    return build


@pytest.mark.parametrize("api", [*OLD_APIS, "0.10", "0.11", "0.12"])
def test_buildpack_api_builds_and_launches(api_build, api: str) -> None:
    """acceptance/creator_test.go "daemon case" - "creates app" (its buildpack is API 0.7) and
    buildpack/build_test.go "buildpack api < 0.9" - "allows setting a single command string" /
    "allows setting direct": the image's process runs and the layer's env applies."""
    built = api_build(api)
    assert built.image.run_process("web").output.strip() == f"api-{api}"
    assert built.image.launch_env()["SOME_VAR"] == "some-val"


@pytest.mark.parametrize(("api", "expected"), [("0.7", "unset"), ("0.8", "/layers/fixture_api-0-8")])
def test_positional_argument_variables_from_api_0_8(api_build, api: str, expected: str) -> None:
    """buildpack/build_test.go "buildpack api < 0.8" - "does not set environment variables for
    positional arguments" (and API 0.8 sets them)."""
    assert record(api_build(api).output, "layers-dir") == expected
