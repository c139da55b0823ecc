"""SBOM files, app slices, label shapes and layer orders, checked from records and temp dirs: no Docker.

Each test names the lifecycle code (v0.21.17) whose behaviour it pins down.
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import pytest

from conformance.errors import PlatformError
from conformance.platform import env as cnb_env
from conformance.platform import sbom as cnb_sbom
from conformance.platform import spec
from conformance.platform.analyze import Analysis, PreviousBuildpack, previous_sbom_sha
from conformance.platform.archive import Owner
from conformance.platform.build import BuildOutcome, read_buildpack_output, stage_sboms
from conformance.platform.buildpack import load_buildpack
from conformance.platform.cache import BuildCache, CachedLayer, CacheIndex
from conformance.platform.export import ExportInputs, assemble, image_user, save_cache
from conformance.platform.layers import LayerTypes, StoreToml
from conformance.platform.log import BuildLog
from conformance.platform.oci import BaseImage
from conformance.platform.restore import Restored, RestoreStep, plan_restore, restore_sboms
from conformance.platform.slices import AppPath, go_match_regex, plan_slices
from conformance.platform.workdir import WorkDirs

RUN_IMAGE = BaseImage(
    reference="example/run:1",
    image_id="sha256:" + "1" * 64,
    diff_ids=("sha256:" + "2" * 64,),
    config={"Env": ["PATH=/usr/bin:/bin", "CNB_USER_ID=1001", "CNB_GROUP_ID=1000"]},  # no User
    os="linux",
    architecture="amd64",
    labels={},
)
CDX = "application/vnd.cyclonedx+json"


def _buildpack(root: Path, *, formats: tuple[str, ...] = (CDX,), bp_id: str = "example/python", homepage: str = ""):
    root.mkdir(parents=True)
    declared = ", ".join(json.dumps(f) for f in formats)
    extra = f'homepage = "{homepage}"\n' if homepage else ""
    (root / "buildpack.toml").write_text(
        f'api = "0.10"\n[buildpack]\nid = "{bp_id}"\nversion = "1.0.0"\n{extra}sbom-formats = [{declared}]\n'
    )
    (root / "bin").mkdir()
    for name in ("detect", "build"):
        (root / "bin" / name).write_text("#!/bin/sh\n")
        (root / "bin" / name).chmod(0o755)
    return load_buildpack(root)


def _build(tmp_path: Path, files: dict[str, str], *, formats: tuple[str, ...] = (CDX,), app: dict | None = None):
    """A buildpack's layers dir holding `files` (name -> text; a name ending in / is a dir), read as
    the build phase reads it, with the SBOMs staged."""
    bp = _buildpack(tmp_path / "bp", formats=formats)
    dirs = WorkDirs(tmp_path / "work")
    for directory in (dirs.layers / bp.escaped_id, dirs.tars, dirs.workspace):
        directory.mkdir(parents=True)
    for name, text in (app or {"app.py": "print('hi')\n"}).items():
        (dirs.workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (dirs.workspace / name).write_text(text)
    for name, text in files.items():
        path = dirs.layers / bp.escaped_id / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            path.write_text(textwrap.dedent(text))
    outcome = BuildOutcome([read_buildpack_output(bp, dirs.layers / bp.escaped_id)])
    stage_sboms(outcome, dirs)
    return bp, dirs, outcome


def _assemble(dirs: WorkDirs, outcome: BuildOutcome, tmp_path: Path, analysis: Analysis | None = None):
    analysis = analysis or Analysis(RUN_IMAGE, None, {})
    return assemble(
        outcome,
        analysis,
        Restored(),
        BuildCache(tmp_path / "cache"),
        CacheIndex(),
        dirs,
        ExportInputs(Owner(1000, 1000)),
    )


def _tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as archive:
        return [m.name for m in archive.getmembers()]


LAYERS = {
    "python.toml": "[types]\nlaunch = true\ncache = true\nbuild = true\n",
    "python/": "",
    "venv.toml": "[types]\nlaunch = true\n",
    "venv/": "",
    "tools.toml": "[types]\nbuild = true\ncache = true\n",
    "tools/": "",
    "off.toml": "[types]\n",  # all types false: still a known layer name to the SBOM glob
    "python.sbom.cdx.json": '{"python": 1}',
    "venv.sbom.cdx.json": '{"venv": 1}',
    "tools.sbom.cdx.json": '{"tools": 1}',
    "off.sbom.cdx.json": '{"off": 1}',
    "ghost.sbom.cdx.json": '{"no layer": 1}',
    "launch.sbom.cdx.json": '{"bp launch": 1}',
    "build.sbom.cdx.json": '{"bp build": 1}',
}


def test_sbom_files_go_where_the_lifecycle_copies_them(tmp_path):
    """buildpack/bomfile.go:109-175 (kinds) and phase/builder.go:183-222 (targets)."""
    _, _, outcome = _build(tmp_path, LAYERS)
    targets = sorted(f.target for f in outcome.buildpacks[0].sbom_files)
    assert targets == [
        "build/example_python/off/sbom.cdx.json",
        "build/example_python/sbom.cdx.json",
        "build/example_python/tools/sbom.cdx.json",
        "cache/example_python/python/sbom.cdx.json",
        "cache/example_python/tools/sbom.cdx.json",
        "launch/example_python/python/sbom.cdx.json",
        "launch/example_python/sbom.cdx.json",
        "launch/example_python/venv/sbom.cdx.json",
    ]  # ghost.sbom.cdx.json: no ghost.toml, ignored
    stage = outcome.sbom_dir
    assert (stage / "launch/example_python/venv/sbom.cdx.json").read_text() == '{"venv": 1}'
    assert (stage / "launch" / "sbom.legacy.json").read_text() == "null\n"  # builder.go:116-125
    assert (stage / "build" / "sbom.legacy.json").read_text() == "null\n"


def test_find_sbom_files_takes_the_layer_name_before_the_first_dot():
    bp = type("BP", (), {"id": "a/b", "escaped_id": "a_b"})()
    listing = [("venv.extra.sbom.cdx.json", 0), ("venv.toml", 0), ("notes.json", 0)]
    found = cnb_sbom.find_sbom_files(bp, listing, {"venv": LayerTypes(launch=True)})  # type: ignore[arg-type]
    assert [(f.layer, f.kind, f.target) for f in found] == [("venv", "launch", "launch/a_b/venv/sbom.cdx.json")]


@pytest.mark.parametrize(
    ("file_name", "formats", "message"),
    [
        ("venv.sbom.spdx.json", (CDX,), "undeclared SBOM media type: 'application/spdx+json'"),
        ("venv.sbom.cdx.json", (), "undeclared SBOM media type: 'application/vnd.cyclonedx+json'"),
        ("venv.sbom.xml.json", (CDX,), "unsupported SBOM file format"),
        ("launch.sbom.cdx.json", ("application/vnd.cyclonedx+json; bad",), "parsing declared media type"),
    ],
)
def test_an_undeclared_or_unknown_sbom_format_fails_the_build_with_52(tmp_path, file_name, formats, message):
    """buildpack/bomfile.go:74-101 `validateMediaTypes`; the builder's error is exit 52."""
    with pytest.raises(PlatformError) as caught:
        _build(tmp_path, {"venv.toml": "[types]\nlaunch = true\n", file_name: "{}"}, formats=formats)
    assert caught.value.exit_code == spec.ExitCode.BUILD_ERROR
    assert message in caught.value.message
    assert f"/layers/example_python/{file_name}" in caught.value.message
    assert str(tmp_path) not in caught.value.message


