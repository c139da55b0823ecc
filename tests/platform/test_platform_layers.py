from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform import spec
from conformance.platform.layers import (
    LayerTypes,
    Process,
    StoreToml,
    container_layer_path,
    default_process_type,
    merge_processes,
    read_build_toml,
    read_launch_toml,
    read_layers,
    read_store_toml,
    write_layer_metadata,
)
from conformance.tomlcompat import load_toml, tomllib


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_reads_layers_sorted_with_types_and_metadata(tmp_path):
    write(tmp_path / "venv.toml", "[types]\nbuild = true\nlaunch = true\n")
    write(tmp_path / "python.toml", '[types]\nlaunch = true\ncache = true\n[metadata]\nversion = "3.13.5"\n')
    write(tmp_path / "pip.toml", "[types]\nbuild = true\ncache = true\n")
    (tmp_path / "python").mkdir()
    (tmp_path / "venv").mkdir()
    layers = read_layers(tmp_path, "example/python", "0.10")
    assert [layer.name for layer in layers] == ["pip", "python", "venv"]
    pip, python, venv = layers
    assert python.types == LayerTypes(build=False, launch=True, cache=True)
    assert python.metadata == {"version": "3.13.5"}
    assert python.path == tmp_path / "python" and python.has_dir
    assert not pip.has_dir  # a layer exists through its toml; the dir is optional
    assert venv.types == LayerTypes(build=True, launch=True)
    assert venv.buildpack_id == "example/python"
    assert venv.container_path() == "/layers/example_python/venv"


def test_all_false_layers_and_special_files_are_ignored(tmp_path):
    write(tmp_path / "scratch.toml", "[types]\nbuild = false\n[metadata]\na = 1\n")
    write(tmp_path / "empty.toml", "")
    write(tmp_path / "launch.toml", '[[processes]]\ntype = "web"\ncommand = ["x"]\n')
    write(tmp_path / "build.toml", "")
    write(tmp_path / "store.toml", "[metadata]\nk = 1\n")
    (tmp_path / "no-toml-dir").mkdir()
    assert read_layers(tmp_path, "bp", "0.10") == []


def test_missing_layers_dir_has_no_layers(tmp_path):
    assert read_layers(tmp_path / "absent", "bp", "0.10") == []


@pytest.mark.parametrize("reserved", ["build", "launch", "store"])
def test_reserved_layer_names(tmp_path, reserved):
    (tmp_path / reserved).mkdir()
    with pytest.raises(PlatformError) as info:
        read_layers(tmp_path, "bp", "0.10")
    assert repr(reserved) in info.value.message
    assert "reserved" in info.value.hint


def test_flags_outside_types_are_an_error(tmp_path):
    write(tmp_path / "python.toml", "launch = true\n[metadata]\n")
    with pytest.raises(PlatformError, match=r"launch must be in the \[types\] table") as info:
        read_layers(tmp_path, "bp", "0.10")
    assert "python.toml" in info.value.message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[types]\nlaunch = 'yes'\n", "types.launch must be true or false"),
        ("types = 1\n", "types must be a table"),
        ("[types\n", "malformed layer metadata file"),
    ],
)
def test_malformed_layer_toml_names_the_file(tmp_path, text, needle):
    write(tmp_path / "bad.toml", text)
    with pytest.raises(PlatformError) as info:
        read_layers(tmp_path, "bp", "0.10")
    assert needle in info.value.message
    assert "bad.toml" in info.value.message


def test_write_layer_metadata_writes_no_types(tmp_path):
    write_layer_metadata(tmp_path / "bp", "python", {"version": "3.13.5", "nested": {"a": [1, 2]}})
    data = load_toml(tmp_path / "bp" / "python.toml")
    assert data == {"metadata": {"version": "3.13.5", "nested": {"a": [1, 2]}}}
    # read back: the buildpack has not opted in again, so the layer is ignored
    assert read_layers(tmp_path / "bp", "bp", "0.10") == []
    write_layer_metadata(tmp_path / "bp", "empty", {})  # `"data": {}`: an empty table, kept as one
    assert (tmp_path / "bp" / "empty.toml").read_text() == "[metadata]\n"
    write_layer_metadata(tmp_path / "bp", "none", None)  # `"data": null`: no [metadata] at all
    assert (tmp_path / "bp" / "none.toml").read_text() == ""
    with pytest.raises(PlatformError):
        write_layer_metadata(tmp_path / "bp", "store", {"a": 1})


def test_container_layer_path():
    assert container_layer_path("a/b", "venv") == "/layers/a_b/venv"
    assert container_layer_path("a", "venv", "/other/") == "/other/a/venv"


# --- launch.toml ------------------------------------------------------------------------------------

LAUNCH = """
[[processes]]
type = "web"
command = ["gunicorn", "app:app"]
args = ["--workers", "2"]
default = true
working-dir = "/workspace/src"

[[processes]]
type = "worker.v1_x-y"
command = ["python", "worker.py"]

[[labels]]
key = "org.example.a"
value = "1"

[[slices]]
paths = ["static/*"]
"""


def test_read_launch_toml(tmp_path):
    config = read_launch_toml(write(tmp_path / "launch.toml", LAUNCH), "0.10", buildpack_id="bp")
    web, worker = config.processes
    assert web == Process("web", ["gunicorn", "app:app"], ["--workers", "2"], True, "/workspace/src", "bp")
    assert worker.type == "worker.v1_x-y" and worker.default is False and worker.working_dir is None
    assert config.labels == {"org.example.a": "1"}


