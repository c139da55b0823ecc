"""Real builds for issue 13 items 2, 4, 6, 11, 12: SBOM layers and their restore, app slices, layer
orders, label shapes and the image user, each as the lifecycle (v0.21.17) has them."""

from __future__ import annotations

import json

import pytest

from conformance.engine import ensure_engine
from conformance.errors import PlatformError
from conformance.image import AppImage
from conformance.platform import spec
from conformance.platform.oci import BaseImage

from .conftest import recorded_env, records, shell

pytestmark = pytest.mark.docker

SBOM_BUILD = """
    for f in python tools venv launch; do show "$f.sbom.cdx.json"; done
    layer python build launch cache metadata version 1
    put python/file p
    put python.sbom.cdx.json '{"python":1}'
    layer tools build cache
    put tools/file t
    put tools.sbom.cdx.json '{"tools":1}'
    layer venv launch
    put venv/file v
    put venv.sbom.cdx.json '{"venv":1}'
    put launch.sbom.cdx.json '{"bp":1}'
    put build.sbom.cdx.json '{"build":1}'
"""


def test_launch_sboms_are_exported_in_their_own_layer_and_restored_on_rebuild(builder, app) -> None:
    """phase/builder.go:183-222 and phase/exporter.go:649-675 (export), internal/layer/sbom_restorer.go
    (restore: cached and launch layer SBOMs come back next to <layer>.toml; buildpack-level ones don't)."""
    source = app({"sbom.build.sh": SBOM_BUILD})
    image_name, cache = builder.image_name(), builder.cache()
    first = builder.build(source, ["sbom"], image=image_name, cache=cache)

    assert {records(first.output, "sbom")[f"exists:{f}.sbom.cdx.json"][0] for f in ("python", "tools", "venv")} == {
        "no"
    }
    listing = shell(first.image, "find /layers/sbom | sort; cat /layers/sbom/launch/fixture_sbom/venv/sbom.cdx.json")
    assert listing.exit_code == 0, listing.output
    assert listing.output.splitlines() == [
        "/layers/sbom",
        "/layers/sbom/launch",
        "/layers/sbom/launch/fixture_sbom",
        "/layers/sbom/launch/fixture_sbom/python",
        "/layers/sbom/launch/fixture_sbom/python/sbom.cdx.json",
        "/layers/sbom/launch/fixture_sbom/sbom.cdx.json",
        "/layers/sbom/launch/fixture_sbom/venv",
        "/layers/sbom/launch/fixture_sbom/venv/sbom.cdx.json",
        "/layers/sbom/launch/sbom.legacy.json",
        '{"venv":1}',
    ]  # no tools (build+cache) and no build.sbom (build SBOMs stay out of the image)
    image = AppImage.load(first.image)
    label = image.lifecycle_metadata
    bp_layers = [label["buildpacks"][0]["layers"][name]["sha"] for name in ("python", "venv")]
    run_layers = len(BaseImage.inspect(builder.stack.run_image).diff_ids)
    assert list(image.diff_ids[run_layers : run_layers + 3]) == [*bp_layers, label["sbom"]["sha"]]

    second = builder.build(source, ["sbom"], image=image_name, cache=cache)
    seen = records(second.output, "sbom")
    assert seen["file:python.sbom.cdx.json"] == ['{"python":1}']
    assert seen["file:tools.sbom.cdx.json"] == ['{"tools":1}']  # from the cache's SBOM layer
    assert seen["file:venv.sbom.cdx.json"] == ['{"venv":1}']  # from the image's SBOM layer
    assert seen["exists:launch.sbom.cdx.json"] == ["no"]  # buildpack-level SBOMs are not restored
    assert "Restoring data for SBOM from cache" in second.output

    # a fresh cache: only the image is left, read from the engine; the cached python layer is not
    # restored, but its launch SBOM is (the venv's metadata restore made the buildpack's dir)
    third = builder.build(source, ["sbom"], image=image_name, cache=builder.cache("fresh"))
    seen = records(third.output, "sbom")
    assert seen["file:venv.sbom.cdx.json"] == ['{"venv":1}']
    assert seen["file:python.sbom.cdx.json"] == ['{"python":1}']
    assert seen["exists:tools.sbom.cdx.json"] == ["no"]