def test_declared_media_types_may_carry_parameters_and_any_case(tmp_path):
    _build(tmp_path, {"venv.toml": "[types]\nlaunch = true\n", "venv.sbom.cdx.json": "{}"},
           formats=("Application/VND.CycloneDX+JSON; version=1.4",))  # fmt: skip


def test_launch_sboms_are_one_image_layer_after_the_buildpack_layers(tmp_path):
    """phase/exporter.go:139-150 (order) and 649-675 (`sbom` label entry); phase/cache.go:125-146."""
    _, dirs, outcome = _build(tmp_path, LAYERS)
    plan = _assemble(dirs, outcome, tmp_path)
    assert [layer.created_by for layer in plan.layers] == [
        "layer example/python:python",
        "layer example/python:venv",
        "Software Bill-of-Materials",
        "application",
        "launcher",
        "launch config",
    ]
    sbom_layer = plan.layers[2]
    assert _tar_names(sbom_layer.tar) == [
        "layers",
        "layers/sbom",
        "layers/sbom/launch",
        "layers/sbom/launch/example_python",
        "layers/sbom/launch/example_python/python",
        "layers/sbom/launch/example_python/python/sbom.cdx.json",
        "layers/sbom/launch/example_python/sbom.cdx.json",
        "layers/sbom/launch/example_python/venv",
        "layers/sbom/launch/example_python/venv/sbom.cdx.json",
        "layers/sbom/launch/sbom.legacy.json",
    ]
    label = json.loads(plan.config["config"]["Labels"][spec.LIFECYCLE_METADATA_LABEL])
    assert label["sbom"] == {"sha": sbom_layer.diff_id}
    assert plan.sbom_cache is not None
    assert [n for n in _tar_names(plan.sbom_cache[1]) if n.endswith(".json")] == [
        "layers/sbom/cache/example_python/python/sbom.cdx.json",
        "layers/sbom/cache/example_python/tools/sbom.cdx.json",
    ]
    assert plan.sbom_launch == (sbom_layer.diff_id, sbom_layer.tar)