def test_missing_launch_toml_is_empty(tmp_path):
    config = read_launch_toml(tmp_path / "launch.toml", "0.10")
    assert config.processes == [] and config.labels == {}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[processes]]\ntype = "web"\ncommand = "python app.py"\n', "command must be an array"),
        ('[[processes]]\ntype = "web>app"\ncommand = ["x"]\n', "invalid process type 'web>app'"),
        ('[[processes]]\ntype = "web/x"\ncommand = ["x"]\n', "invalid process type"),
        (
            '[[processes]]\ntype = "web\\n"\ncommand = ["x"]\n',
            "invalid process type 'web\\n'",
        ),  # `$` matches before a newline
        ('[[processes]]\ncommand = ["x"]\n', "invalid process type None"),
        ('[[processes]]\ntype = "web"\ncommand = []\n', "empty command"),
        ('[[processes]]\ntype = "web"\ncommand = ["x"]\ndirect = true\n', "direct is not supported"),
        ('[[processes]]\ntype = "web"\ncommand = ["x"]\nargs = "a"\n', "args must be an array"),
        (
            '[[processes]]\ntype = "a"\ncommand = ["x"]\ndefault = true\n'
            '[[processes]]\ntype = "b"\ncommand = ["y"]\ndefault = true\n',
            "several processes are marked default (a, b)",
        ),
        ("[[labels]]\nkey = 1\nvalue = 'x'\n", "labels[0] needs string key and value"),
        ("processes = 1\n", "processes must be an array of tables"),
    ],
)
def test_launch_toml_validation(tmp_path, text, needle):
    with pytest.raises(PlatformError) as info:
        read_launch_toml(write(tmp_path / "launch.toml", text), "0.10")
    assert needle in info.value.message


def test_legacy_string_command_before_api_0_9(tmp_path):
    config = read_launch_toml(write(tmp_path / "launch.toml", '[[processes]]\ntype = "w"\ncommand = "run"\n'), "0.8")
    assert config.processes[0].command == ["run"]


def proc(ptype: str, cmd: str = "x", default: bool = False) -> Process:
    return Process(ptype, [cmd], default=default)


def test_merge_processes_later_wins_and_sorted():
    merged = merge_processes([proc("web", "old", True), proc("worker")], [proc("web", "new", True), proc("console")])
    assert [(p.type, p.command[0], p.default) for p in merged] == [
        ("console", "x", False),
        ("web", "new", True),
        ("worker", "x", False),
    ]


def test_merge_processes_default_rules():
    # a later default replaces the earlier default
    merged = merge_processes([proc("web", default=True)], [proc("worker", default=True)])
    assert default_process_type(merged) == "worker"
    assert sum(p.default for p in merged) == 1
    # a non-default redefinition of the default type clears the default
    merged = merge_processes([proc("web", default=True)], [proc("web", "new")])
    assert default_process_type(merged) is None
    # a non-default process of another type keeps the default
    merged = merge_processes([proc("web", default=True)], [proc("worker")])
    assert default_process_type(merged) == "web"
    # folding from nothing
    assert merge_processes([], [proc("b"), proc("a", default=True)])[0].default


# --- build.toml / store.toml ------------------------------------------------------------------------


def test_build_toml_unmet(tmp_path):
    path = write(tmp_path / "build.toml", '[[unmet]]\nname = "python"\n[[bom]]\nname = "ignored"\n')
    assert read_build_toml(path) == ["python"]
    assert read_build_toml(path, [{"name": "python", "metadata": {}}]) == ["python"]
    with pytest.raises(PlatformError, match="not in the buildpack plan"):
        read_build_toml(path, [{"name": "node", "metadata": {}}])
    with pytest.raises(PlatformError, match="has no name"):
        read_build_toml(write(tmp_path / "b2.toml", "[[unmet]]\n"))
    assert read_build_toml(tmp_path / "absent.toml") == []


def test_store_toml(tmp_path):
    bp_dir = tmp_path / "layers" / "bp"
    assert read_store_toml(bp_dir, "bp") is None  # no layers dir, no store.toml
    write(bp_dir / "store.toml", "[metadata]\nruns = 3\n")
    assert read_store_toml(bp_dir, "bp") == StoreToml({"runs": 3})
    write(bp_dir / "store.toml", "[other]\nruns = 3\n")
    assert read_store_toml(bp_dir, "bp") == StoreToml(None)
    write(bp_dir / "store.toml", "metadata = 2\n")  # decodes to a nil map in the lifecycle, no error
    assert read_store_toml(bp_dir, "bp") == StoreToml(None)
    write(bp_dir / "store.toml", "[metadata\n")
    with pytest.raises(PlatformError) as caught:
        read_store_toml(bp_dir, "bp")
    assert caught.value.message.startswith("buildpack bp wrote a malformed store.toml /layers/bp/store.toml: ")
    assert caught.value.exit_code == spec.ExitCode.EXPORT_ERROR


def test_store_toml_written_back_as_the_lifecycle_restores_it():
    assert StoreToml(None).toml_text() == ""
    assert tomllib.loads(StoreToml({"runs": 3}).toml_text()) == {"metadata": {"runs": 3}}
    assert tomllib.loads(StoreToml({}).toml_text()) == {"metadata": {}}
