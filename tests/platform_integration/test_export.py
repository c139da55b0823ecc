"""Export: layer order, reproducible tars, ownership and mtimes, labels, image config, the user's app dir."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from conformance.engine import ensure_engine
from conformance.image import AppImage
from conformance.platform.oci import BaseImage

from .conftest import shell

pytestmark = pytest.mark.docker

EPOCH_1980 = 315532801  # 1980-01-01T00:00:01Z

TWO_BUILDPACKS = {
    # fixture/layers runs first although "fixture/env-writer" sorts before it
    "layers.build.sh": """
        layer zeta launch
        put zeta/file zeta
        layer alpha launch cache metadata version 1
        put alpha/file alpha
        put alpha/sub/nested nested
    """,
    "env-writer.build.sh": """
        layer beta launch
        put beta/file beta
    """,
    "app.py": "print('hello')\n",
}


def test_image_layers_in_group_order_then_layer_name(builder, app) -> None:
    result = builder.build(app(TWO_BUILDPACKS), ["layers", "env-writer"])

    image = AppImage.load(result.image)
    run_image = BaseImage.inspect(builder.stack.run_image)
    assert image.diff_ids[: len(run_image.diff_ids)] == run_image.diff_ids
    by_layer = {(r.buildpack_id, r.name): r.diff_id for r in result.layers}
    in_order = [("fixture/layers", "alpha"), ("fixture/layers", "zeta"), ("fixture/env-writer", "beta")]
    expected = [by_layer[key] for key in in_order]
    added = image.diff_ids[len(run_image.diff_ids) :]
    assert list(added[:3]) == expected
    assert len(added) == 7  # + SBOM (at least sbom.legacy.json), app, launcher, config (no processes, no process types)
    assert [bp["key"] for bp in image.lifecycle_metadata["buildpacks"]] == ["fixture/layers", "fixture/env-writer"]
    assert image.lifecycle_metadata["sbom"]["sha"] == added[3]  # the launch SBOM layer, then the app
    assert image.lifecycle_metadata["app"][0]["sha"] == added[4]


def test_two_clean_builds_give_identical_digests(builder, app) -> None:
    source = app(TWO_BUILDPACKS)
    first = builder.build(source, ["layers", "env-writer"])
    second = builder.build(source, ["layers", "env-writer"], cache=builder.cache("other-cache"))

    one, two = AppImage.load(first.image), AppImage.load(second.image)
    assert one.diff_ids == two.diff_ids
    assert one.lifecycle_metadata["app"] == two.lifecycle_metadata["app"]
    assert [(r.name, r.diff_id) for r in first.layers] == [(r.name, r.diff_id) for r in second.layers]
    assert one.image_id == two.image_id


def test_layer_and_app_files_owned_by_build_user_with_1980_mtime(builder, app) -> None:
    result = builder.build(app(TWO_BUILDPACKS), ["layers", "env-writer"])

    paths = [
        "/layers/fixture_layers",
        "/layers/fixture_layers/alpha",
        "/layers/fixture_layers/alpha/file",
        "/layers/fixture_layers/alpha/sub/nested",
        "/layers/fixture_env-writer/beta/file",
        "/workspace",
        "/workspace/app.py",
        "/workspace/layers.build.sh",
    ]
    stat = shell(result.image, "stat -c '%u %g %Y %n' " + " ".join(paths))
    assert stat.exit_code == 0, stat.output
    assert stat.output.splitlines() == [f"1000 1000 {EPOCH_1980} {path}" for path in paths]


def test_labels_have_the_lifecycle_json_shapes(builder, app) -> None:
    files = dict(TWO_BUILDPACKS)
    files["layers.build.sh"] += """
        printf '[[processes]]\\ntype = "web"\\ncommand = ["echo", "hi"]\\ndefault = true\\n' > "$layers_dir/launch.toml"
    """
    result = builder.build(app(files), ["layers", "env-writer"])
    labels = ensure_engine().images.get(result.image).labels
    run_image = BaseImage.inspect(builder.stack.run_image)

    lifecycle = json.loads(labels["io.buildpacks.lifecycle.metadata"])
    assert {"app", "config", "launcher", "buildpacks", "runImage"} <= set(lifecycle)
    assert lifecycle["runImage"]["topLayer"] == run_image.diff_ids[-1]
    assert lifecycle["runImage"]["reference"]
    layers_bp = lifecycle["buildpacks"][0]
    assert (layers_bp["key"], layers_bp["version"]) == ("fixture/layers", "0.0.1")
    assert layers_bp["layers"]["alpha"] == {
        "sha": next(r.diff_id for r in result.layers if r.name == "alpha"),
        "data": {"version": "1"},
        "launch": True,
        "build": False,
        "cache": True,
    }
    assert set(layers_bp["layers"]) == {"alpha", "zeta"}
    for key in ("config", "launcher"):
        assert lifecycle[key]["sha"].startswith("sha256:")

    build = json.loads(labels["io.buildpacks.build.metadata"])
    assert [(bp["id"], bp["version"]) for bp in build["buildpacks"]] == [
        ("fixture/layers", "0.0.1"),
        ("fixture/env-writer", "0.0.1"),
    ]
    # no `args` in launch.toml: null, as the lifecycle's nil slice survives its metadata.toml round trip
    assert build["processes"] == [
        {"type": "web", "command": ["echo", "hi"], "args": None, "direct": True, "buildpackID": "fixture/layers"}
    ]
    assert build["buildpack-default-process-type"] == "web"
    assert "launcher" in build
    assert isinstance(json.loads(labels["io.buildpacks.project.metadata"]), dict)


def test_image_config_env_path_and_working_dir(builder, app) -> None:
    image = AppImage.load(builder.build(app(TWO_BUILDPACKS), ["layers", "env-writer"]).image)

    env = image.env
    assert env["CNB_LAYERS_DIR"] == "/layers"
    assert env["CNB_APP_DIR"] == "/workspace"
    assert env["CNB_PLATFORM_API"]
    assert env["PATH"].startswith("/cnb/process:/cnb/lifecycle:")
    assert env["PATH"].endswith("/usr/bin:/sbin:/bin")
    assert image.config["WorkingDir"] == "/workspace"
    # the run image's User as it is (none: root), never CNB_USER_ID (phase/exporter.go sets no user)
    assert image.user == (BaseImage.inspect(builder.stack.run_image).config.get("User") or "")


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest.update(f"{path.relative_to(root)} {st.st_mode} {st.st_mtime_ns} {st.st_uid}\n".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_users_app_dir_is_unchanged_when_buildpack_writes_to_workspace(builder, app) -> None:
    source = app(
        {
            "layers.build.sh": """
                echo generated > /workspace/generated.txt
                echo changed >> /workspace/app.py
                rm /workspace/README
                mkdir -p /workspace/build-output
            """,
            "app.py": "print('hello')\n",
            "README": "readme\n",
        }
    )
    os.utime(source / "app.py", (1_600_000_000, 1_600_000_000))
    before = _tree_digest(source)
    image = AppImage.load(builder.build(source, ["layers"]).image)

    assert _tree_digest(source) == before
    assert image.read_file("/workspace/generated.txt") == "generated\n"
    assert image.read_file("/workspace/app.py") == "print('hello')\nchanged\n"
    assert not image.path_exists("/workspace/README")


def test_appimage_reads_files_of_an_image_with_a_default_process(builder, app) -> None:
    """AppImage.read_file/path_exists must bypass the default process entrypoint (a regression seen here)."""
    source = app(
        {
            "layers.build.sh": """
                layer runtime launch
                put runtime/file content
                printf '[[processes]]\\ntype = "web"\\ncommand = ["echo", "web"]\\ndefault = true\\n' \\
                    > "$layers_dir/launch.toml"
            """
        }
    )
    image = AppImage.load(builder.build(source, ["layers"]).image)

    assert not image.path_exists("/no/such/file")
    assert image.read_file("/layers/fixture_layers/runtime/file") == "content"
