"""Build: the environment each bin/build receives (layers of earlier buildpacks, env files, user env)."""

from __future__ import annotations

import pytest

from conformance.errors import PlatformError
from conformance.platform import env as cnb_env

from .conftest import recorded_env, records

pytestmark = pytest.mark.docker

WRITER = "/layers/fixture_env-writer"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_later_buildpack_sees_earlier_build_layers_but_not_launch_only_ones(builder, app) -> None:
    source = app(
        {
            "env-writer.build.sh": """
                record_env
                show tools/bin
                layer tools build cache
                exe tools/bin/tool 'echo tool'
                put tools/lib/libtool.so 'not really a library'
                put tools/include/tool.h '/* header */'
                put tools/pkgconfig/tool.pc 'Name: tool'
                layer runtime launch
                exe runtime/bin/server 'echo server'
                put runtime/lib/libserver.so 'not really a library'
            """,
            "env-reader.build.sh": "record_env\n",
        }
    )
    cache = builder.cache()
    image = builder.image_name()
    first = builder.build(source, ["env-writer", "env-reader"], image=image, cache=cache)

    reader = recorded_env(first.output, "env-reader")
    assert reader["PATH"] == f"{WRITER}/tools/bin:{IMAGE_PATH}"
    assert reader["LD_LIBRARY_PATH"] == f"{WRITER}/tools/lib"
    assert reader["LIBRARY_PATH"] == f"{WRITER}/tools/lib"
    assert reader["CPATH"] == f"{WRITER}/tools/include"
    assert reader["PKG_CONFIG_PATH"] == f"{WRITER}/tools/pkgconfig"
    assert "runtime" not in "".join(reader.values())

    # On a rebuild the writer's own cached layer is back in its layers dir, yet not in its own env.
    second = builder.build(source, ["env-writer", "env-reader"], image=image, cache=cache)
    assert records(second.output, "env-writer")["exists:tools/bin"] == ["dir"]
    writer = recorded_env(second.output, "env-writer")
    assert writer["PATH"] == IMAGE_PATH
    assert "LD_LIBRARY_PATH" not in writer and "CPATH" not in writer


def test_env_files_every_suffix_no_default_delimiter(builder, app) -> None:
    """Layer `a-base` sets base values; layer `b-mod` (applied after it: ascending names) modifies them."""
    source = app(
        {
            "env-writer.build.sh": """
                layer a-base build
                for name in OVR PLAIN DFLT_SET PRE_NODELIM PRE_DELIM APP_NODELIM APP_DELIM; do
                    put "a-base/env/$name" base
                done
                layer b-mod build
                put b-mod/env/OVR.override over
                put b-mod/env/PLAIN plain
                put b-mod/env/DFLT_SET.default dflt
                put b-mod/env/DFLT_UNSET.default dflt
                put b-mod/env/PRE_NODELIM.prepend pre
                put b-mod/env/PRE_DELIM.prepend pre
                put b-mod/env/PRE_DELIM.delim '|'
                put b-mod/env/APP_NODELIM.append post
                put b-mod/env/APP_DELIM.append post
                put b-mod/env/APP_DELIM.delim :
                put b-mod/env.build/ONLY_BUILD b
                put b-mod/env.launch/ONLY_LAUNCH l
                layer c-launch launch
                put c-launch/env/FROM_LAUNCH_LAYER x
                put c-launch/env.build/FROM_LAUNCH_LAYER_BUILD x
            """,
            "env-reader.build.sh": "record_env\n",
        }
    )
    reader = recorded_env(builder.build(source, ["env-writer", "env-reader"]).output, "env-reader")

    assert reader["OVR"] == "over"
    assert reader["PLAIN"] == "plain"
    assert reader["DFLT_SET"] == "base"
    assert reader["DFLT_UNSET"] == "dflt"
    assert reader["PRE_NODELIM"] == "prebase"
    assert reader["PRE_DELIM"] == "pre|base"
    assert reader["APP_NODELIM"] == "basepost"
    assert reader["APP_DELIM"] == "base:post"
    assert reader["ONLY_BUILD"] == "b"
    assert "ONLY_LAUNCH" not in reader
    assert "FROM_LAUNCH_LAYER" not in reader and "FROM_LAUNCH_LAYER_BUILD" not in reader


@pytest.mark.parametrize(
    ("env_order", "first", "second"),
    [("sorted", "venv", "python"), ("lifecycle-1393", "python", "venv")],
)
def test_python_and_venv_layers_put_venv_bin_first_unless_emulating_1393(
    builder, app, env_order: str, first: str, second: str
) -> None:
    source = app(
        {
            "env-writer.build.sh": """
                layer python build launch
                exe python/bin/python 'echo python'
                layer venv build launch
                exe venv/bin/python 'echo venv'
            """,
            "env-reader.build.sh": 'record_env\nrecord python "$(python)"\n',
        }
    )
    result = builder.build(source, ["env-writer", "env-reader"], env_order=env_order)

    reader = records(result.output, "env-reader")
    path = dict(item.split("=", 1) for item in reader["env"])["PATH"]
    assert path == f"{WRITER}/{first}/bin:{WRITER}/{second}/bin:{IMAGE_PATH}"
    assert reader["python"] == [first]