def test_an_undeclared_sbom_format_fails_the_build_with_52(builder, app) -> None:
    """buildpack/bomfile.go:74-101: fixture/layers declares no sbom-formats."""
    source = app({"layers.build.sh": "layer venv launch\nput venv.sbom.cdx.json '{}'\n"})
    with pytest.raises(PlatformError) as failed:
        builder.build(source, ["layers"])
    assert failed.value.exit_code == spec.ExitCode.BUILD_ERROR
    assert "undeclared SBOM media type: 'application/vnd.cyclonedx+json'" in failed.value.message
    assert "/layers/fixture_layers/venv.sbom.cdx.json" in failed.value.message


def test_slices_split_the_app_into_layers_listed_in_the_label(builder, app) -> None:
    """layers/slices.go and phase/exporter.go:450-491: [[slices]] become app layers before the rest."""
    source = app(
        {
            "app.py": "print('hi')\n",
            "static/logo.svg": "<svg/>\n",
            "static/css/site.css": "body {}\n",
            "layers.build.sh": """printf '[[slices]]\\npaths = ["static"]\\n' > "$layers_dir/launch.toml"\n""",
        }
    )
    result = builder.build(source, ["layers"])
    image = AppImage.load(result.image)
    app_layers = [entry["sha"] for entry in image.lifecycle_metadata["app"]]
    assert len(app_layers) == 2
    start = list(image.diff_ids).index(app_layers[0])
    assert list(image.diff_ids[start : start + 2]) == app_layers
    assert image.diff_ids[start + 2] == image.lifecycle_metadata["launcher"]["sha"]
    files = shell(result.image, "cd /workspace && find . | sort && stat -c '%u:%g' static/css/site.css app.py")
    assert files.output.splitlines() == [
        ".",
        "./app.py",
        "./layers.build.sh",
        "./static",
        "./static/css",
        "./static/css/site.css",
        "./static/logo.svg",
        "1000:1000",
        "1000:1000",
    ]
    again = builder.build(source, ["layers"], cache=builder.cache("again"))
    assert AppImage.load(again.image).lifecycle_metadata["app"] == image.lifecycle_metadata["app"]  # reproducible


def test_tool_and_tool_ext_are_ordered_like_the_lifecycle_at_build_export_and_launch(builder, app) -> None:
    """`tool-ext.toml` sorts before `tool.toml` (build env, buildpack/build.go:186-203) but the dir
    `tool` before `tool-ext` (exporter, buildpack/layers.go:76-78; launcher, launch/launcher.go)."""
    source = app(
        {
            "layers.build.sh": """
                layer tool build launch
                exe tool/bin/which-tool 'echo tool'
                layer tool-ext build launch
                exe tool-ext/bin/which-tool 'echo tool-ext'
            """,
            "env-reader.build.sh": 'record_env\nrecord which "$(which-tool)"\n',
        }
    )
    result = builder.build(source, ["layers", "env-reader"])
    env = recorded_env(result.output, "env-reader")
    assert env["PATH"].startswith("/layers/fixture_layers/tool/bin:/layers/fixture_layers/tool-ext/bin:")
    assert records(result.output, "env-reader")["which"] == ["tool"]

    image = AppImage.load(result.image)
    by_name = {r.name: r.diff_id for r in result.layers}
    assert list(image.diff_ids).index(by_name["tool"]) < list(image.diff_ids).index(by_name["tool-ext"])
    assert image.launch_env()["PATH"].startswith("/layers/fixture_layers/tool-ext/bin:/layers/fixture_layers/tool/bin:")


def test_labels_and_user_as_the_lifecycle_writes_them(builder, app) -> None:
    """platform/files/analyzed.go:67-76 and metadata.go:14-49; phase/exporter.go sets no User."""
    source = app(
        {"layers.build.sh": "layer bare launch\nprintf '[types]\\nlaunch = true\\n' > \"$layers_dir/bare.toml\"\n"}
    )
    result = builder.build(source, ["layers"])
    config = ensure_engine().images.get(result.image).attrs["Config"]
    lifecycle = json.loads(config["Labels"][spec.LIFECYCLE_METADATA_LABEL])
    assert lifecycle["buildpacks"][0]["layers"]["bare"]["data"] is None
    assert lifecycle["process-types"] == {"sha": ""}
    assert lifecycle["stack"] == {"runImage": {"image": builder.stack.run_image}}
    assert lifecycle["runImage"]["image"] == builder.stack.run_image
    build = json.loads(config["Labels"][spec.BUILD_METADATA_LABEL])
    assert "bom" not in build and "extensions" not in build and build["processes"] == []
    assert build["buildpacks"] == [{"id": "fixture/layers", "version": "0.0.1"}]
    run_user = BaseImage.inspect(builder.stack.run_image).config.get("User") or ""
    assert config["User"] == run_user
