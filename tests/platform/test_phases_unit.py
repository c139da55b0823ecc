"""The restore table and export assembly from records and temp dirs alone: no Docker.

The restore cases mirror the lifecycle's restorer table (phase/restorer_test.go, "Restore"): a
cached layer comes back with contents, a launch-only layer with metadata only, a build-only layer
not at all, and a cached launch layer only when it is the app image's layer.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform import spec
from conformance.platform.analyze import Analysis, PreviousBuildpack, previous_buildpacks
from conformance.platform.archive import Owner
from conformance.platform.build import BuildOutcome, read_buildpack_output, stage_sboms
from conformance.platform.buildpack import Buildpack, load_buildpack
from conformance.platform.cache import BuildCache, CachedLayer, CacheIndex
from conformance.platform.export import ExportInputs, assemble
from conformance.platform.layers import StoreToml
from conformance.platform.log import BuildLog
from conformance.platform.oci import BaseImage
from conformance.platform.restore import Restored, plan_restore, restore
from conformance.platform.workdir import WorkDirs

RUN_IMAGE = BaseImage(
    reference="example/run:1",
    image_id="sha256:" + "1" * 64,
    diff_ids=("sha256:" + "2" * 64,),
    config={"User": "1001:1000", "Env": ["PATH=/usr/bin:/bin", "CNB_USER_ID=1001"]},
    os="linux",
    architecture="amd64",
    labels={"io.buildpacks.rebasable": "true"},
)


def _buildpack(root: Path, bp_id: str = "example/python") -> Buildpack:
    root.mkdir(parents=True)
    (root / "buildpack.toml").write_text(f'api = "0.10"\n[buildpack]\nid = "{bp_id}"\nversion = "1.0.0"\n')
    (root / "bin").mkdir()
    for name in ("detect", "build"):
        (root / "bin" / name).write_text("#!/bin/sh\n")
        (root / "bin" / name).chmod(0o755)
    return load_buildpack(root)


def _analysis(layers: dict[str, dict], store: StoreToml | None = None) -> Analysis:
    return Analysis(RUN_IMAGE, None, {"example/python": PreviousBuildpack(layers, store)})


def _cached(sha: str, *, launch: bool = False, build: bool = False) -> CachedLayer:
    return CachedLayer(sha, {"v": sha[-1]}, build, launch, True)


def test_restore_table(tmp_path):
    bp = _buildpack(tmp_path / "bp")
    image_layers = {
        "launch-only": {"sha": "sha256:a", "data": {"k": 1}, "launch": True},
        "build-launch": {"sha": "sha256:b", "data": {"k": 2}, "launch": True, "build": True},
        "launch-cache": {"sha": "sha256:c", "data": {"k": 3}, "launch": True, "cache": True},
        "launch-cache-stale": {"sha": "sha256:old", "launch": True, "cache": True},
        "null-data": {"sha": "sha256:e", "data": None, "launch": True},
    }
    index = CacheIndex(
        {
            "example/python": {
                "cache-only": _cached("sha256:d"),
                "launch-cache": _cached("sha256:c", launch=True),
                "launch-cache-stale": _cached("sha256:new", launch=True),
                "launch-cache-gone": _cached("sha256:f", launch=True),
            }
        }
    )
    plan = plan_restore([bp], _analysis(image_layers), index)
    steps = {(step.layer, step.source): step.metadata for step in plan.steps}
    assert steps == {
        ("launch-only", "image"): {"k": 1},
        # `data: null` (a layer without [metadata]) comes back as a <layer>.toml without [metadata],
        # as the lifecycle's encoder leaves a nil Data out (buildpack/layermetadata.go `Encode`)
        ("null-data", "image"): None,
        ("cache-only", "cache"): {"v": "d"},
        ("launch-cache", "cache"): {"v": "c"},
    }
    assert {(s.layer, s.reason) for s in plan.skipped} == {
        ("launch-cache-stale", "it does not match the app image's layer"),
        ("launch-cache-gone", "it does not match the app image's layer"),
    }


def test_store_comes_back_per_buildpack(tmp_path):
    bp = _buildpack(tmp_path / "bp")
    plan = plan_restore([bp], _analysis({}, StoreToml({"count": 2})), CacheIndex())
    assert plan.stores == {"example/python": StoreToml({"count": 2})}


def test_previous_label_is_read_as_data():
    label = {
        "buildpacks": [
            {"key": "a", "layers": {"x": {"sha": "sha256:1", "launch": True}}, "store": {"metadata": {"n": 1}}},
            {"key": "b", "layers": "not a table"},
            {"key": "c", "layers": {}, "store": {"metadata": None}},
            "not a buildpack",
        ]
    }
    image = BaseImage("app", "sha256:9", (), {}, "linux", "amd64", {spec.LIFECYCLE_METADATA_LABEL: json.dumps(label)})
    found = previous_buildpacks(image)
    assert found["a"] == PreviousBuildpack({"x": {"sha": "sha256:1", "launch": True}}, StoreToml({"n": 1}))
    assert found["b"] == PreviousBuildpack({}, None)
    assert found["c"] == PreviousBuildpack({}, StoreToml(None))  # a store.toml without [metadata]
    assert set(found) == {"a", "b", "c"}


def _built(tmp_path: Path, layer_tomls: dict[str, str], *, store: str | None = None, launch_toml: str = ""):
    bp = _buildpack(tmp_path / "bp")
    dirs = WorkDirs(tmp_path / "work")
    for directory in (dirs.layers / bp.escaped_id, dirs.tars, dirs.workspace):
        directory.mkdir(parents=True)
    (dirs.workspace / "app.py").write_text("print('hi')\n")
    for name, toml in layer_tomls.items():
        (dirs.layers / bp.escaped_id / f"{name}.toml").write_text(textwrap.dedent(toml))
        (dirs.layers / bp.escaped_id / name).mkdir()
        (dirs.layers / bp.escaped_id / name / "file").write_text(name)
    if store is not None:
        (dirs.layers / bp.escaped_id / "store.toml").write_text(store)
    if launch_toml:
        (dirs.layers / bp.escaped_id / "launch.toml").write_text(textwrap.dedent(launch_toml))
    outcome = BuildOutcome([read_buildpack_output(bp, dirs.layers / bp.escaped_id)])
    stage_sboms(outcome, dirs)
    return bp, dirs, outcome


def test_assembly_orders_layers_and_fills_the_labels(tmp_path):
    _, dirs, outcome = _built(
        tmp_path,
        {
            "venv": "[types]\nlaunch = true\nbuild = true\n",
            "python": "[types]\nlaunch = true\ncache = true\n[metadata]\nversion = '3.13'\n",
            "pip": "[types]\nbuild = true\ncache = true\n",
            "scratch": "[types]\nbuild = true\n",
        },
        store="[metadata]\nruns = 3\n",
        launch_toml="""
            [[processes]]
            type = "web"
            command = ["python", "app.py"]
            default = true
            [[labels]]
            key = "com.example.team"
            value = "python"
        """,
    )
    cache = BuildCache(tmp_path / "cache")
    plan = assemble(outcome, _analysis({}), Restored(), cache, CacheIndex(), dirs, ExportInputs(Owner(1000, 1000)))
    assert [layer.created_by for layer in plan.layers] == [
        "layer example/python:python",
        "layer example/python:venv",
        "Software Bill-of-Materials",  # sbom.legacy.json at least (Platform API >= 0.9)
        "application",
        "launcher",
        "launch config",
        "process types",
    ]
    assert set(plan.cache_entries["example/python"]) == {"python", "pip"}
    assert {r.name: r.action for r in plan.reports} == {
        "pip": "cached only",
        "python": "exported",
        "scratch": "",
        "venv": "exported",
    }
    config = plan.config["config"]
    assert config["User"] == "1001:1000"  # the run image's user, as the lifecycle leaves it
    assert config["Entrypoint"] == ["/cnb/process/web"]
    assert config["Labels"]["com.example.team"] == "python"
    assert config["Labels"]["io.buildpacks.rebasable"] == "true"
    metadata = json.loads(config["Labels"][spec.LIFECYCLE_METADATA_LABEL])
    (bp_meta,) = metadata["buildpacks"]
    assert bp_meta["store"] == {"metadata": {"runs": 3}}
    assert set(bp_meta["layers"]) == {"python", "venv"}
    assert bp_meta["layers"]["python"]["data"] == {"version": "3.13"}
    assert metadata["runImage"]["reference"] == RUN_IMAGE.image_id
    assert plan.config["rootfs"]["diff_ids"][0] == RUN_IMAGE.diff_ids[0]


def test_a_launch_layer_without_a_directory_reuses_the_previous_images_layer(tmp_path):
    bp, dirs, _ = _built(tmp_path, {})
    (dirs.layers / bp.escaped_id / "kept.toml").write_text("[types]\nlaunch = true\n")
    outcome = BuildOutcome([read_buildpack_output(bp, dirs.layers / bp.escaped_id)])
    cache = BuildCache(tmp_path / "cache")
    inputs = ExportInputs(Owner(1000, 1000))
    plan = assemble(outcome, _analysis({"kept": {"sha": "sha256:" + "7" * 64, "launch": True}}), Restored(), cache,
                    CacheIndex(), dirs, inputs)  # fmt: skip
    assert plan.layers[0].diff_id == "sha256:" + "7" * 64 and plan.layers[0].tar is None
    with pytest.raises(PlatformError) as caught:
        assemble(outcome, _analysis({}), Restored(), cache, CacheIndex(), dirs, inputs)
    assert caught.value.exit_code == spec.ExitCode.EXPORT_ERROR
    assert "kept is launch=true but has no directory" in caught.value.message


def test_a_malformed_store_toml_fails_the_export_naming_the_in_image_path(tmp_path):
    """The lifecycle decodes store.toml only when the exporter reads the layers dir
    (buildpack/layers.go:56-62 from phase/exporter.go:367), so a bad one is an export error (62);
    the build phase, which reads every other file the buildpack wrote, passes."""
    _, dirs, outcome = _built(tmp_path, {}, store="[metadata\n")  # read_buildpack_output: no error
    with pytest.raises(PlatformError) as caught:
        assemble(outcome, _analysis({}), Restored(), BuildCache(tmp_path / "cache"), CacheIndex(), dirs,
                 ExportInputs(Owner(1000, 1000)))  # fmt: skip
    assert caught.value.exit_code == spec.ExitCode.EXPORT_ERROR
    assert "malformed store.toml" in caught.value.message and "example/python" in caught.value.message
    assert "/layers/example_python/store.toml" in caught.value.message
    assert str(tmp_path) not in caught.value.message


@pytest.mark.parametrize(
    ("store", "label"),
    [
        (None, None),
        ("", {"metadata": None}),
        ("[other]\nx = 1\n", {"metadata": None}),
        ("metadata = 2\n", {"metadata": None}),  # BurntSushi leaves the map nil, no error
        ("[metadata]\n", {"metadata": {}}),
        ("[metadata]\nb = 1\na = 2\n", {"metadata": {"a": 2, "b": 1}}),
    ],
)
def test_store_toml_in_the_label_as_the_lifecycle_marshals_it(tmp_path, store, label):
    """What `buildpacks[].store` says for each store.toml, as Go marshals the lifecycle's `*StoreTOML`
    decoded with BurntSushi/toml v1.6.0 (checked with that decoder): no file, no key; a file without
    a `[metadata]` table (or with a `metadata` that is not one), `{"metadata": null}`."""
    _, dirs, outcome = _built(tmp_path, {}, store=store)
    plan = assemble(outcome, _analysis({}), Restored(), BuildCache(tmp_path / "cache"), CacheIndex(), dirs,
                    ExportInputs(Owner(1000, 1000)))  # fmt: skip
    (bp_meta,) = json.loads(plan.config["config"]["Labels"][spec.LIFECYCLE_METADATA_LABEL])["buildpacks"]
    assert bp_meta.get("store") == label
    found = previous_buildpacks(
        BaseImage("app", "sha256:9", (), {}, "linux", "amd64", plan.config["config"]["Labels"])
    )["example/python"]
    assert found.store == (None if label is None else StoreToml(label["metadata"]))


def test_a_store_without_metadata_comes_back_as_an_empty_store_toml(tmp_path):
    """internal/layer/metadata_restorer.go:57-66 writes the label's store back when it is there at
    all; a nil `metadata` encodes to nothing (BurntSushi encode.go:526), so the file is empty."""
    bp = _buildpack(tmp_path / "bp")
    dirs = WorkDirs(tmp_path / "work")
    dirs.layers.mkdir(parents=True)
    analysis = Analysis(RUN_IMAGE, None, {bp.id: PreviousBuildpack({}, StoreToml(None))})
    plan = plan_restore([bp], analysis, CacheIndex())
    restore(plan, [bp], dirs, BuildCache(tmp_path / "cache"), BuildLog(None))
    assert (dirs.layers / bp.escaped_id / "store.toml").read_bytes() == b""


def test_a_cleared_cache_restores_only_store_toml(tmp_path):
    """`pack build --clear-cache` runs the creator with -skip-restore: acceptance/creator_test.go
    "rebuild with clear cache" restores store.toml but no layer metadata and no SBOM."""
    bp = _buildpack(tmp_path / "bp")
    analysis = _analysis({"launch-only": {"sha": "sha256:a", "data": {"k": 1}, "launch": True}}, StoreToml({"n": 1}))
    index = CacheIndex({"example/python": {"cache-only": _cached("sha256:d")}})
    plan = plan_restore([bp], analysis, index, skip_layers=True)
    assert plan.steps == [] and plan.skipped == []
    assert plan.stores == {"example/python": StoreToml({"n": 1})}
    assert plan.sbom_cache is None and plan.sbom_launch is None
