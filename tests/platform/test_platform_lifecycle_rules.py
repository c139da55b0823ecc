"""Lifecycle rules of issue 13 (items 5, 7, 9, 10) as pure functions, without Docker.

Each test names the lifecycle code (v0.21.17) it mirrors; the Docker counterparts are in
tests/platform_integration/test_lifecycle_rules.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import textwrap
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform import spec
from conformance.platform.buildpack import (
    SUPPORTED_APIS,
    Buildpack,
    RunTarget,
    api_supported,
    interface_env,
    load_buildpack,
    parse_api,
)
from conformance.platform.launcher import ProcessSpec, launcher_script, process_files
from conformance.platform.layers import (
    Process,
    build_metadata_process,
    read_launch_toml,
    read_layers,
    write_layer_metadata,
)
from conformance.tomlcompat import tomllib
from tests.platform.test_launcher import FakeImage

TARGET = RunTarget("linux", "amd64", "debian", "12")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_buildpack(root: Path, api: str, extra: str = "", stacks: str = "", targets: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = f'api = "{api}"\n[buildpack]\nid = "example/bp"\nversion = "1.0.0"\n{extra}\n{stacks}'
    if targets:
        text += '\n[[targets]]\nos = "linux"\n'
    (root / "buildpack.toml").write_text(text)
    (root / "bin").mkdir(exist_ok=True)
    for name in ("detect", "build"):
        (root / "bin" / name).write_text("#!/bin/sh\nexit 0\n")
        (root / "bin" / name).chmod(0o755)
    return root


# ------------------------------------------------------------------------------------------------ item 7: APIs


@pytest.mark.parametrize("api", ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"])
def test_the_lifecycles_buildpack_apis_are_accepted(tmp_path: Path, api: str) -> None:
    """api/apis.go:19 lists 0.7 to 0.12."""
    assert load_buildpack(make_buildpack(tmp_path / "bp", api, targets=True)).api == api


@pytest.mark.parametrize("api", ["1", "1.0", "0.1", "0.6", "0.13", "2.3", "banana", "", "0.x"])
def test_unsupported_or_unparseable_apis_exit_12(tmp_path: Path, api: str) -> None:
    """cmd/apis.go:39-74: unparseable and unsupported versions both fail with code 12."""
    with pytest.raises(PlatformError) as info:
        load_buildpack(make_buildpack(tmp_path / "bp", api, targets=True))
    assert info.value.exit_code == 12
    assert "API" in info.value.message
    assert "0.12" in info.value.hint  # says what would work


def test_missing_api_exits_12(tmp_path: Path) -> None:
    root = make_buildpack(tmp_path / "bp", "0.10")
    (root / "buildpack.toml").write_text('[buildpack]\nid = "a"\nversion = "1"\n')
    with pytest.raises(PlatformError) as info:
        load_buildpack(root)
    assert info.value.exit_code == 12


def test_version_syntax_and_support_follow_api_version_go() -> None:
    """api/version.go:11 (`v?(\\d+)\\.?(\\d*)`) and :115-120 (0.x exact, X.Y covers X.0-X.Y)."""
    assert parse_api("v0.9") == (0, 9)
    assert parse_api("1") == (1, 0)
    assert parse_api("0.10") == (0, 10)
    assert [api_supported(parse_api(v)) for v in ("0.7", "0.12", "0.6", "0.13", "1")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert SUPPORTED_APIS[0] == "0.7"


def test_bionic_stack_is_a_target_only_for_api_0_10_or_a_single_stack(tmp_path: Path) -> None:
    """buildpack/bp_descriptor.go:70-80."""
    two_stacks = '[[stacks]]\nid = "io.buildpacks.stacks.bionic"\n[[stacks]]\nid = "other"\n'
    old = load_buildpack(make_buildpack(tmp_path / "old", "0.9", stacks=two_stacks))
    new = load_buildpack(make_buildpack(tmp_path / "new", "0.10", stacks=two_stacks))
    single = load_buildpack(
        make_buildpack(tmp_path / "one", "0.9", stacks='[[stacks]]\nid = "io.buildpacks.stacks.bionic"\n')
    )
    # old: no target from the stacks, so the bin/build rule gives plain linux (runs on debian)
    assert old.supports("linux", "amd64", "debian", "12")
    assert not new.supports("linux", "amd64", "debian", "12")
    assert not single.supports("linux", "amd64", "debian", "12")
    assert single.supports("linux", "amd64", "ubuntu", "18.04")


def _bp(tmp_path: Path, api: str) -> Buildpack:
    return load_buildpack(make_buildpack(tmp_path / f"bp{api}", api, targets=True))


@pytest.mark.parametrize(
    ("api", "detect", "build"),
    [
        ("0.7", {"CNB_BUILDPACK_DIR"}, {"CNB_BUILDPACK_DIR"}),
        (
            "0.8",
            {"CNB_BUILDPACK_DIR", "CNB_PLATFORM_DIR", "CNB_BUILD_PLAN_PATH"},
            {"CNB_BUILDPACK_DIR", "CNB_PLATFORM_DIR", "CNB_BP_PLAN_PATH", "CNB_LAYERS_DIR"},
        ),
        (
            "0.10",
            {"CNB_BUILDPACK_DIR", "CNB_PLATFORM_DIR", "CNB_BUILD_PLAN_PATH", *TARGET.env()},
            {"CNB_BUILDPACK_DIR", "CNB_PLATFORM_DIR", "CNB_BP_PLAN_PATH", "CNB_LAYERS_DIR", *TARGET.env()},
        ),
        (
            "0.12",
            {"CNB_BUILDPACK_DIR", "CNB_PLATFORM_DIR", "CNB_BUILD_PLAN_PATH", "CNB_EXEC_ENV", *TARGET.env()},
            {
                "CNB_BUILDPACK_DIR",
                "CNB_PLATFORM_DIR",
                "CNB_BP_PLAN_PATH",
                "CNB_LAYERS_DIR",
                "CNB_EXEC_ENV",
                *TARGET.env(),
            },
        ),
    ],
)
def test_interface_env_depends_on_the_buildpack_api(tmp_path: Path, api: str, detect: set, build: set) -> None:
    """buildpack/detect.go:177-190, buildpack/build.go:147-160."""
    bp = _bp(tmp_path, api)
    common = {"target": TARGET}
    at_detect = interface_env(bp, "detect", plan_path="/plan", **common)
    at_build = interface_env(bp, "build", plan_path="/bp-plan", layers_dir="/layers/x", **common)
    assert set(at_detect) == detect
    assert set(at_build) == build
    assert (
        at_detect["CNB_BUILDPACK_DIR"]
        == at_build["CNB_BUILDPACK_DIR"]
        == f"/cnb/buildpacks/{bp.escaped_id}/{bp.version}"
    )
    if "CNB_PLATFORM_DIR" in build:
        assert at_detect["CNB_PLATFORM_DIR"] == at_build["CNB_PLATFORM_DIR"] == "/platform"
    if "CNB_EXEC_ENV" in build:
        assert at_build["CNB_EXEC_ENV"] == at_detect["CNB_EXEC_ENV"] == "production"
        assert (
            interface_env(bp, "build", plan_path="/p", layers_dir="/l", exec_env="test", **common)["CNB_EXEC_ENV"]
            == "test"
        )
        assert "CNB_EXEC_ENV" not in interface_env(bp, "detect", plan_path="/p", exec_env="", **common)


def _launch(tmp_path: Path, text: str, api: str):
    return read_launch_toml(write(tmp_path / "bp" / "launch.toml", text), api, "example/bp")


def test_api_before_0_9_takes_a_string_command_and_direct_defaults_to_false(tmp_path: Path) -> None:
    """buildpack/files.go:44-59 (commands are strings, legacy direct defaults to false)."""
    config = _launch(
        tmp_path,
        """
        [[processes]]
        type = "web"
        command = "python app.py"
        [[processes]]
        type = "worker"
        command = "worker"
        args = ["--fast"]
        direct = true
        """,
        "0.8",
    )
    web, worker = config.processes
    assert (web.command, web.direct) == (["python app.py"], False)
    assert (worker.command, worker.args, worker.direct) == (["worker"], ["--fast"], True)


def test_api_before_0_9_refuses_an_array_command(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="command must be a string"):
        _launch(tmp_path, '[[processes]]\ntype = "web"\ncommand = ["python"]\n', "0.8")


def test_api_0_9_refuses_direct_and_string_commands(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="direct is not supported"):
        _launch(tmp_path, '[[processes]]\ntype = "web"\ncommand = ["x"]\ndirect = false\n', "0.9")
    with pytest.raises(PlatformError, match="must be an array"):
        _launch(tmp_path, '[[processes]]\ntype = "web"\ncommand = "x"\n', "0.9")


def test_working_dir_is_dropped_with_a_warning_before_api_0_8(tmp_path: Path) -> None:
    """buildpack/build.go:292-299."""
    text = '[[processes]]\ntype = "web"\ncommand = "x"\nworking-dir = "/srv"\n'
    old = _launch(tmp_path, text, "0.7")
    assert old.processes[0].working_dir is None
    assert old.warnings == [
        "Warning: process working directory isn't supported in this buildpack api version."
        " Ignoring working directory for process 'web'"
    ]
    new = _launch(tmp_path, text, "0.8")
    assert new.processes[0].working_dir == "/srv" and new.warnings == []


def test_build_metadata_process_has_the_lifecycles_shape() -> None:
    """launch/launch.go:17-27 JSON tags; `default` is cleared by the builder (phase/builder.go:258-268)."""
    legacy = Process("web", ["python app.py"], default=True, buildpack_id="a/b", direct=False)
    modern = Process("tests", ["pytest"], ["-x"], working_dir="/w", buildpack_id="c", exec_env=["test"])
    assert build_metadata_process(legacy) == {
        "type": "web",
        "command": ["python app.py"],
        "args": [],
        "direct": False,
        "buildpackID": "a/b",
    }
    assert build_metadata_process(modern) == {
        "type": "tests",
        "command": ["pytest"],
        "args": ["-x"],
        "direct": True,
        "buildpackID": "c",
        "working-dir": "/w",
        "exec-env": ["test"],
    }


# ------------------------------------------------------------------------------------------------ item 5: exec-env


def test_buildpack_exec_env_is_read_and_validated(tmp_path: Path) -> None:
    bp = load_buildpack(make_buildpack(tmp_path / "a", "0.12", extra='exec-env = ["test", "*"]', targets=True))
    assert bp.exec_env == ("test", "*")
    assert load_buildpack(make_buildpack(tmp_path / "b", "0.12", targets=True)).exec_env == ()
    with pytest.raises(PlatformError, match="exec-env must be an array"):
        load_buildpack(make_buildpack(tmp_path / "c", "0.12", extra='exec-env = "test"', targets=True))


def test_process_exec_env_is_read(tmp_path: Path) -> None:
    config = _launch(tmp_path, '[[processes]]\ntype = "t"\ncommand = ["x"]\nexec-env = ["test"]\n', "0.12")
    assert config.processes[0].exec_env == ["test"]


# ------------------------------------------------------------------------------------------------ item 10: types


ALLOWED_TYPES = ["my+proc", "with space", "dollar$HOME", "quo\"te's", "semi;colon", "star*", "[x]", "-dash", "é"]
FORBIDDEN_TYPES = ["a/b", "a>b", "a<b", "a:b", "a|b", "a&b", "a\\b", "a\nb", "a\tb", ".", "..", ""]


@pytest.mark.parametrize("ptype", ALLOWED_TYPES)
def test_launch_toml_accepts_every_type_the_lifecycle_does(tmp_path: Path, ptype: str) -> None:
    """layers/launcher.go:85-90: only `/><:|&\\` are forbidden."""
    config = _launch(tmp_path, f'[[processes]]\ntype = {json.dumps(ptype)}\ncommand = ["x"]\n', "0.10")
    assert config.processes[0].type == ptype
    assert spec.process_type_problem(ptype) is None
    assert f"processes/{ptype}" in process_files([ProcessSpec(ptype, ["x"], [], None, False)], None)


@pytest.mark.parametrize("ptype", FORBIDDEN_TYPES)
def test_forbidden_types_are_refused_with_the_export_code(tmp_path: Path, ptype: str) -> None:
    with pytest.raises(PlatformError) as info:
        _launch(tmp_path, f'[[processes]]\ntype = {json.dumps(ptype)}\ncommand = ["x"]\n', "0.10")
    assert info.value.exit_code == 62  # the exporter's code: it is refused when writing the process-types layer
    with pytest.raises(PlatformError, match="invalid process type"):
        process_files([ProcessSpec(ptype, ["x"], [], None, False)], None)


def test_launcher_script_carries_the_spec_rule() -> None:
    """One rule: launcher.py writes spec.PROCESS_TYPE_FORBIDDEN into the script it installs."""
    line = next(line for line in launcher_script().decode().splitlines() if line.startswith("_cnb_type_forbidden="))
    value = subprocess.run(["sh", "-c", f'{line}\nprintf %s "$_cnb_type_forbidden"'], capture_output=True, text=True)
    assert value.stdout == spec.PROCESS_TYPE_FORBIDDEN


@pytest.fixture
def image(tmp_path: Path) -> FakeImage:
    return FakeImage(tmp_path)


def _canaries(image: FakeImage) -> list[Path]:
    """Where a `touch canary` smuggled into a type would land (the launcher runs in the app dir)."""
    return [image.app / "canary", image.root / "canary"]


def test_launcher_runs_processes_with_any_allowed_type_as_data(image: FakeImage) -> None:
    """argv0 selection, env.launch/<type> and exec.d/<type> with types full of shell syntax; a type
    that would expand or split (`$HOME`, spaces, `*`, quotes) must reach each step literally."""
    types = [*ALLOWED_TYPES, "x$(touch canary)", "x`touch canary`"]
    image.set_order(["bp"])
    image.set_processes([image.process(ptype) for ptype in types])
    for ptype in types:
        image.env_file("bp", "layer", f"env.launch/{ptype}/WHICH", ptype)
        image.exec_d("bp", "layer", f"{ptype}/set", f"printf 'EXECD = %s\\n' {shlex.quote(json.dumps(ptype))} >&3\n")
    for ptype in types:
        env = image.run_process(ptype).env
        assert env["WHICH"] == ptype
        assert env["EXECD"] == ptype
    assert not any(path.exists() for path in _canaries(image))


@pytest.mark.skipif(not os.path.exists("/bin/bash"), reason="the non-direct launch needs /bin/bash")
def test_non_direct_process_sources_profiles_of_its_type_as_data(image: FakeImage) -> None:
    """Buildpack API < 0.9, direct = false: bash sources profile.d and profile.d/<type>, then runs the
    command (launch/bash.go): as a script without args, as bash-evaluated tokens with args. Paths are
    quoted, so a type or layer name is never code."""
    ptype = "we$(touch canary)b 'x'"
    script = ProcessSpec(ptype, [f"{image.reporter} $MINE"], [], None, False, buildpack_api="0.8", direct=False)
    tokens = ProcessSpec("tokens", [str(image.reporter)], ["$ALL"], None, False, buildpack_api="0.8", direct=False)
    image.set_order(["bp"])
    image.set_processes([script, tokens])
    image.env_file("bp", "layer", "profile.d/all", "export ALL=1\n")
    image.env_file("bp", "layer", f"profile.d/{ptype}/mine", "export MINE=2\n")
    image.env_file("bp", "lay'er $(touch canary)", "profile.d/other", "export OTHER=3\n")

    as_script = image.run_process(ptype).report
    assert (as_script["env"]["ALL"], as_script["env"]["MINE"], as_script["env"]["OTHER"]) == ("1", "2", "3")
    assert as_script["argv"] == ["2"]  # the command string is a bash script
    # with args: each token is evaluated by bash; API < 0.9 appends the user's args (launch/process.go:66-67)
    as_tokens = image.run_process("tokens", "user $ALL").report
    assert as_tokens["argv"] == ["1", "user 1"]
    assert "MINE" not in as_tokens["env"]  # profile.d/<type> is for that type only
    assert not any(path.exists() for path in _canaries(image))


# ------------------------------------------------------------------------------------------------ item 10: metadata


@pytest.mark.parametrize("value", ["just a string", 7, 1.5, False, [1, "two"], {"a": {"b": 1}}, ""])
def test_layer_metadata_may_be_any_value_and_is_written_back_as_is(tmp_path: Path, value) -> None:
    """buildpack/layermetadata.go:13-18 (`Data any`), :78-85 (restore writes `metadata` as is)."""
    from conformance.tomlcompat import dumps_toml

    bp_dir = tmp_path / "layers" / "bp"
    write(bp_dir / "note.toml", dumps_toml({"metadata": value, "types": {"launch": True}}))
    (layer,) = read_layers(bp_dir, "bp", "0.10")
    assert layer.metadata == value
    assert layer.metadata_table == (value if isinstance(value, dict) else {})
    restored = tmp_path / "restored" / "bp"
    write_layer_metadata(restored, "note", layer.metadata)
    assert tomllib.loads((restored / "note.toml").read_text()) == {"metadata": value}


def test_no_metadata_restores_an_empty_file_and_an_empty_table_an_empty_table(tmp_path: Path) -> None:
    """The label's `data: null` leaves [metadata] out; `{}` is an empty table (BurntSushi/toml encodes it)."""
    write_layer_metadata(tmp_path / "bp", "x", None)
    assert (tmp_path / "bp" / "x.toml").read_text() == ""
    write_layer_metadata(tmp_path / "bp", "x", {})
    assert tomllib.loads((tmp_path / "bp" / "x.toml").read_text()) == {"metadata": {}}


