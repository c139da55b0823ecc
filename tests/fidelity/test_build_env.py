"""What a buildpack sees at build time and what its layers give at launch (issue 13 items 4, 5, 8, 9).

One build of two buildpacks: `fixture/tools` makes build+launch layers `tool` and `tool-ext` (a name
that is the other's prefix followed by `-`, which sorts before `.`), a layer with every type false
and one with an empty `<layer>.toml`, and an env file; `fixture/reader` then records what it sees.
"""

from __future__ import annotations

import pytest

from .conftest import Built, Fidelity, make_buildpack, record, records, write_app

pytestmark = pytest.mark.docker

TOOLS = r"""
L="$1"
echo "@@tools-exec-env=${CNB_EXEC_ENV-unset}"
for name in tool tool-ext; do
  mkdir -p "$L/$name/bin" "$L/$name/env"
  printf '#!/bin/sh\necho %s\n' "$name" > "$L/$name/bin/which-tool"
  chmod +x "$L/$name/bin/which-tool"
  printf '[types]\nbuild = true\nlaunch = true\n' > "$L/$name.toml"
done
printf 'from-layer' > "$L/tool/env/SOME_VAR.override"
mkdir -p "$L/all-false" "$L/empty-toml"
echo x > "$L/all-false/file"; echo x > "$L/empty-toml/file"
printf '[types]\nbuild = false\ncache = false\nlaunch = false\n' > "$L/all-false.toml"
: > "$L/empty-toml.toml"
"""

READER = r"""
echo "@@reader-exec-env=${CNB_EXEC_ENV-unset}"
echo "@@reader-path=$PATH"
echo "@@reader-some-var=${SOME_VAR-unset}"
echo "@@reader-which-tool=$(which-tool)"
for entry in "$CNB_PLATFORM_DIR"/env/*; do [ -e "$entry" ] && echo "@@platform-env=$(basename "$entry")"; done
for entry in /layers/fixture_tools/*; do echo "@@tools-dir=$(basename "$entry")"; done
"""

OLD_READER = r"""
echo "@@old-exec-env=${CNB_EXEC_ENV-unset}"
"""


@pytest.fixture(scope="module")
def env_build(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("build-env")
    tools = make_buildpack(root, "fixture/tools", TOOLS)
    reader = make_buildpack(root, "fixture/reader", READER)
    old = make_buildpack(root, "fixture/old-reader", OLD_READER, api="0.11")
    return fidelity.build(write_app(root / "app"), [tools, reader, old], env={"SOME_VAR": "from-user"})


TOOL = "/layers/fixture_tools/tool/bin"
TOOL_EXT = "/layers/fixture_tools/tool-ext/bin"


def order(path: str) -> list[str]:
    return [entry for entry in path.split(":") if entry in (TOOL, TOOL_EXT)]


def test_build_time_layer_order_follows_toml_file_names(env_build: Built) -> None:
    """buildpack/build_test.go "ensures the buildpack's layers dir exists and processes build layers"
    (AddRootDir, env, env.build per layer, in the order `eachLayer` walks the `<layer>.toml` files:
    buildpack/build.go setupEnv). `tool-ext.toml` sorts before `tool.toml`, so `tool` is added last
    and comes first on a later buildpack's PATH."""
    path = record(env_build.output, "reader-path") or ""
    assert order(path) == [TOOL, TOOL_EXT], f"PATH at build for fixture/reader: {path}"
    assert record(env_build.output, "reader-which-tool") == "tool"


def test_launch_time_layer_order_follows_layer_dirs(env_build: Built) -> None:
    """launch/launcher_test.go "should apply env modifications" (launch/launcher.go eachLayer walks
    the layer *directories*: `tool` before `tool-ext`, so `tool-ext` is added last and comes first)."""
    path = env_build.image.launch_env()["PATH"]
    assert order(path) == [TOOL_EXT, TOOL], f"PATH at launch: {path}"
    assert env_build.image.run(["which-tool"]).output.strip() == "tool-ext"


def test_image_layers_in_identifier_order(env_build: Built) -> None:
    """phase/exporter_test.go "adds launch layers" (buildpack/layers.go ReadLayersDir sorts a
    buildpack's layers by `<id>:<name>`, so `tool` is exported before `tool-ext`)."""
    image = env_build.image
    layers = next(bp for bp in image.lifecycle_metadata["buildpacks"] if bp["key"] == "fixture/tools")["layers"]
    positions = {name: image.diff_ids.index(layer["sha"]) for name, layer in layers.items()}
    assert sorted(positions, key=positions.__getitem__) == ["tool", "tool-ext"], positions


def test_user_env_applied_last(env_build: Built) -> None:
    """env/env_test.go "#WithOverrides" - "should apply platform env vars as filename=file-contents"
    (called from buildpack/build.go after the earlier buildpacks' layer env: the user's value wins
    over `tool/env/SOME_VAR.override`)."""
    assert record(env_build.output, "reader-some-var") == "from-user"


def test_platform_env_holds_only_user_variables(env_build: Built) -> None:
    """buildpack/build_test.go "loads env vars from <platform>/env": the platform dir holds what the
    platform was given (the user's variables), nothing the harness adds for itself."""
    assert records(env_build.output, "platform-env") == ["SOME_VAR"]


def test_exec_env_set_for_api_0_12(env_build: Built) -> None:
    """buildpack/build_test.go "CNB_EXEC_ENV" - "buildpack API >= 0.12" - "sets CNB_EXEC_ENV when
    ExecEnv is provided" (the platform default is `production`)."""
    assert record(env_build.output, "tools-exec-env") == "production"
    assert record(env_build.output, "reader-exec-env") == "production"


def test_exec_env_not_set_before_api_0_12(env_build: Built) -> None:
    """buildpack/build_test.go "buildpack API < 0.12" - "does not set CNB_EXEC_ENV even when ExecEnv
    is provided"."""
    assert record(env_build.output, "old-exec-env") == "unset"


def test_all_false_layers_renamed_ignore(env_build: Built) -> None:
    """buildpack/build_test.go "the launch, cache and build flags are false" - "renames
    <layers>/<layer> to <layers>/<layer>.ignore" (flags given false, and flags not given)."""
    seen = set(records(env_build.output, "tools-dir"))
    expected = {"all-false.ignore", "empty-toml.ignore", "all-false.toml", "empty-toml.toml"}
    assert expected <= seen, f"/layers/fixture_tools at fixture/reader's build: {sorted(seen)}"
    assert not {"all-false", "empty-toml"} & seen


def test_all_false_layers_not_exported(env_build: Built) -> None:
    """phase/exporter_test.go "only creates expected layers": ignored layers are not image layers."""
    layers = next(bp for bp in env_build.image.lifecycle_metadata["buildpacks"] if bp["key"] == "fixture/tools")
    assert set(layers["layers"]) == {"tool", "tool-ext"}
