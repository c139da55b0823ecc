"""Launch: the launcher in the image applies the launch env, exec.d, processes and direct commands."""

from __future__ import annotations

import pytest

from conformance.engine import ensure_engine
from conformance.image import AppImage

from .conftest import Builder, write_app

pytestmark = pytest.mark.docker

LAYERS = "/layers/fixture_layers"
WRITER = "/layers/fixture_env-writer"
RUN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

LAUNCH_APP = {
    "layers.build.sh": """
        layer alpha launch
        exe alpha/bin/alpha-tool 'echo alpha'
        put alpha/lib/liba.so lib
        put alpha/env/PATH.prepend /from-alpha-env
        put alpha/env/PATH.delim :
        put alpha/env/MODE.default from-layer
        put alpha/env/FORCED.override from-layer
        put alpha/env.launch/ONLY_LAUNCH l
        put alpha/env.build/ONLY_BUILD b
        put alpha/env.launch/web/WEB_ONLY w
        layer beta launch
        exe beta/bin/beta-tool 'echo beta'
        put beta/env/GREETING from-env
        exe beta/exec.d/greeting 'printf "GREETING = \\"from-execd\\"\\n" >&3'
        cat > "$layers_dir/launch.toml" <<'EOF'
        [[processes]]
        type = "web"
        command = ["sh", "-c", "echo \\"WEB_ONLY=${WEB_ONLY-unset}\\"; echo \\"$@\\"", "web"]
        args = ["default-arg"]

        [[processes]]
        type = "where"
        command = ["pwd"]
        working-dir = "/workspace/sub"
        EOF
    """,
    "env-writer.build.sh": """
        layer gamma launch
        exe gamma/bin/gamma-tool 'echo gamma'
    """,
    "sub/README": "a subdirectory for the working-dir process\n",
}


@pytest.fixture(scope="module")
def launch_image(stack, tmp_path_factory):
    """One image shared by the launch tests (they only run containers of it)."""
    tmp = tmp_path_factory.mktemp("launch")
    builder = Builder(stack, tmp, "launch", [])
    result = builder.build(write_app(tmp / "app", LAUNCH_APP), ["layers", "env-writer"])
    yield AppImage.load(result.image)
    ensure_engine().images.remove(result.image)


def test_launch_env_root_dirs_of_a_buildpack_first_then_env_files_per_layer(launch_image) -> None:
    env = launch_image.launch_env()

    # fixture/layers: alpha/bin, beta/bin (all root dirs) then alpha's env/PATH.prepend;
    # then fixture/env-writer's gamma/bin in front of everything.
    assert env["PATH"] == f"{WRITER}/gamma/bin:/from-alpha-env:{LAYERS}/beta/bin:{LAYERS}/alpha/bin:{RUN_PATH}"
    assert env["LD_LIBRARY_PATH"] == f"{LAYERS}/alpha/lib"
    assert env["ONLY_LAUNCH"] == "l"
    assert "ONLY_BUILD" not in env
    assert "WEB_ONLY" not in env  # env.launch/web/ applies only to the web process
    assert not {"CNB_LAYERS_DIR", "CNB_APP_DIR", "CNB_PLATFORM_API"} & set(env)


def test_default_env_file_does_not_override_docker_run_env(launch_image) -> None:
    assert launch_image.launch_env()["MODE"] == "from-layer"
    from_run = launch_image.launch_env({"MODE": "from-run", "FORCED": "from-run"})
    assert from_run["MODE"] == "from-run"
    assert from_run["FORCED"] == "from-layer"


def test_exec_d_output_overrides_a_variable(launch_image) -> None:
    assert launch_image.launch_env()["GREETING"] == "from-execd"


def test_direct_command_after_double_dash(launch_image) -> None:
    result = launch_image.run(["sh", "-c", 'echo "$0|$1|$(alpha-tool)|$(gamma-tool)"', "first arg", "second"])
    assert result.exit_code == 0, result.output
    assert result.output == "first arg|second|alpha|gamma\n"


def test_process_link_runs_its_command_with_args_or_user_args(launch_image) -> None:
    default = launch_image.run_process("web")
    assert default.exit_code == 0, default.output
    assert default.output == "WEB_ONLY=w\ndefault-arg\n"

    with_user_args = launch_image.run_process("web", ["user 1", "user2"])
    assert with_user_args.output == "WEB_ONLY=w\nuser 1 user2\n"


def test_process_working_dir_is_honoured(launch_image) -> None:
    result = launch_image.run_process("where")
    assert result.exit_code == 0, result.output
    assert result.output == "/workspace/sub\n"