# ------------------------------------------------------------------------------------------------ item 9: .ignore


def test_all_false_layer_dir_is_renamed_ignore(tmp_path: Path) -> None:
    """buildpack/build.go:205-213 (`renameLayerDirIfNeeded`); a missing dir is fine."""
    bp_dir = tmp_path / "layers" / "bp"
    write(bp_dir / "kept.toml", "[types]\nbuild = true\n")
    write(bp_dir / "unused.toml", "[metadata]\nv = 1\n")
    write(bp_dir / "nodir.toml", "[types]\nlaunch = false\n")
    write(bp_dir / "unused" / "file", "content")
    (bp_dir / "kept").mkdir()
    layers = read_layers(bp_dir, "bp", "0.10", rename_ignored=True)
    assert [layer.name for layer in layers] == ["kept"]
    assert sorted(p.name for p in bp_dir.iterdir()) == [
        "kept",
        "kept.toml",
        "nodir.toml",
        "unused.ignore",
        "unused.toml",
    ]
    assert (bp_dir / "unused.ignore" / "file").read_text() == "content"


def test_without_the_flag_nothing_is_renamed(tmp_path: Path) -> None:
    bp_dir = tmp_path / "layers" / "bp"
    write(bp_dir / "unused.toml", "")
    (bp_dir / "unused").mkdir()
    assert read_layers(bp_dir, "bp", "0.10") == []
    assert (bp_dir / "unused").is_dir()


