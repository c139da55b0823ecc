"""store.toml, SBOM and the restore table across a rebuild (issue 13 items 1, 2, 11).

Mirrors `acceptance/creator_test.go` "multiple builds" / "rebuild with cache" ("exports SBOM in the
app image", "restores store.toml"), whose testdata buildpack (samples/hello-world 0.0.1) makes a
launch, a cache, a launch+cache and a build layer, each with `<layer>.sbom.cdx.json`, plus
`launch.sbom.cdx.json`, `build.sbom.cdx.json` and `store.toml`, and reports what came back on the
second build. Ours does the same in our own words and also reports each layer's restored
`<layer>.toml` and directory, for the restore table of `phase/restorer_test.go`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from conformance.tomlcompat import tomllib

from .conftest import Built, Fidelity, make_buildpack, record, shell, write_app

pytestmark = pytest.mark.docker

BP_ID = "fixture/hello"
ESCAPED = "fixture_hello"
CDX = "application/vnd.cyclonedx+json"
LAYERS = {  # name -> [types] lines
    "some-layer": "launch = true",
    "some-cache-layer": "cache = true",
    "some-launch-cache-layer": "launch = true\ncache = true",
    "some-build-layer": "build = true",
}

BUILD = r"""
L="$1"
if [ -d /layers/sbom ]; then echo "@@sbom-dir-during-build=present"; fi
for name in some-layer some-cache-layer some-launch-cache-layer some-build-layer launch build; do
  if [ -f "$L/$name.sbom.cdx.json" ]; then echo "@@sbom-restored-$name=$(cat "$L/$name.sbom.cdx.json")"; fi
done
for name in some-layer some-cache-layer some-launch-cache-layer some-build-layer; do
  if [ -f "$L/$name.toml" ]; then echo "@@toml-$name=$(base64 -w0 "$L/$name.toml")"; fi
  if [ -f "$L/$name/content" ]; then echo "@@content-$name=$(cat "$L/$name/content")"; fi
done
if [ -f "$L/store.toml" ]; then echo "@@store=$(base64 -w0 "$L/store.toml")"; fi

