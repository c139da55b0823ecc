"""Cache and rebuild: what comes back on the next build of the same image name, per the lifecycle's table."""

from __future__ import annotations

import pytest

from conformance.image import AppImage

from .conftest import records

pytestmark = pytest.mark.docker


def _rebuild(builder, source, buildpacks=("layers",), **kwargs):
    """Two builds of `source` with the same image name and the same cache."""
    image, cache = builder.image_name(), builder.cache()
    first = builder.build(source, list(buildpacks), image=image, cache=cache, **kwargs)
    second = builder.build(source, list(buildpacks), image=image, cache=cache, **kwargs)
    return first, second


def test_cache_layer_comes_back_with_contents_and_metadata_but_not_types(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                show deps.toml
                show deps/data.txt
                layer deps build cache metadata version 1
                put deps/data.txt v1
            """
        }
    )
    first, second = _rebuild(builder, source)

    assert records(first.output, "layers")["exists:deps.toml"] == ["no"]
    seen = records(second.output, "layers")
    toml = "\n".join(seen["file:deps.toml"])
    assert 'version = "1"' in toml and "[metadata]" in toml
    assert "[types]" not in toml and "true" not in toml
    assert seen["file:deps/data.txt"] == ["v1"]
    assert 'Restoring data for "fixture/layers:deps" from cache' in second.output


@pytest.mark.parametrize("layer_below_changes", [False, True], ids=["nothing-below-changes", "layer-below-changes"])
def test_launch_only_layer_restores_metadata_and_is_reused_without_a_directory(
    builder, app, layer_below_changes: bool
) -> None:
    """Build 1 makes `runtime` (launch only). Build 2 finds only its metadata, keeps it by writing
    launch = true without a directory: the image keeps the previous layer, digest and content."""
    below = 'layer a-stamp launch\nput a-stamp/stamp "$(date +%s%N)"\n' if layer_below_changes else ""
    source = app(
        {
            "layers.build.sh": below
            + """
                show runtime.toml
                show runtime
                if [ -f "$layers_dir/runtime.toml" ] && grep -q 'version = "1"' "$layers_dir/runtime.toml"; then
                    layer_toml_only runtime launch metadata version 1
                else
                    layer runtime launch metadata version 1
                    put runtime/hello.txt 'hello from build 1'
                fi
            """
        }
    )
    first, second = _rebuild(builder, source)

    seen = records(second.output, "layers")
    assert 'version = "1"' in "\n".join(seen["file:runtime.toml"])
    assert "[types]" not in "\n".join(seen["file:runtime.toml"])
    assert seen["exists:runtime"] == ["no"]
    sha_first = next(r.diff_id for r in first.layers if r.name == "runtime")
    image = AppImage.load(second.image)
    assert image.layer("fixture/layers", "runtime").sha == sha_first
    assert sha_first in image.diff_ids
    assert image.layer("fixture/layers", "runtime").metadata == {"version": "1"}
    assert image.read_file("/layers/fixture_layers/runtime/hello.txt") == "hello from build 1"


def test_build_only_layer_without_cache_is_not_restored(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                show tools.toml
                show tools
                layer tools build metadata version 1
                put tools/bin/tool tool
            """
        }
    )
    _first, second = _rebuild(builder, source)

    seen = records(second.output, "layers")
    assert seen["exists:tools.toml"] == ["no"]
    assert seen["exists:tools"] == ["no"]
    assert not AppImage.load(second.image).path_exists("/layers/fixture_layers/tools")


def test_build_and_launch_layer_without_cache_gets_no_metadata_back(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                show both.toml
                layer both build launch metadata version 1
                put both/file content
            """
        }
    )
    _first, second = _rebuild(builder, source)

    assert records(second.output, "layers")["exists:both.toml"] == ["no"]


def test_corrupted_cache_tar_is_not_restored_and_the_build_still_works(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                show deps/data.txt
                layer deps build cache metadata version 1
                put deps/data.txt "$(printf 'x%.0s' $(seq 1 2000))"
            """
        }
    )
    image, cache = builder.image_name(), builder.cache()
    builder.build(source, ["layers"], image=image, cache=cache)
    tar = cache.tar_path("fixture_layers", "deps")
    data = bytearray(tar.read_bytes())
    offset = data.index(b"xxxxxxxx")
    data[offset : offset + 8] = b"CORRUPT!"
    tar.write_bytes(bytes(data))

    second = builder.build(source, ["layers"], image=image, cache=cache)
    assert records(second.output, "layers")["exists:deps/data.txt"] == ["no"]
    assert 'Skipping cached "fixture/layers:deps"' in second.output
    assert "corrupt" in second.output

    third = builder.build(source, ["layers"], image=image, cache=cache)
    assert records(third.output, "layers")["exists:deps/data.txt"] == ["file"]


def test_unchanged_rebuild_sends_no_layer_the_engine_already_has(builder, app, record_property) -> None:
    source = app(
        {
            "app.py": "print('hello')\n",
            "layers.build.sh": """
                if [ ! -f "$layers_dir/python/bin/python" ]; then
                    layer python build launch cache metadata version 3.13
                    exe python/bin/python 'echo python'
                else
                    layer_toml_only python build launch cache metadata version 3.13
                fi
                if [ -f "$layers_dir/runtime.toml" ]; then
                    layer_toml_only runtime launch metadata version 1
                else
                    layer runtime launch metadata version 1
                    put runtime/file runtime
                fi
            """,
        }
    )
    first, second = _rebuild(builder, source)

    record_property("first_build_sent_layers", len(first.export.sent_layers))
    record_property("rebuild_sent_layers", len(second.export.sent_layers))
    record_property("rebuild_skipped_layers", len(second.export.skipped_layers))
    print(
        f"first build sent {len(first.export.sent_layers)} layers; unchanged rebuild sent"
        f" {len(second.export.sent_layers)}, skipped {len(second.export.skipped_layers)}"
    )
    assert len(first.export.sent_layers) == 6  # python, runtime, SBOM (sbom.legacy.json), app, launcher, config
    assert second.export.sent_layers == []
    assert len(second.export.skipped_layers) == 6
    assert {r.name: r.action for r in second.layers} == {"python": "unchanged", "runtime": "reused"}
    assert second.image_id == first.image_id