def test_a_non_empty_ignore_dir_in_the_way_fails_the_build(tmp_path: Path) -> None:
    bp_dir = tmp_path / "layers" / "bp"
    write(bp_dir / "unused.toml", "")
    write(bp_dir / "unused" / "a", "new")
    write(bp_dir / "unused.ignore" / "b", "old")
    with pytest.raises(PlatformError) as info:
        read_layers(bp_dir, "bp", "0.10", rename_ignored=True)
    assert info.value.exit_code == 52
    assert "unused.ignore" in info.value.message


def test_a_linked_buildpack_layers_dir_is_never_followed_for_the_rename(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "unused.toml", "")
    (outside / "unused").mkdir()
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "bp").symlink_to(outside)
    with pytest.raises(PlatformError):
        read_layers(layers / "bp", "bp", "0.10", rename_ignored=True)
    assert (outside / "unused").is_dir() and not (outside / "unused.ignore").exists()


def test_spec_style_exec_env_tables_are_refused_like_the_lifecycle(tmp_path: Path) -> None:
    """The spec shows `[[buildpack.exec-env]] name = ...`; the lifecycle decodes `exec-env` into a
    []string (buildpack/descriptor.go:26), which such tables fail."""
    root = make_buildpack(tmp_path / "bp", "0.12", targets=True)
    with (root / "buildpack.toml").open("a") as handle:
        handle.write('\n[[buildpack.exec-env]]\nname = "test"\n')
    with pytest.raises(PlatformError) as info:
        load_buildpack(root)
    assert "[[buildpack.exec-env]]" in info.value.hint
