"""`bpconform inspect`: the rendering from recorded labels (no Docker), then one real build inspected.

The recorded labels below have the shapes the embedded platform and the lifecycle write
(`io.buildpacks.lifecycle.metadata`, `io.buildpacks.build.metadata`); the integration test at the
end checks the command against what a build of fixture buildpacks actually produced.
"""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from conformance import cli
from conformance.image import history_sizes
from conformance.inspect import (
    INSPECT_ERROR,
    CacheView,
    ImageFacts,
    InspectError,
    inspect_facts,
    read_cache,
    render_text,
    tar_content_size,
    to_json,
)
from conformance.platform.cache import CachedLayer, CacheIndex

RUN_BASE, RUN_TOP = "sha256:" + "1" * 64, "sha256:" + "2" * 64
PYTHON, VENV, APP, LAUNCHER, CONFIG = (f"sha256:{c * 64}" for c in "abcde")
PIP, PIP_CACHE = "sha256:" + "f" * 64, "sha256:" + "9" * 64
BP = "example/python"


def lifecycle_label(**changes: Any) -> dict[str, Any]:
    label = {
        "app": [{"sha": APP}],
        "config": {"sha": CONFIG},
        "launcher": {"sha": LAUNCHER},
        "buildpacks": [
            {
                "key": BP,
                "version": "1.2.3",
                "layers": {
                    "venv": {"sha": VENV, "build": True, "launch": True, "cache": False, "data": {}},
                    "python": {"sha": PYTHON, "build": True, "launch": True, "cache": True, "data": {"v": "3.13"}},
                },
            }
        ],
        "runImage": {"topLayer": RUN_TOP, "reference": "sha256:" + "7" * 64, "image": "example/run:bookworm"},
    }
    label.update(changes)
    return label


def build_label(**changes: Any) -> dict[str, Any]:
    label = {
        "buildpacks": [{"id": BP, "version": "1.2.3", "homepage": "https://example.org/python"}],
        "processes": [
            {"type": "worker", "command": ["python", "worker.py"], "args": [], "direct": True, "buildpackID": BP},
            {
                "type": "web",
                "command": ["python", "-m", "gunicorn"],
                "args": ["app:app"],
                "direct": True,
                "buildpackID": BP,
                "working-dir": "/workspace/site",
            },
        ],
        "buildpack-default-process-type": "web",
    }
    label.update(changes)
    return label


