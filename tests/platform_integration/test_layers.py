"""Layers: `<layer>.toml` validation, ignored layers, launch.toml processes, build failures."""

from __future__ import annotations

import pytest

from conformance.errors import PlatformError
from conformance.image import AppImage

from .conftest import shell

pytestmark = pytest.mark.docker


def test_type_flags_outside_types_table_fail_naming_the_file(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                mkdir -p "$layers_dir/oldstyle"
                printf 'launch = true\\ncache = true\\n[metadata]\\nv = "1"\\n' > "$layers_dir/oldstyle.toml"
            """
        }
    )
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    message = str(failed.value)
    assert "oldstyle.toml" in message
    assert "[types]" in message
    assert "launch" in message and "cache" in message


@pytest.mark.parametrize("name", ["launch", "build", "store"])
def test_reserved_layer_name_is_refused(builder, app, name: str) -> None:
    source = app({"layers.build.sh": f'mkdir -p "$layers_dir/{name}"\nput {name}/file content\n'})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert repr(name) in str(failed.value) or f"'{name}'" in str(failed.value)
    assert "reserved" in str(failed.value)


def test_layer_with_all_types_false_is_ignored(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                layer kept launch
                put kept/file kept
                layer ignored metadata note "all types false"
                put ignored/file ignored
                mkdir -p "$layers_dir/untyped"
                printf '[metadata]\\nnote = "no types table"\\n' > "$layers_dir/untyped.toml"
                put untyped/file untyped
            """
        }
    )
    cache = builder.cache()
    result = builder.build(source, ["layers"], cache=cache)

    image = AppImage.load(result.image)
    assert [layer.name for layer in image.layers("fixture/layers")] == ["kept"]
    assert [report.name for report in result.layers] == ["kept"]
    assert image.read_file("/layers/fixture_layers/kept/file") == "kept"
    assert not image.path_exists("/layers/fixture_layers/ignored")
    assert not image.path_exists("/layers/fixture_layers/untyped")
    assert not list(cache.root.rglob("ignored*")) and not list(cache.root.rglob("untyped*"))


def test_launch_toml_processes_become_labels_links_and_entrypoint(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                cat > "$layers_dir/launch.toml" <<'EOF'
                [[processes]]
                type = "web"
                command = ["echo", "serving"]
                args = ["on", "8080"]
                default = true

                [[processes]]
                type = "worker"
                command = ["echo", "working"]
                working-dir = "/tmp"
                EOF
            """
        }
    )
    image = AppImage.load(builder.build(source, ["layers"]).image)

    processes = {p["type"]: p for p in image.processes}
    assert set(processes) == {"web", "worker"}
    assert processes["web"]["command"] == ["echo", "serving"]
    assert processes["web"]["args"] == ["on", "8080"]
    assert processes["web"]["buildpackID"] == "fixture/layers"
    assert processes["worker"]["working-dir"] == "/tmp"
    assert image.default_process == "web"
    assert image.config["Entrypoint"] == ["/cnb/process/web"]
    links = shell(image.reference, "readlink /cnb/process/web /cnb/process/worker")
    assert links.output.split() == ["/cnb/lifecycle/launcher", "/cnb/lifecycle/launcher"]


def test_build_exit_non_zero_is_exit_51_with_buildpack_output(builder, app) -> None:
    source = app({"layers.build.sh": "echo 'compiling... gcc: fatal error: no input files'\nexit 7\n"})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])

    assert failed.value.exit_code == 51
    assert "fixture/layers" in str(failed.value) and "7" in str(failed.value)
    assert "gcc: fatal error: no input files" in failed.value.build_output
