"""Real builds for the lifecycle rules of issue 13: Buildpack APIs 0.7-0.12 (item 7), CNB_EXEC_ENV and
exec-env (item 5), `<layer>.ignore` (item 9), process types and layer metadata no stricter than the
lifecycle (item 10).

The fixture buildpacks are copies of `buildpacks/layers` with another id and `api`, made per test, so
that one set of POSIX-sh helpers serves every API. Each assertion names the lifecycle code it mirrors.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.image import AppImage

from .conftest import BUILDPACKS, recorded_env, records, shell

pytestmark = pytest.mark.docker


def api_buildpack(tmp_path: Path, short: str, api: str, extra: str = "") -> str:
    """A fixture buildpack `fixture/<short>` speaking Buildpack API `api` (a copy of fixture/layers)."""
    target = tmp_path / "buildpacks" / short
    shutil.copytree(BUILDPACKS / "layers", target)
    (target / "buildpack.toml").write_text(
        f'api = "{api}"\n\n[buildpack]\nid = "fixture/{short}"\nversion = "0.0.1"\nname = "Fixture {short}"\n'
        f'{extra}\n[[targets]]\nos = "linux"\n'
    )
    return str(target)


DETECT_RECORDS_ENV = """
    cat >>"$plan" <<PLAN
[[provides]]
name = "{short}-detect"
[[requires]]
name = "{short}-detect"
[requires.metadata]
exec_env = "${{CNB_EXEC_ENV-unset}}"
platform_dir = "${{CNB_PLATFORM_DIR-unset}}"
plan_path = "${{CNB_BUILD_PLAN_PATH-unset}}"
target_os = "${{CNB_TARGET_OS-unset}}"
PLAN
"""


def test_buildpack_api_0_7_0_8_and_0_12_get_the_interface_of_their_api(builder, app, tmp_path) -> None:
    """buildpack/detect.go:177-190 and buildpack/build.go:147-160: CNB_PLATFORM_DIR, the plan path and
    CNB_LAYERS_DIR from API 0.8, CNB_TARGET_* from 0.10, CNB_EXEC_ENV from 0.12."""
    bps = [
        api_buildpack(tmp_path, short, api) for short, api in (("api07", "0.7"), ("api08", "0.8"), ("api12", "0.12"))
    ]
    files = {}
    for short in ("api07", "api08", "api12"):
        files[f"{short}.detect.sh"] = DETECT_RECORDS_ENV.format(short=short)
        files[f"{short}.build.sh"] = 'record_env\nshow "$3"\n'
    result = builder.build(app(files), bps)

    env07, env08, env12 = (recorded_env(result.output, short) for short in ("api07", "api08", "api12"))
    assert env07["CNB_BUILDPACK_DIR"] == "/cnb/buildpacks/fixture_api07/0.0.1"
    for name in ("CNB_LAYERS_DIR", "CNB_PLATFORM_DIR", "CNB_BP_PLAN_PATH", "CNB_TARGET_OS", "CNB_EXEC_ENV"):
        assert name not in env07, f"Buildpack API 0.7 build got {name}"
    assert env08["CNB_LAYERS_DIR"] == "/layers/fixture_api08"
    assert env08["CNB_PLATFORM_DIR"] == "/platform"
    assert "CNB_BP_PLAN_PATH" in env08
    assert "CNB_TARGET_OS" not in env08 and "CNB_EXEC_ENV" not in env08
    assert env12["CNB_TARGET_OS"] == "linux"
    assert env12["CNB_EXEC_ENV"] == "production"  # platform/defaults.go:133-135

    def detect_saw(short: str) -> list[str]:
        """The lines of the buildpack plan it got at build: what its detect wrote there."""
        return [
            line for key, lines in records(result.output, short).items() if key.startswith("file:") for line in lines
        ]

    assert 'exec_env = "unset"' in detect_saw("api07")
    assert 'platform_dir = "unset"' in detect_saw("api07")
    assert 'target_os = "unset"' in detect_saw("api08")
    assert 'platform_dir = "/platform"' in detect_saw("api08")
    assert 'exec_env = "production"' in detect_saw("api12")
    assert 'target_os = "linux"' in detect_saw("api12")


def test_exec_env_is_the_platforms_and_processes_keep_their_exec_env(builder, app, tmp_path) -> None:
    """CNB_EXEC_ENV comes from the platform (here `test`); launch.toml `exec-env` is kept in the
    build metadata label (buildpack/files.go:32, launch/launch.go:25, `exec-env,omitempty`)."""
    bp = api_buildpack(tmp_path, "api12", "0.12")
    source = app(
        {
            "api12.build.sh": """
                record exec_env "${CNB_EXEC_ENV-unset}"
                cat > "$layers_dir/launch.toml" <<'EOF'
                [[processes]]
                type = "tests"
                command = ["echo", "testing"]
                exec-env = ["test", "development"]

                [[processes]]
                type = "web"
                command = ["echo", "serving"]
                default = true
                EOF
            """
        }
    )
    result = builder.build(source, [bp], exec_env="test")

    assert records(result.output, "api12")["exec_env"] == ["test"]
    processes = {p["type"]: p for p in AppImage.load(result.image).processes}
    assert processes["tests"]["exec-env"] == ["test", "development"]
    assert "exec-env" not in processes["web"]
    assert all(p["direct"] is True for p in processes.values())


def test_api_0_7_string_command_runs_in_bash_with_profiles(builder, app, tmp_path):
    """Buildpack API < 0.9: `command` is a string and `direct` defaults to false (buildpack/files.go:48-59),
    so the launcher sources profile.d scripts and runs the command with bash (launch/bash.go); a
    working-dir is dropped with a warning before API 0.8 (buildpack/build.go:292-299)."""
    bp = api_buildpack(tmp_path, "api07", "0.7")
    source = app(
        {
            "api07.build.sh": """
                layer tools launch
                put tools/profile.d/greet 'export GREETING="from profile"'
                cat > "$layers_dir/launch.toml" <<'EOF'
                [[processes]]
                type = "web"
                command = "echo \\"$GREETING in $PWD\\""
                working-dir = "/tmp"
                default = true

                [[processes]]
                type = "direct-one"
                command = "echo"
                args = ["a", "$GREETING"]
                direct = true
                EOF
            """
        }
    )
    result = builder.build(source, [bp])
    assert "Ignoring working directory for process 'web'" in result.output

    image = AppImage.load(result.image)
    processes = {p["type"]: p for p in image.processes}
    assert processes["web"]["direct"] is False
    assert processes["web"]["command"] == ['echo "$GREETING in $PWD"']
    assert "working-dir" not in processes["web"]
    web = image.run_process("web")
    assert web.exit_code == 0, web.output
    assert web.output == "from profile in /workspace\n"
    direct = image.run_process("direct-one", ["user-arg"])
    # direct: no shell expansion; user args are appended for API < 0.9 (launch/process.go:66-67)
    assert direct.output == "a $GREETING user-arg\n"


@pytest.mark.parametrize("api", ["1", "0.1", "0.13", "banana"])
def test_unsupported_buildpack_api_exits_12(builder, app, tmp_path, api: str) -> None:
    bp = api_buildpack(tmp_path, "future", api)
    with pytest.raises(PlatformError) as failed:
        builder.build(app(), [bp])
    assert failed.value.exit_code == 12
    assert "buildpack API" in str(failed.value) or "Buildpack API" in str(failed.value)


PROCESS_TYPES = ["my+proc", "with space", "dollar$HOME", "quo\"te's", "semi;colon", "star*"]


def test_process_types_the_lifecycle_allows_work_end_to_end(builder, app) -> None:
    """layers/launcher.go:85-90 forbids only `/><:|&\\`; every other type gets its /cnb/process link,
    its env.launch/<type> and exec.d/<type> dirs, and is passed around as data."""
    lines = ["cat > \"$layers_dir/launch.toml\" <<'EOF'"]
    for ptype in PROCESS_TYPES:
        toml_type = ptype.replace("\\", "\\\\").replace('"', '\\"')
        lines += ["[[processes]]", f'type = "{toml_type}"', 'command = ["sh", "-c", "echo \\"$WHICH|$EXECD\\""]', ""]
    lines.append("EOF")
    setup = ["layer tools launch"]
    for ptype in PROCESS_TYPES:
        quoted = "'" + ptype.replace("'", "'\\''") + "'"
        setup.append(f'mkdir -p "$layers_dir/tools/env.launch/"{quoted} "$layers_dir/tools/exec.d/"{quoted}')
        setup.append(f'printf %s {quoted} > "$layers_dir/tools/env.launch/"{quoted}/WHICH')
        setup.append(
            f'printf \'#!/bin/sh\\necho "EXECD = \\\\"ran\\\\"" >&3\\n\' > "$layers_dir/tools/exec.d/"{quoted}/x'
        )
        setup.append(f'chmod +x "$layers_dir/tools/exec.d/"{quoted}/x')
    result = builder.build(app({"layers.build.sh": "\n".join(setup + lines) + "\n"}), ["layers"])

    image = AppImage.load(result.image)
    assert sorted(p["type"] for p in image.processes) == sorted(PROCESS_TYPES)
    for ptype in PROCESS_TYPES:
        ran = image.run_process(ptype)
        assert ran.exit_code == 0, f"process {ptype!r}: {ran.output}"
        assert ran.output == f"{ptype}|ran\n", f"process {ptype!r}"


@pytest.mark.parametrize("ptype", ["a/b", "a>b", "a:b", "a|b", "a&b"])
def test_process_type_with_a_forbidden_character_fails_like_the_exporter(builder, app, ptype: str) -> None:
    source = app(
        {
            "layers.build.sh": f"""
                cat > "$layers_dir/launch.toml" <<'EOF'
                [[processes]]
                type = "{ptype}"
                command = ["true"]
                EOF
            """
        }
    )
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])
    assert failed.value.exit_code == 62  # the lifecycle's exporter refuses it (layers/launcher.go:66-71)
    assert repr(ptype) in str(failed.value)


def test_layer_metadata_may_be_any_toml_value_and_is_restored_as_is(builder, app) -> None:
    """buildpack/layermetadata.go: `Data any` is decoded, labelled and written back as is on restore."""
    source = app(
        {
            "layers.build.sh": """
                show note.toml
                show list.toml
                mkdir -p "$layers_dir/note" "$layers_dir/list"
                echo 'metadata = "just a string"' > "$layers_dir/note.toml"
                printf '[types]\\nlaunch = true\\n' >> "$layers_dir/note.toml"
                printf 'metadata = [1, "two"]\\n[types]\\nlaunch = true\\ncache = true\\n' > "$layers_dir/list.toml"
                put note/file n
                put list/file l
            """
        }
    )
    cache = builder.cache()
    image_name = builder.image_name()
    first = builder.build(source, ["layers"], cache=cache, image=image_name)
    layers = {layer.name: layer for layer in AppImage.load(first.image).layers()}
    assert set(layers) == {"note", "list"}
    second = builder.build(source, ["layers"], cache=cache, image=image_name)

    seen = records(second.output, "layers")
    # launch-only: metadata from the image; cache: from the cache. Either way the value, not a table.
    assert seen["file:note.toml"] == ['metadata = "just a string"']
    assert "".join(seen["file:list.toml"]).replace(" ", "") == 'metadata=[1,"two",]'


def test_all_false_layer_is_renamed_ignore_after_its_buildpack(builder, app, tmp_path) -> None:
    """buildpack/build.go:205-213: `<layer>` becomes `<layer>.ignore` right after the buildpack's build;
    a later buildpack sees the renamed directory, and nothing of it reaches the image."""
    source = app(
        {
            "layers.build.sh": """
                layer kept launch
                put kept/file kept
                layer unused metadata why "no types"
                put unused/file unused
            """,
            "env-writer.build.sh": """
                for entry in /layers/fixture_layers/*; do record sees "${entry##*/}"; done
            """,
        }
    )
    result = builder.build(source, ["layers", "env-writer"])

    assert sorted(records(result.output, "env-writer")["sees"]) == ["kept", "kept.toml", "unused.ignore", "unused.toml"]
    image = AppImage.load(result.image)
    assert [layer.name for layer in image.layers("fixture/layers")] == ["kept"]
    listing = shell(result.image, "ls -A /layers/fixture_layers")
    assert listing.output.split() == ["kept"]