def facts(
    *,
    lifecycle: dict[str, Any] | None = None,
    build: dict[str, Any] | None = None,
    entrypoint: list[str] | None = None,
    diff_ids: list[str] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> ImageFacts:
    config = {
        "Entrypoint": ["/cnb/process/web"] if entrypoint is None else entrypoint,
        "WorkingDir": "/workspace",
        "Labels": {
            "io.buildpacks.lifecycle.metadata": json.dumps(lifecycle if lifecycle is not None else lifecycle_label()),
            "io.buildpacks.build.metadata": json.dumps(build if build is not None else build_label()),
            **(extra_labels or {}),
        },
    }
    layers = diff_ids or [RUN_BASE, RUN_TOP, PYTHON, VENV, APP, LAUNCHER, CONFIG]
    sizes = {digest: 1000 * (index + 1) for index, digest in enumerate(layers)}
    return ImageFacts.from_labels("example/app:1", config, layers, image_id="sha256:" + "8" * 64, sizes=sizes)


def cache_view(buildpacks: dict[str, dict[str, CachedLayer]], sizes: dict[tuple[str, str], int] | None = None):
    return CacheView(Path("/cache/example_app"), CacheIndex(buildpacks), sizes or {})


def cached(sha: str, *, build: bool = False, launch: bool = False) -> CachedLayer:
    return CachedLayer(sha=sha, data={}, build=build, launch=launch, cache=True)


def rows(text: str, section: str) -> list[str]:
    """The lines of one text section (after its heading, up to the next blank line)."""
    lines = text.splitlines()
    start = lines.index(f"{section}:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


# -- pack's sections ---------------------------------------------------------------------------


def test_text_has_packs_sections_with_the_default_process_first_and_marked() -> None:
    text = render_text(inspect_facts(facts()))

    assert "Base Image:\n  Reference: sha256:" + "7" * 64 + "\n  Top Layer: " + RUN_TOP in text
    assert rows(text, "Run Images") == ["  example/run:bookworm"]
    buildpacks = rows(text, "Buildpacks")
    assert buildpacks[0].split() == ["ID", "VERSION", "HOMEPAGE"]
    assert buildpacks[1].split() == [BP, "1.2.3", "https://example.org/python"]
    processes = rows(text, "Processes")
    assert processes[0].split() == ["TYPE", "COMMAND", "ARGS", "WORK", "DIR"]
    # the default (what the entrypoint starts) comes first although the label lists it second
    assert processes[1].split() == ["web", "(default)", "python", "-m", "gunicorn", "app:app", "/workspace/site"]
    # no working-dir in the label: the image's WorkingDir, as pack shows it
    assert processes[2].split() == ["worker", "python", "worker.py", "/workspace"]
    # columns are aligned: every row's COMMAND starts where the header's does
    column = processes[0].index("COMMAND")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in processes[1:])


def test_default_process_is_what_the_entrypoint_starts_not_the_labels_choice() -> None:
    inspection = inspect_facts(facts(entrypoint=["/cnb/process/worker"]))

    assert inspection.default_process == "worker"
    assert [(p.type, p.default) for p in inspection.processes] == [("worker", True), ("web", False)]
    assert any("chose 'web'" in note and "'worker'" in note for note in inspection.notes)


def test_image_without_processes() -> None:
    inspection = inspect_facts(
        facts(build=build_label(processes=[], **{"buildpack-default-process-type": None}), entrypoint=[])
    )
    text = render_text(inspection)

    assert rows(text, "Processes") == ["  (none declared)"]
    document = to_json(inspection)
    assert document["processes"] == []
    assert document["default_process"] is None
    assert document["notes"] == []


def test_image_with_processes_but_no_default() -> None:
    inspection = inspect_facts(
        facts(build=build_label(**{"buildpack-default-process-type": None}), entrypoint=["/cnb/lifecycle/launcher"])
    )
    text = render_text(inspection)

    assert "(default)" not in text
    assert "(no default: the entrypoint is the bare launcher)" in text
    assert [p.type for p in inspection.processes] == ["worker", "web"]  # label order, none promoted
    assert to_json(inspection)["default_process"] is None
    assert not any(p["default"] for p in to_json(inspection)["processes"])


def test_entrypoint_naming_an_undeclared_process_is_a_note_not_a_default() -> None:
    inspection = inspect_facts(facts(entrypoint=["/cnb/process/ghost"]))

    assert inspection.default_process is None
    assert any("'ghost'" in note for note in inspection.notes)


def test_older_platforms_string_command_is_one_word() -> None:
    old = build_label(processes=[{"type": "web", "command": "python app.py", "args": ["-v"], "direct": False}])
    inspection = inspect_facts(facts(build=old))

    assert inspection.processes[0].command == ("python app.py",)
    text = render_text(inspection)
    assert rows(text, "Processes")[0].split() == ["TYPE", "SHELL", "COMMAND", "ARGS", "WORK", "DIR"]
    assert "bash" in rows(text, "Processes")[1]  # direct = false: run through a shell, as pack shows it


def test_buildpacks_fall_back_to_the_lifecycle_label() -> None:
    inspection = inspect_facts(facts(build={}))

    assert inspection.buildpacks == ((BP, "1.2.3", ""),)
    assert rows(render_text(inspection), "Buildpacks")[1].split() == [BP, "1.2.3", "-"]


# -- layers --------------------------------------------------------------------------------------


def test_layers_in_image_order_with_types_digest_and_size() -> None:
    inspection = inspect_facts(facts())

    assert [(layer.name, layer.types, layer.digest, layer.size) for layer in inspection.layers] == [
        ("python", "build,launch,cache", PYTHON, 3000),
        ("venv", "build,launch", VENV, 4000),
    ]
    assert all(layer.in_image and not layer.in_cache for layer in inspection.layers)
    table = rows(render_text(inspection), "Layers")
    assert table[0].split() == ["BUILDPACK", "LAYER", "TYPES", "SIZE", "DIGEST", "WHERE"]
    assert table[1].split() == [BP, "python", "build,launch,cache", "3.0", "kB", "a" * 12, "image"]
    assert len(table) == 3  # no cache given: no cache note


def test_layer_without_digest_is_shown_as_unknown_not_in_the_image() -> None:
    label = lifecycle_label()
    label["buildpacks"][0]["layers"]["venv"] = {"launch": True, "build": True}  # reused, no sha recorded
    inspection = inspect_facts(facts(lifecycle=label))

    venv = next(layer for layer in inspection.layers if layer.name == "venv")
    assert (venv.digest, venv.size, venv.in_image, venv.where) == (None, None, False, "label only")
    line = next(line for line in rows(render_text(inspection), "Layers") if " venv " in line)
    assert line.split() == [BP, "venv", "build,launch", "-", "-", "label", "only"]
    entry = next(layer for layer in to_json(inspection)["layers"] if layer["name"] == "venv")
    assert entry["digest"] is None and entry["size"] is None and entry["in_image"] is False
    # the venv's diffID is still a layer of the image, but nothing claims it
    assert [layer.kind for layer in inspection.image_layers if layer.digest == VENV] == ["unlisted"]


def test_cache_adds_build_and_cache_only_layers_marked_not_in_the_image() -> None:
    cache = cache_view(
        {
            BP: {
                "python": cached(PYTHON, build=True, launch=True),
                "pip": cached(PIP, build=True),
                "pip-cache": cached(PIP_CACHE),
            }
        },
        {(BP, "pip"): 12_000_000, (BP, "pip-cache"): 5},
    )
    inspection = inspect_facts(facts(), cache)

    assert [(layer.name, layer.where, layer.size) for layer in inspection.layers] == [
        ("python", "image+cache", 3000),
        ("venv", "image", 4000),
        ("pip", "cache", 12_000_000),
        ("pip-cache", "cache", 5),
    ]
    assert [(layer.build, layer.launch, layer.cache) for layer in inspection.layers[2:]] == [
        (True, False, True),
        (False, False, True),
    ]
    text = render_text(inspection)
    assert any(line.split()[1:4] == ["pip", "build,cache", "12.0"] for line in rows(text, "Layers"))
    assert rows(text, "Build Cache") == [
        "  /cache/example_app",
        "  from this build: its layers that are not in the image are shown with WHERE = cache",
    ]
    assert to_json(inspection)["cache"] == {"path": "/cache/example_app", "status": "found", "reason": None}


def test_cache_of_another_build_is_not_mixed_in() -> None:
    stale = cache_view({BP: {"python": cached("sha256:" + "0" * 64, launch=True), "pip": cached(PIP, build=True)}})
    inspection = inspect_facts(facts(), stale)

    assert [layer.name for layer in inspection.layers] == ["python", "venv"]
    assert not any(layer.in_cache for layer in inspection.layers)
    assert inspection.cache is not None and inspection.cache.status == "mismatch"
    assert "example/python:python" in inspection.cache.reason and PYTHON in inspection.cache.reason
    assert "from another build, so its layers are not shown" in render_text(inspection)


def test_cache_with_a_buildpack_the_image_lacks_is_another_build() -> None:
    inspection = inspect_facts(facts(), cache_view({"other/bp": {"x": cached(PIP)}}))

    assert inspection.cache is not None and inspection.cache.status == "mismatch"
    assert "other/bp" in inspection.cache.reason
    assert len(inspection.layers) == 2


def test_absent_cache_is_said() -> None:
    inspection = inspect_facts(facts(), CacheView(Path("/nowhere"), None))

    assert inspection.cache is not None and inspection.cache.status == "absent"
    assert rows(render_text(inspection), "Build Cache")[0] == "  /nowhere"
    assert "none there" in rows(render_text(inspection), "Build Cache")[1]


def test_every_image_layer_is_accounted_for() -> None:
    stray = "sha256:" + "3" * 64
    inspection = inspect_facts(facts(diff_ids=[RUN_BASE, RUN_TOP, PYTHON, VENV, APP, stray, LAUNCHER, CONFIG]))

    assert [(layer.kind, layer.layer) for layer in inspection.image_layers] == [
        ("run-image", ""),
        ("run-image", ""),
        ("buildpack", "python"),
        ("buildpack", "venv"),
        ("app", ""),
        ("unlisted", ""),
        ("launcher", ""),
        ("config", ""),
    ]
    other = rows(render_text(inspection), "Other layers")
    assert other[1].split() == ["run", "image", "2", "3.0", "kB", "2" * 12]  # two layers, 1 kB + 2 kB, top one
    assert [line.split()[0] for line in other[2:]] == ["app", "unlisted", "launcher", "config"]


def test_sbom_slices_and_process_types_layers_are_named_as_the_lifecycle_labels_them() -> None:
    """The lifecycle's label has `sbom` (the launch SBOM layer), one `app` entry per slice, and
    `process-types` (platform/files/analyzed.go:67-76), empty when there are no processes."""
    sbom, slice_one, types = ("sha256:" + c * 64 for c in "456")
    label = lifecycle_label(
        app=[{"sha": slice_one}, {"sha": APP}], sbom={"sha": sbom}, **{"process-types": {"sha": types}}
    )
    layers = [RUN_BASE, RUN_TOP, PYTHON, VENV, sbom, slice_one, APP, LAUNCHER, CONFIG, types]
    inspection = inspect_facts(facts(lifecycle=label, diff_ids=layers))
    assert [layer.kind for layer in inspection.image_layers][4:] == [
        "sbom",
        "app",
        "app",
        "launcher",
        "config",
        "process-types",
    ]
    no_processes = lifecycle_label(**{"process-types": {"sha": ""}})
    assert "unlisted" not in [layer.kind for layer in inspect_facts(facts(lifecycle=no_processes)).image_layers]


def test_run_image_with_repeated_layers_ends_at_its_last_top_layer() -> None:
    empty = "sha256:" + "5" * 64  # e.g. two identical no-op layers at the top of the run image
    label = lifecycle_label(runImage={"topLayer": empty, "reference": "x"})
    inspection = inspect_facts(facts(lifecycle=label, diff_ids=[RUN_BASE, empty, empty, PYTHON, VENV, APP]))

    assert [layer.kind for layer in inspection.image_layers][:4] == ["run-image"] * 3 + ["buildpack"]
    assert inspection.notes == ()


def test_missing_top_layer_is_a_note() -> None:
    inspection = inspect_facts(facts(lifecycle=lifecycle_label(runImage={"topLayer": "sha256:" + "4" * 64})))

    assert not any(layer.kind == "run-image" for layer in inspection.image_layers)
    assert any("top layer" in note for note in inspection.notes)


# -- output form ---------------------------------------------------------------------------------


def test_text_fits_in_100_columns_and_no_trunc_shows_everything() -> None:
    long_bp = "com.example.buildpacks/python-with-a-rather-long-name"
    label = lifecycle_label()
    label["buildpacks"][0]["key"] = long_bp
    label["buildpacks"][0]["layers"]["a-very-long-layer-name-for-tests"] = {"sha": APP, "launch": True}
    long_command = ["python", "-m", "gunicorn", "--workers", "4", "--bind", "0.0.0.0:8080", "--access-logfile", "-"]
    build = build_label(
        buildpacks=[{"id": long_bp, "version": "2024.12.31-really-long", "homepage": "https://x.example/" + "p" * 60}],
        processes=[{"type": "web", "command": long_command, "args": ["app.wsgi:application"], "direct": True}],
    )
    long_path = Path("/home/someone/.cache/bpconform/build-caches/" + "a-long-image-name-" * 6)
    stale = CacheView(long_path, CacheIndex({long_bp: {"python": cached("sha256:" + "0" * 64, launch=True)}}))
    inspection = inspect_facts(facts(lifecycle=label, build=build), stale)

    text = render_text(inspection)
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert "..." in text
    assert inspection.cache is not None and inspection.cache.status == "mismatch"
    full = render_text(inspection, no_trunc=True)
    assert PYTHON in full and long_bp in full and " ".join(long_command) in full and str(long_path) in full


def test_buildpack_text_cannot_drive_the_terminal() -> None:
    evil = build_label(processes=[{"type": "web", "command": ["echo", "\x1b[2J\x1b]0;owned\x07"], "direct": True}])
    text = render_text(inspect_facts(facts(build=evil)))

    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text
    assert json.dumps(to_json(inspect_facts(facts(build=evil)))).isascii()


def test_json_document_shape_is_stable() -> None:
    document = to_json(inspect_facts(facts(extra_labels={"io.buildpacks.rebasable": "true"})))

    assert list(document) == [
        "schema_version",
        "image",
        "stack",
        "base_image",
        "run_images",
        "rebasable",
        "buildpacks",
        "default_process",
        "processes",
        "layers",
        "image_layers",
        "cache",
        "notes",
    ]
    assert document["schema_version"] == 1
    assert document["rebasable"] is True
    assert document["base_image"] == {"reference": "sha256:" + "7" * 64, "top_layer": RUN_TOP}
    assert document["buildpacks"] == [{"id": BP, "version": "1.2.3", "homepage": "https://example.org/python"}]
    assert list(document["processes"][0]) == [
        "type",
        "command",
        "args",
        "working_dir",
        "direct",
        "default",
        "buildpack_id",
    ]
    assert document["layers"][0] == {
        "buildpack_id": BP,
        "name": "python",
        "build": True,
        "launch": True,
        "cache": True,
        "digest": PYTHON,
        "size": 3000,
        "in_image": True,
        "in_cache": False,
        "metadata": {"v": "3.13"},
    }
    assert list(document["image_layers"][0]) == ["digest", "size", "kind", "buildpack_id", "layer"]
    assert document["cache"] is None
    assert json.loads(json.dumps(document)) == document


# -- errors and readers --------------------------------------------------------------------------


def test_image_without_lifecycle_label_is_an_exit_2_error() -> None:
    with pytest.raises(InspectError) as caught:
        ImageFacts.from_labels("debian:12", {"Labels": {"maintainer": "x"}}, [RUN_BASE])

    assert caught.value.exit_code == INSPECT_ERROR == 2
    assert "not built by Cloud Native Buildpacks" in caught.value.message


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_malformed_lifecycle_label_is_a_clear_error(text: str) -> None:
    with pytest.raises(InspectError, match=r"io\.buildpacks\.lifecycle\.metadata"):
        ImageFacts.from_labels("x", {"Labels": {"io.buildpacks.lifecycle.metadata": text}}, [])


def test_history_sizes_match_layers_only_when_unambiguous() -> None:
    layers = ("sha256:a", "sha256:b")
    newest_first = [{"Size": 20}, {"Size": 10}]
    assert history_sizes(layers, newest_first) == {"sha256:a": 10, "sha256:b": 20}
    # config-only steps (size 0) between them: skipped when one sized entry per layer remains
    assert history_sizes(layers, [{"Size": 0}, {"Size": 20}, {"Size": 0}, {"Size": 10}]) == {
        "sha256:a": 10,
        "sha256:b": 20,
    }
    # an empty layer among config-only steps: cannot tell which is which, so unknown
    assert history_sizes(layers, [{"Size": 0}, {"Size": 0}, {"Size": 10}]) == {}


def test_read_cache_reads_the_index_and_tar_content_sizes(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "blobs").mkdir(parents=True)
    payload = tmp_path / "payload"
    payload.write_bytes(b"x" * 1234)
    with tarfile.open(root / "blobs" / f"{PIP.partition(':')[2]}.tar", "w") as archive:
        archive.add(payload, "layers/example_python/pip/file")
        link = tarfile.TarInfo("layers/example_python/pip/link")
        link.type, link.linkname = tarfile.SYMTYPE, "file"
        archive.addfile(link)
    index = {BP: {"pip": {"sha": PIP, "data": {}, "build": True, "launch": False, "cache": True}}}
    (root / "index.json").write_text(json.dumps(index))

    view = read_cache(root)

    assert view.index is not None and view.index.layer(BP, "pip") == cached(PIP, build=True)
    assert view.tar_sizes == {(BP, "pip"): 1234 + len("file")}
    assert tar_content_size(root / "nothing.tar") is None


def test_read_cache_never_follows_a_linked_index(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({BP: {}}))
    (tmp_path / "cache").mkdir()
    os.symlink(elsewhere, tmp_path / "cache" / "index.json")

    assert read_cache(tmp_path / "cache").index is None
    assert read_cache(tmp_path / "absent").index is None


def test_read_cache_builds_no_path_from_odd_names(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.write_bytes(b"secret")
    with tarfile.open(tmp_path / "outside.tar", "w") as archive:  # what `<cache>/../outside.tar` would reach
        archive.add(payload, "file")
    (tmp_path / "cache").mkdir()
    record = {"sha": "sha256:../../outside", "data": {}, "build": True, "launch": False, "cache": True}
    (tmp_path / "cache" / "index.json").write_text(json.dumps({"..": {"outside": record}, BP: {"../../x": record}}))

    view = read_cache(tmp_path / "cache")

    assert view.index is not None and set(view.index.buildpacks) == {"..", BP}
    assert view.tar_sizes == {}


# -- one real build --------------------------------------------------------------------------------

FIXTURE_APP = {
    "layers.build.sh": """
        layer runtime launch cache metadata version 3.11
        put runtime/bin/tool "tool"
        layer deps launch
        put deps/file "deps"
        layer tools build cache
        put tools/file "tools"
        layer downloads cache
        put downloads/file "downloaded-bytes"
        layer scratch build
        put scratch/file "scratch"
        cat > "$layers_dir/launch.toml" <<'TOML'
        [[processes]]
        type = "worker"
        command = ["sh", "-c", "echo working"]

        [[processes]]
        type = "web"
        command = ["sh", "-c", "echo serving"]
        args = ["8080"]
        default = true
        TOML
    """,
    "env-writer.build.sh": """
        layer extra launch
        put extra/file "extra"
    """,
}


@pytest.fixture
def builder(tmp_path: Path):
    from platform_integration.conftest import Builder

    from conformance.engine import ensure_engine
    from conformance.stacks import ensure_stack

    try:
        ensure_engine()
        stack = ensure_stack("bookworm")
    except Exception as exc:  # no engine here: the docker-marked test cannot run
        pytest.skip(f"no Docker engine or bookworm stack: {exc}")
    made = Builder(stack, tmp_path, "test-inspect", [])
    yield made
    for image in made.images:
        with contextlib.suppress(Exception):
            ensure_engine().images.remove(image)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.docker
def test_inspect_a_real_build(builder, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from platform_integration.conftest import write_app

    from conformance.engine import ensure_engine

    cache = builder.cache("inspect-cache")
    result = builder.build(write_app(tmp_path / "app", FIXTURE_APP), ["layers", "env-writer"], cache=cache)
    root_fs = ensure_engine().images.get(result.image).attrs["RootFS"]["Layers"]
    built = {(r.buildpack_id, r.name): r for r in result.layers}

    code, out, _ = run_cli(capsys, "inspect", result.image, "--json", "--cache-dir", str(cache.root))
    assert code == 0
    document = json.loads(out)

    assert document["image"]["id"] == result.image_id
    assert [layer["digest"] for layer in document["image_layers"]] == root_fs
    layers = {(layer["buildpack_id"], layer["name"]): layer for layer in document["layers"]}
    assert set(layers) == {key for key, report in built.items() if report.diff_id}  # scratch: kept nowhere
    for key, layer in layers.items():
        assert layer["digest"] == built[key].diff_id, key
        assert layer["in_image"] == built[key].types["launch"] == (layer["digest"] in root_fs), key
    assert layers[("fixture/layers", "runtime")]["in_cache"] is True
    assert layers[("fixture/layers", "runtime")]["metadata"] == {"version": "3.11"}
    assert (layers[("fixture/layers", "tools")]["build"], layers[("fixture/layers", "tools")]["in_cache"]) == (
        True,
        True,
    )
    # sizes are the bytes of content, for image layers (engine) and cache layers (the cached tar) alike
    assert layers[("fixture/layers", "deps")]["size"] == len("deps")
    assert layers[("fixture/layers", "downloads")]["size"] == len("downloaded-bytes")
    assert document["default_process"] == "web"
    assert [(p["type"], p["default"]) for p in document["processes"]] == [("web", True), ("worker", False)]
    assert document["processes"][0]["args"] == ["8080"]
    run_image = ensure_engine().images.get(builder.stack.run_image).attrs
    assert document["base_image"] == {"reference": run_image["Id"], "top_layer": run_image["RootFS"]["Layers"][-1]}
    assert sum(layer["kind"] == "run-image" for layer in document["image_layers"]) == len(run_image["RootFS"]["Layers"])

    code, text, _ = run_cli(capsys, "inspect", result.image, "--cache-dir", str(cache.root))
    assert code == 0
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert rows(text, "Processes")[1].split()[:2] == ["web", "(default)"]
    table = {tuple(line.split()[:2]): line.split() for line in rows(text, "Layers")[1:] if not line.startswith("  (")}
    assert table[("fixture/layers", "downloads")][-1] == "cache"
    assert table[("fixture/layers", "runtime")][-1] == "image+cache"
    assert table[("fixture/env-writer", "extra")][-2] == built[("fixture/env-writer", "extra")].diff_id[7:19]


@pytest.mark.docker
def test_missing_and_non_buildpacks_images_exit_2(builder, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "inspect", builder.stack.run_image)
    assert code == 2
    assert "no io.buildpacks.lifecycle.metadata label" in err

    repository = builder.stack.run_image.rsplit(":", 1)[0]
    code, _, err = run_cli(capsys, "inspect", f"{repository}:no-such-tag")
    assert code == 2
    assert "does not exist" in err and f"did you mean: {builder.stack.run_image}" in err