layer() {  # layer NAME TYPES...: a fresh layer dir, its toml with [metadata] and its SBOM
  name=$1; types=$2
  mkdir -p "$L/$name"
  echo "$name-content" > "$L/$name/content"
  printf '[types]\n%s\n\n[metadata]\nmade-by = "%s"\n' "$types" "$name" > "$L/$name.toml"
  printf '{"key": "%s-bom"}' "$name" > "$L/$name.sbom.cdx.json"
}
layer some-layer "launch = true"
layer some-cache-layer "cache = true"
layer some-launch-cache-layer "launch = true
cache = true"
layer some-build-layer "build = true"
mkdir -p "$L/bare"; echo bare > "$L/bare/file"
printf '[types]\nlaunch = true\n' > "$L/bare.toml"
printf '{"key": "launch-bom"}' > "$L/launch.sbom.cdx.json"
printf '{"key": "build-bom"}' > "$L/build.sbom.cdx.json"
printf '[metadata]\nsome-key = "some-value"\n' > "$L/store.toml"
cat > "$L/launch.toml" <<'TOML'
[[processes]]
type = "web"
command = ["echo", "hello"]
default = true
TOML
"""

PLAIN_BUILD = r"""
L="$1"
mkdir -p "$L/plain"; echo plain > "$L/plain/file"
printf '[types]\nlaunch = true\n' > "$L/plain.toml"
"""


@dataclass(frozen=True)
class Rebuild:
    first: Built
    second: Built  # same image name: the previous image and the cache are used
    cleared: Built  # then once more with the cache cleared (pack --clear-cache: creator -skip-restore)


@pytest.fixture(scope="module")
def rebuild(fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory) -> Rebuild:
    root = tmp_path_factory.mktemp("creator")
    hello = make_buildpack(root / "bp", BP_ID, BUILD, sbom_formats=[CDX])
    plain = make_buildpack(root / "bp", "fixture/plain", PLAIN_BUILD)
    app = write_app(root / "app")
    first = fidelity.build(app, [hello, plain])
    second = fidelity.build(app, [hello, plain], image=first.image.reference)
    cleared = fidelity.build(app, [hello, plain], image=first.image.reference, clear_cache=True)
    return Rebuild(first, second, cleared)


def decoded(built: Built, key: str) -> str | None:
    value = record(built.output, key)
    return None if value is None else base64.b64decode(value).decode()


def lifecycle_buildpack(built: Built, bp_id: str) -> dict:
    return next(bp for bp in built.image.lifecycle_metadata["buildpacks"] if bp["key"] == bp_id)


# -- store.toml --------------------------------------------------------------------------------


def test_store_toml_restored_on_rebuild(rebuild: Rebuild) -> None:
    """acceptance/creator_test.go "rebuild with cache" - t.Log("restores store.toml"):
    `store.toml restored with content: [metadata]`."""
    assert decoded(rebuild.first, "store") is None, "store.toml present on the first build"
    restored = decoded(rebuild.second, "store")
    assert restored is not None, f"store.toml of {BP_ID}: expected restored on the rebuild, found absent"
    assert tomllib.loads(restored) == {"metadata": {"some-key": "some-value"}}


def test_store_toml_restored_with_clear_cache(rebuild: Rebuild) -> None:
    """acceptance/creator_test.go "rebuild with clear cache" - "exports SBOM in the app image":
    "check that store.toml was restored" (Platform API >= 0.10: store.toml comes from the previous
    image's metadata, not from the cache)."""
    restored = decoded(rebuild.cleared, "store")
    assert restored is not None, f"store.toml of {BP_ID}: expected restored after a cleared cache, found absent"
    assert tomllib.loads(restored) == {"metadata": {"some-key": "some-value"}}


def test_no_layer_sbom_restored_with_clear_cache(rebuild: Rebuild) -> None:
    """acceptance/creator_test.go "rebuild with clear cache": none of the three `<layer>.sbom.cdx.json
    restored with content` lines."""
    for name in ("some-layer", "some-cache-layer", "some-launch-cache-layer", "some-build-layer", "launch", "build"):
        assert record(rebuild.cleared.output, f"sbom-restored-{name}") is None, name


def test_store_saved_in_lifecycle_metadata(rebuild: Rebuild) -> None:
    """phase/exporter_test.go "there are store.toml files" - "saves store metadata":
    `buildpacks[].store == {"metadata": {...}}`."""
    store = lifecycle_buildpack(rebuild.first, BP_ID).get("store")
    assert store == {"metadata": {"some-key": "some-value"}}, f"lifecycle metadata store of {BP_ID}: {store!r}"


def test_no_store_toml_means_no_store_key(rebuild: Rebuild) -> None:
    """phase/exporter_test.go "saves metadata with layer info" - "defaults to nil store" (`store` is
    `omitempty`, so a buildpack without store.toml has no `store` key)."""
    assert "store" not in lifecycle_buildpack(rebuild.first, "fixture/plain")


STORE_WITHOUT_TABLE = r"""
if [ -f "$1/store.toml" ]; then echo "@@store=[$(cat "$1/store.toml")]"; else echo "@@store=absent"; fi
printf 'metadata = 2\n' > "$1/store.toml"
"""


def test_a_store_toml_without_a_metadata_table_is_kept_as_null(
    fidelity: Fidelity, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """buildpack/layers.go:56-62 decodes store.toml into `StoreTOML{Data map[string]any}` with
    BurntSushi/toml v1.6.0, which leaves the map nil for a `metadata` that is not a table, without an
    error (decode.go:350-356): the export passes, the label says `"store": {"metadata": null}`, and
    the rebuild gets an empty store.toml back (metadata_restorer.go:57-66; encode.go:526 writes
    nothing for the nil map)."""
    root = tmp_path_factory.mktemp("store-without-table")
    bp = make_buildpack(root / "bp", "fixture/store", STORE_WITHOUT_TABLE)
    app = write_app(root / "app")
    first = fidelity.build(app, [bp])
    assert record(first.output, "store") == "absent"
    store = lifecycle_buildpack(first, "fixture/store").get("store")
    assert store == {"metadata": None}, f"lifecycle metadata store of fixture/store: {store!r}"
    second = fidelity.build(app, [bp], image=first.image.reference)
    assert record(second.output, "store") == "[]", "store.toml on the rebuild: expected an empty file"


# -- SBOM --------------------------------------------------------------------------------------


def test_layers_sbom_absent_during_build(rebuild: Rebuild) -> None:
    """acceptance/testdata/creator/.../samples_hello-world/0.0.1/bin/build: "/layers/sbom should not
    exist during buildpack builds" (checked on the first build and on the rebuild)."""
    for built in (rebuild.first, rebuild.second):
        assert record(built.output, "sbom-dir-during-build") is None


SBOM_PATHS = {
    f"/layers/sbom/launch/{ESCAPED}/sbom.cdx.json": True,
    f"/layers/sbom/launch/{ESCAPED}/some-layer/sbom.cdx.json": True,
    f"/layers/sbom/launch/{ESCAPED}/some-launch-cache-layer/sbom.cdx.json": True,
    f"/layers/sbom/launch/{ESCAPED}/some-cache-layer/sbom.cdx.json": False,
    f"/layers/sbom/launch/{ESCAPED}/some-build-layer/sbom.cdx.json": False,
    "/layers/sbom/build": False,
    "/layers/sbom/cache": False,
}


def test_launch_sbom_exported_in_app_image(rebuild: Rebuild) -> None:
    """acceptance/creator_test.go "multiple builds" (first run) and "rebuild with cache" - "exports
    SBOM in the app image": sbom/launch/<bp>/{sbom,some-layer,some-launch-cache-layer}.cdx.json
    exist, sbom/build and sbom/cache do not."""
    script = "; ".join(f'if [ -e {p} ]; then echo "{p} yes"; else echo "{p} no"; fi' for p in SBOM_PATHS)
    for built in (rebuild.first, rebuild.second):
        result = shell(built.image, script)
        seen = {line.rsplit(" ", 1)[0]: line.endswith(" yes") for line in result.stdout.splitlines()}
        assert seen == SBOM_PATHS, f"SBOM files in {built.image.reference}: expected {SBOM_PATHS}, got {seen}"
        content = shell(built.image, f"cat /layers/sbom/launch/{ESCAPED}/some-layer/sbom.cdx.json").stdout
        assert json.loads(content) == {"key": "some-layer-bom"}


def test_layer_sbom_restored_on_rebuild(rebuild: Rebuild) -> None:
    """acceptance/creator_test.go "rebuild with cache": `some-layer.sbom.cdx.json restored with
    content`, the same for some-cache-layer and some-launch-cache-layer; the testdata buildpack
    exits 1 if some-build-layer's, launch's or build's SBOM is ever restored."""
    restored = {
        name: record(rebuild.second.output, f"sbom-restored-{name}")
        for name in ("some-layer", "some-cache-layer", "some-launch-cache-layer", "some-build-layer", "launch", "build")
    }
    expected = {
        "some-layer": '{"key": "some-layer-bom"}',
        "some-cache-layer": '{"key": "some-cache-layer-bom"}',
        "some-launch-cache-layer": '{"key": "some-launch-cache-layer-bom"}',
        "some-build-layer": None,
        "launch": None,
        "build": None,
    }
    assert restored == expected
    assert all(record(rebuild.first.output, f"sbom-restored-{name}") is None for name in expected)


def test_sbom_layer_in_lifecycle_metadata(rebuild: Rebuild) -> None:
    """phase/exporter_test.go "structured SBOM" - "creates a bom layer on Run image": the label's
    `sbom.sha` is the digest of an image layer."""
    sbom = rebuild.first.image.lifecycle_metadata.get("sbom")
    assert isinstance(sbom, dict) and sbom.get("sha") in rebuild.first.image.diff_ids, f"sbom: {sbom!r}"


# -- restore table (passes today: regression) --------------------------------------------------


def restored_toml(built: Built, name: str) -> dict | None:
    text = decoded(built, f"toml-{name}")
    return None if text is None else tomllib.loads(text)


def test_cache_layers_restored_with_metadata_and_data(rebuild: Rebuild) -> None:
    """phase/restorer_test.go "keeps layer metadata" / "restores data" (cache=true layers, with
    and without launch): metadata and contents come back, the types do not (the lifecycle writes
    the restored `<layer>.toml` without a [types] table, buildpack/layermetadata.go Encode)."""
    for name in ("some-cache-layer", "some-launch-cache-layer"):
        toml = restored_toml(rebuild.second, name)
        assert toml is not None, f"{name}.toml: expected restored, found absent"
        assert toml.get("metadata") == {"made-by": name}
        assert not any((toml.get("types") or {}).values()), f"{name}.toml restored its types: {toml}"
        assert record(rebuild.second.output, f"content-{name}") == f"{name}-content"


def test_launch_only_layer_restores_metadata_not_data(rebuild: Rebuild) -> None:
    """phase/restorer_test.go "keeps metadata file" / "does not restore layer data" (launch=true,
    cache=false: metadata from the previous image, no contents)."""
    toml = restored_toml(rebuild.second, "some-layer")
    assert toml is not None and toml.get("metadata") == {"made-by": "some-layer"}
    assert record(rebuild.second.output, "content-some-layer") is None


def test_build_only_layer_not_restored(rebuild: Rebuild) -> None:
    """phase/restorer_test.go "removes metadata file" / "does not restore layer data" (build=true,
    cache=false: nothing comes back)."""
    assert restored_toml(rebuild.second, "some-build-layer") is None
    assert record(rebuild.second.output, "content-some-build-layer") is None


def test_nothing_restored_on_first_build(rebuild: Rebuild) -> None:
    """phase/restorer_test.go "analyzes with no layer metadata"."""
    for name in LAYERS:
        assert restored_toml(rebuild.first, name) is None


# -- label shapes (issue 13 item 11) -----------------------------------------------------------


def test_lifecycle_metadata_has_process_types(rebuild: Rebuild) -> None:
    """phase/exporter_test.go "saves lifecycle metadata with layer info":
    `meta.ProcessTypes.SHA` is set (platform/files/analyzed.go LayersMetadata `process-types`)."""
    record_ = rebuild.first.image.lifecycle_metadata.get("process-types")
    assert isinstance(record_, dict) and record_.get("sha") in rebuild.first.image.diff_ids, repr(record_)


def test_lifecycle_metadata_has_stack_run_image(rebuild: Rebuild) -> None:
    """phase/exporter_test.go "platform api >= 0.12" - "saves run image metadata to the stack key
    even if it's a target": `stack.runImage.image == runImage.image`."""
    meta = rebuild.first.image.lifecycle_metadata
    assert (meta.get("stack") or {}).get("runImage", {}).get("image") == meta["runImage"]["image"], meta.get("stack")


def test_layer_without_metadata_has_null_data(rebuild: Rebuild) -> None:
    """buildpack/layermetadata.go (`Data any json:"data"`): a `<layer>.toml` with no [metadata]
    gives `"data": null` in the lifecycle label (phase/exporter_test.go "saves metadata with layer info")."""
    layer = lifecycle_buildpack(rebuild.first, BP_ID)["layers"]["bare"]
    assert "data" in layer and layer["data"] is None, f"layer bare: data = {layer.get('data')!r}"


def test_layer_metadata_in_lifecycle_label(rebuild: Rebuild) -> None:
    """phase/exporter_test.go "saves lifecycle metadata with layer info" - "adds buildpack layer
    metadata to label" and "adds layer shas": each launch layer's `data` and `sha`."""
    image = rebuild.first.image
    layers = lifecycle_buildpack(rebuild.first, BP_ID)["layers"]
    assert set(layers) == {"some-layer", "some-launch-cache-layer", "bare"}
    assert layers["some-layer"]["data"] == {"made-by": "some-layer"}
    assert layers["some-launch-cache-layer"]["cache"] is True
    assert all(layer["sha"] in image.diff_ids for layer in layers.values())
    assert lifecycle_buildpack(rebuild.first, BP_ID)["version"] == "0.0.1"


def test_build_metadata_omits_bom(rebuild: Rebuild) -> None:
    """phase/exporter_test.go "build metadata label" - "contains the expected information" (Platform
    API >= 0.9): t.Log("bom is omitted"); processes carry `command` as an array and `buildpackID`.
    (The issue's "bom is missing" is what the lifecycle does at these Platform APIs:
    platform/files/metadata.go MarshalJSON sets an empty, omitempty `bom`.) A launch.toml without
    `args` gives `"args": null`: launch.Process.Args is a nil slice, which BurntSushi/toml leaves out
    of metadata.toml, so it is still nil when the exporter marshals the label."""
    meta = rebuild.first.image.build_metadata
    assert "bom" not in meta
    assert meta["processes"] == [
        {"type": "web", "command": ["echo", "hello"], "args": None, "direct": True, "buildpackID": BP_ID}
    ]
    assert [bp["id"] for bp in meta["buildpacks"]] == [BP_ID, "fixture/plain"]