def test_user_env_reaches_buildpacks_except_clear_env_ones(builder, app) -> None:
    source = app(
        {
            "env-writer.build.sh": """
                layer tools build
                exe tools/bin/tool 'echo tool'
                put tools/env/GREETING from-layer
            """,
            "env-reader.build.sh": 'record_env\nshow "$2/env/GREETING"\n',
            "clear-env.build.sh": 'record_env\nshow "$2/env/GREETING"\n',
        }
    )
    user_env = {"PATH": "/user/bin", "LD_LIBRARY_PATH": "/user/lib", "GREETING": "from-user"}
    result = builder.build(source, ["env-writer", "env-reader", "clear-env"], user_env=user_env)

    reader = recorded_env(result.output, "env-reader")
    assert reader["PATH"] == f"/user/bin:{WRITER}/tools/bin:{IMAGE_PATH}"
    assert reader["LD_LIBRARY_PATH"] == "/user/lib"
    assert reader["GREETING"] == "from-user"
    assert records(result.output, "env-reader")["file:/platform/env/GREETING"] == ["from-user"]

    cleared = recorded_env(result.output, "clear-env")
    assert cleared["PATH"] == f"{WRITER}/tools/bin:{IMAGE_PATH}"
    assert "LD_LIBRARY_PATH" not in cleared
    assert cleared["GREETING"] == "from-layer"
    assert records(result.output, "clear-env")["file:/platform/env/GREETING"] == ["from-user"]


SHELL_VARS = {"PWD", "SHLVL", "OLDPWD", "_"}
BUILD_INPUTS = {"CNB_BUILDPACK_DIR", "CNB_LAYERS_DIR", "CNB_PLATFORM_DIR", "CNB_BP_PLAN_PATH"}
TARGET_VARS = {"CNB_TARGET_OS", "CNB_TARGET_ARCH", "CNB_TARGET_DISTRO_NAME", "CNB_TARGET_DISTRO_VERSION"}


def test_only_allow_listed_variables_reach_detect_and_build(builder, app, monkeypatch) -> None:
    """The host's variables never reach buildpacks, and the build image's only when allow-listed
    (the build image sets CNB_USER_ID/CNB_GROUP_ID, which the lifecycle does not pass on)."""
    monkeypatch.setenv("BPCONFORM_HOST_ONLY_VARIABLE", "leaked")
    monkeypatch.setenv("HTTP_PROXY", "http://host-proxy.invalid:3128")
    source = app(
        {
            "layers.detect.sh": 'printf \'[[requires]]\\nname = "x"\\n[[provides]]\\nname = "x"\\n\' >> "$plan"\n'
            'echo "DETECT_ENV $(env | cut -d= -f1 | sort | tr "\\n" " ")" >&2\nexit 100\n',
            "layers.build.sh": "record_env\n",
        }
    )
    result = builder.build(app({"layers.build.sh": "record_env\n"}, name="build-app"), ["layers"])
    build_names = set(recorded_env(result.output, "layers"))
    assert build_names - SHELL_VARS <= set(cnb_env.ALLOWED_BUILD_ENV) | BUILD_INPUTS | TARGET_VARS
    assert BUILD_INPUTS | TARGET_VARS | {"PATH", "HOME"} <= build_names

    # detect's environment, read from its output in the "no group passed" report
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])
    line = next(x for x in str(failed.value).splitlines() if "DETECT_ENV" in x)
    detect_names = set(line.split("DETECT_ENV", 1)[1].split())
    detect_inputs = {"CNB_BUILDPACK_DIR", "CNB_PLATFORM_DIR", "CNB_BUILD_PLAN_PATH"}
    assert detect_names - SHELL_VARS <= set(cnb_env.ALLOWED_BUILD_ENV) | detect_inputs | TARGET_VARS
    assert detect_inputs | TARGET_VARS <= detect_names
    for leaked in ("BPCONFORM_HOST_ONLY_VARIABLE", "HTTP_PROXY", "CNB_USER_ID", "CNB_GROUP_ID"):
        assert leaked not in build_names and leaked not in detect_names


def test_build_runs_as_build_user_in_workspace_with_documented_argv_and_env(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                record uid "$(id -u):$(id -g)"
                record cwd "$(pwd)"
                record argc "$#"
                record argv "$*"
                record_env
            """
        }
    )
    found = records(builder.build(source, ["layers"]).output, "layers")
    env = dict(item.split("=", 1) for item in found["env"])

    assert found["uid"] == ["1000:1000"]
    assert found["cwd"] == ["/workspace"]
    assert found["argc"] == ["3"]
    layers_dir, platform_dir, plan_path = found["argv"][0].split(" ")
    assert layers_dir == "/layers/fixture_layers" == env["CNB_LAYERS_DIR"]
    assert platform_dir == "/platform" == env["CNB_PLATFORM_DIR"]
    assert plan_path == env["CNB_BP_PLAN_PATH"]
    assert env["CNB_BUILDPACK_DIR"] == "/cnb/buildpacks/fixture_layers/0.0.1"
    assert (env["CNB_TARGET_OS"], env["CNB_TARGET_DISTRO_NAME"], env["CNB_TARGET_DISTRO_VERSION"]) == (
        "linux",
        "debian",
        "12",
    )
    assert env["HOME"] == "/home/cnb"