def test_legacy_bom_tables_go_to_sbom_legacy_json(tmp_path):
    """phase/builder.go:116-125 and buildpack/bom.go:58-65: entries tagged with the buildpack."""
    _, _, outcome = _build(
        tmp_path,
        {
            "launch.toml": '[[bom]]\nname = "dep"\n[bom.metadata]\nversion = "1.2"\nurl = "a<b"\n',
            "build.toml": '[[bom]]\nname = "tool"\n',
        },
    )
    launch = (outcome.sbom_dir / "launch" / "sbom.legacy.json").read_text()
    assert launch == (
        '[{"name":"dep","metadata":{"url":"a\\u003cb","version":"1.2"},'
        '"buildpack":{"id":"example/python","version":"1.0.0"}}]\n'
    )
    build = json.loads((outcome.sbom_dir / "build" / "sbom.legacy.json").read_text())
    assert build == [{"name": "tool", "metadata": None, "buildpack": {"id": "example/python", "version": "1.0.0"}}]


def test_a_bom_entry_with_a_top_level_version_fails_the_build(tmp_path):
    """buildpack/bom.go:45-49."""
    with pytest.raises(PlatformError) as caught:
        _build(tmp_path, {"launch.toml": '[[bom]]\nname = "dep"\nversion = "1"\n'})
    assert caught.value.exit_code == spec.ExitCode.BUILD_ERROR
    assert "top level version" in caught.value.message


def _sbom_tar(path: Path, prefix: str, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def test_restore_copies_cached_then_launch_sboms_back_to_the_layers_dir(tmp_path):
    """internal/layer/sbom_restorer.go:96-153: cache first, then launch (which wins); only for
    buildpacks of the group whose layers dir the metadata restorer made; links are never read."""
    bp = _buildpack(tmp_path / "bp")
    other = _buildpack(tmp_path / "other", bp_id="example/other")
    dirs = WorkDirs(tmp_path / "work")
    for escaped in (bp.escaped_id, other.escaped_id):
        (dirs.layers / escaped).mkdir(parents=True)
    cache = BuildCache(tmp_path / "cache")
    cache_tar = _sbom_tar(
        tmp_path / "c.tar",
        "layers/sbom/cache",
        {"example_python/python/sbom.cdx.json": b"cached", "example_python/tools/sbom.cdx.json": b"tools"},
    )
    launch_tar = _sbom_tar(
        tmp_path / "l.tar",
        "layers/sbom/launch",
        {
            "example_python/python/sbom.cdx.json": b"from image",
            "example_python/sbom.cdx.json": b"buildpack-level: not restored",
            "example_other/venv/sbom.cdx.json": b"other has no restored layers",
            "example_python/deep/er/sbom.cdx.json": b"not a layer",
            "sbom.legacy.json": b"null\n",
        },
        links={"example_python/venv/sbom.cdx.json": "/etc/passwd"},
    )
    from conformance.platform.archive import sha256_file

    cache_sha, launch_sha = sha256_file(cache_tar), sha256_file(launch_tar)
    (cache.root / "blobs").mkdir(parents=True)
    cache_tar.rename(cache.blob_path(cache_sha))
    launch_tar.rename(cache.blob_path(launch_sha))
    analysis = Analysis(RUN_IMAGE, None, {"example/python": PreviousBuildpack({}, StoreToml({"n": 1}))}, launch_sha)
    plan = plan_restore([bp, other], analysis, CacheIndex(sbom={"cache": cache_sha, "launch": launch_sha}))
    assert plan.sbom_launch_cached
    restore_sboms(plan, [bp, other], dirs, cache, BuildLog(None))
    restored = {p.name: p.read_bytes() for p in (dirs.layers / bp.escaped_id).iterdir()}
    assert restored == {"python.sbom.cdx.json": b"from image", "tools.sbom.cdx.json": b"tools"}
    assert list((dirs.layers / other.escaped_id).iterdir()) == []


def test_no_sbom_is_restored_for_a_buildpack_without_restored_layers(tmp_path):
    bp = _buildpack(tmp_path / "bp")
    plan = plan_restore([bp], Analysis(RUN_IMAGE, None, {}, "sha256:" + "9" * 64), CacheIndex())
    assert plan.sbom_targets([bp]) == set()
    plan.steps.append(RestoreStep(bp, "python", "image", None))
    assert plan.sbom_targets([bp]) == {"example_python"}


def test_previous_sbom_sha_is_read_from_the_label():
    labels = {spec.LIFECYCLE_METADATA_LABEL: json.dumps({"sbom": {"sha": "sha256:ab"}})}
    image = BaseImage("app", "sha256:9", (), {}, "linux", "amd64", labels)
    assert previous_sbom_sha(image) == "sha256:ab"
    assert previous_sbom_sha(BaseImage("app", "sha256:9", (), {}, "linux", "amd64", {})) is None


def test_the_cache_keeps_the_sbom_layers(tmp_path):
    _, dirs, outcome = _build(tmp_path, LAYERS)
    cache = BuildCache(tmp_path / "cache")
    plan = _assemble(dirs, outcome, tmp_path)
    save_cache(plan, cache)
    index = cache.load_index()
    assert index.sbom == {"cache": plan.sbom_cache[0], "launch": plan.sbom_launch[0]}
    assert cache.verified_tar(plan.sbom_cache[0]) is not None
    assert set(index.buildpacks["example/python"]) == {"python", "tools"}


# --- slices -------------------------------------------------------------------------------------

TARGET_DIR = [  # the lifecycle's layers/testdata/target-dir
    AppPath("", True),
    AppPath("dir-link", False),  # a link to a dir: never walked into
    AppPath("file-link.txt", False),
    AppPath("file.txt", False),
    AppPath("other-dir", True),
    AppPath("other-dir/other-file.md", False),
    AppPath("other-dir/other-file.txt", False),
    AppPath("some-dir", True),
    AppPath("some-dir/file.md", False),
    AppPath("some-dir/some-file.txt", False),
]


def test_slices_split_the_app_dir_like_the_lifecycle():
    """layers/slices_test.go "there are n slices": n + 1 layers, parents included, dirs whole,
    nothing through links or outside the dir, the rest last."""
    layers = plan_slices(TARGET_DIR, [["*.txt", "**/*.txt"], ["other-dir"], ["dir-link/*"], ["../**/dir-to-exclude"]])
    assert [sorted(layer) for layer in layers] == [
        [
            "",
            "file-link.txt",
            "file.txt",
            "other-dir",
            "other-dir/other-file.txt",
            "some-dir",
            "some-dir/some-file.txt",
        ],
        ["", "other-dir", "other-dir/other-file.md"],
        [],
        [],
        ["", "dir-link", "some-dir", "some-dir/file.md"],
    ]


def test_a_slice_taking_everything_leaves_an_empty_last_layer_and_trailing_slash_patterns_match():
    """slices.go:214-226 (a dir whose children are all sliced is sliced) and slices_test.go
    "the pattern ends in a path separator"."""
    assert plan_slices(TARGET_DIR, [["*"]])[-1] == frozenset()
    layers = plan_slices(TARGET_DIR, [["some-dir/"]])
    assert sorted(layers[0]) == ["", "some-dir", "some-dir/file.md", "some-dir/some-file.txt"]


def test_go_match_semantics():
    assert go_match_regex("*").fullmatch("a.txt") and not go_match_regex("*").fullmatch("a/b.txt")
    assert go_match_regex("[^a-c]?").fullmatch("dx") and not go_match_regex("[^a-c]?").fullmatch("bx")
    assert go_match_regex("a\\*").fullmatch("a*") and not go_match_regex("a\\*").fullmatch("ab")
    for bad in ("[", "[]", "a\\", "[-a]"):
        with pytest.raises(ValueError):
            go_match_regex(bad)


def test_slices_become_app_layers_listed_in_the_label(tmp_path):
    """phase/exporter.go:450-491: one label `app` entry per app layer, in order."""
    app = {"app.py": "x", "static/logo.svg": "<svg/>", "static/css/site.css": "body{}"}
    _, dirs, outcome = _build(tmp_path, {"launch.toml": '[[slices]]\npaths = ["static"]\n'}, app=app)
    plan = _assemble(dirs, outcome, tmp_path)
    app_layers = [layer for layer in plan.layers if layer.created_by.startswith("application")]
    assert [layer.created_by for layer in app_layers] == ["application slice 1", "application slice 2"]
    assert _tar_names(app_layers[0].tar) == [
        "workspace",
        "workspace/static",
        "workspace/static/css",
        "workspace/static/css/site.css",
        "workspace/static/logo.svg",
    ]
    assert _tar_names(app_layers[1].tar) == ["workspace", "workspace/app.py"]
    label = json.loads(plan.config["config"]["Labels"][spec.LIFECYCLE_METADATA_LABEL])
    assert label["app"] == [{"sha": layer.diff_id} for layer in app_layers]


def test_a_bad_slice_glob_is_an_export_error(tmp_path):
    _, dirs, outcome = _build(tmp_path, {"launch.toml": '[[slices]]\npaths = ["static/["]\n'})
    with pytest.raises(PlatformError) as caught:
        _assemble(dirs, outcome, tmp_path)
    assert caught.value.exit_code == spec.ExitCode.EXPORT_ERROR


# --- label shapes -------------------------------------------------------------------------------


def test_label_shapes_follow_the_lifecycles_json_tags(tmp_path):
    """platform/files/analyzed.go:67-76, stack.go:12-19, metadata.go:14-49, launch/launch.go:17-27,
    buildpack/layermetadata.go:13-18, phase/exporter.go:121-126."""
    _, dirs, outcome = _build(
        tmp_path,
        {
            "bare.toml": "[types]\nlaunch = true\n",  # no [metadata]: data null
            "bare/": "",
            "empty.toml": "[types]\nlaunch = true\n[metadata]\n",  # empty [metadata]: data {}
            "empty/": "",
        },
    )
    plan = _assemble(dirs, outcome, tmp_path)
    labels = plan.config["config"]["Labels"]
    lifecycle = json.loads(labels[spec.LIFECYCLE_METADATA_LABEL])
    assert list(lifecycle) == ["app", "sbom", "buildpacks", "config", "launcher", "process-types", "runImage", "stack"]
    layers = lifecycle["buildpacks"][0]["layers"]
    assert layers["bare"]["data"] is None and layers["empty"]["data"] == {}
    assert "store" not in lifecycle["buildpacks"][0]
    assert lifecycle["process-types"] == {"sha": ""}  # no processes: no process-types layer
    assert "process types" not in [layer.created_by for layer in plan.layers]
    assert lifecycle["runImage"] == {
        "topLayer": RUN_IMAGE.diff_ids[-1],
        "reference": RUN_IMAGE.image_id,
        "image": RUN_IMAGE.reference,
    }
    assert lifecycle["stack"] == {"runImage": {"image": RUN_IMAGE.reference}}
    assert labels[spec.LIFECYCLE_METADATA_LABEL].startswith('{"app":[{"sha":"sha256:')  # compact, like json.Marshal
    build = json.loads(labels[spec.BUILD_METADATA_LABEL])
    assert build == {
        "buildpacks": [{"id": "example/python", "version": "1.0.0"}],  # no homepage: omitted
        "launcher": build["launcher"],
        "processes": [],
    }  # no `bom` (Platform API >= 0.9), no `extensions`, no default process type
    assert set(build["launcher"]["source"]["git"]) == {"repository", "commit"}
    assert json.loads(labels[spec.PROJECT_METADATA_LABEL]) == {}


def test_process_labels_args_null_when_not_given_and_process_types_layer(tmp_path):
    launch = """
        [[processes]]
        type = "web"
        command = ["python", "app.py"]
        default = true
        [[processes]]
        type = "worker"
        command = ["python"]
        args = []
        working-dir = "/workspace/w"
    """
    _, dirs, outcome = _build(tmp_path, {"launch.toml": launch})
    plan = _assemble(dirs, outcome, tmp_path)
    build = json.loads(plan.config["config"]["Labels"][spec.BUILD_METADATA_LABEL])
    assert build["processes"] == [
        {"type": "web", "command": ["python", "app.py"], "args": None, "direct": True, "buildpackID": "example/python"},
        {
            "type": "worker",
            "command": ["python"],
            "args": [],
            "direct": True,
            "buildpackID": "example/python",
            "working-dir": "/workspace/w",
        },
    ]
    assert build["buildpack-default-process-type"] == "web"
    process_types = plan.layers[-1]
    assert process_types.created_by == "process types"
    with tarfile.open(process_types.tar) as archive:
        links = {m.name: m.linkname for m in archive.getmembers() if m.issym()}
    assert links == {"cnb/process/web": "/cnb/lifecycle/launcher", "cnb/process/worker": "/cnb/lifecycle/launcher"}
    lifecycle = json.loads(plan.config["config"]["Labels"][spec.LIFECYCLE_METADATA_LABEL])
    assert lifecycle["process-types"] == {"sha": process_types.diff_id}


def test_layer_data_null_survives_the_cache(tmp_path):
    _, dirs, outcome = _build(tmp_path, {"c.toml": "[types]\ncache = true\n", "c/": ""})
    plan = _assemble(dirs, outcome, tmp_path)
    record, _tar = plan.cache_entries["example/python"]["c"]
    assert record == CachedLayer(record.sha, None, False, False, True)


def test_the_app_image_keeps_the_run_images_user_even_none():
    """phase/exporter.go never sets a user: no CNB_USER_ID fallback."""
    assert image_user(RUN_IMAGE) == ""
    with_user = BaseImage(**{**RUN_IMAGE.__dict__, "config": {**RUN_IMAGE.config, "User": "cnb"}})
    assert image_user(with_user) == "cnb"


# --- layer orders -------------------------------------------------------------------------------


def test_one_buildpacks_layers_are_exported_by_name_and_applied_at_build_by_toml_file_name(tmp_path):
    """buildpack/layers.go:76-78 (exporter: identifier order, `tool` < `tool-ext`) versus
    buildpack/build.go:186-203 (build env: `<name>.toml` order, `tool-ext.toml` < `tool.toml`) and
    launch/launcher.go `eachLayer` (directory order, like the exporter)."""
    files = {}
    for name in ("tool", "tool-ext"):
        files[f"{name}.toml"] = "[types]\nlaunch = true\nbuild = true\n"
        files[f"{name}/bin/"] = ""
    _, dirs, outcome = _build(tmp_path, files)
    plan = _assemble(dirs, outcome, tmp_path)
    assert [layer.created_by for layer in plan.layers[:2]] == [
        "layer example/python:tool",
        "layer example/python:tool-ext",
    ]
    bp_dir = dirs.layers / "example_python"
    layer_dirs = [cnb_env.LayerDir(bp_dir / n, f"/layers/example_python/{n}") for n in ("tool-ext", "tool")]
    build_env = cnb_env.build_env({"PATH": "/usr/bin"}, None, [layer_dirs])
    assert build_env["PATH"] == "/layers/example_python/tool/bin:/layers/example_python/tool-ext/bin:/usr/bin"
    launch_env = cnb_env.launch_env({"PATH": "/usr/bin"}, [layer_dirs])
    assert launch_env["PATH"] == "/layers/example_python/tool-ext/bin:/layers/example_python/tool/bin:/usr/bin"
    # python/venv: both orders agree (venv/bin first)
    assert cnb_env.order_layers([(Path("python"), "p"), (Path("venv"), "v")])[-1].name == "venv"


def test_layer_metadata_dates_and_key_order_in_the_label_follow_go(tmp_path):
    """A TOML datetime in [metadata] is a Go time.Time in the label (RFC 3339), map keys are sorted."""
    toml = "[types]\nlaunch = true\n[metadata]\nz = 1\nbuilt = 2024-01-02T03:04:05Z\n"
    _, dirs, outcome = _build(tmp_path, {"l.toml": toml, "l/": ""})
    label = _assemble(dirs, outcome, tmp_path).config["config"]["Labels"][spec.LIFECYCLE_METADATA_LABEL]
    assert '"data":{"built":"2024-01-02T03:04:05Z","z":1}' in label
