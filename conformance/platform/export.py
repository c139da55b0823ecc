"""Export: the launch layers, the app, the launcher and its config on top of the run image, and the cache.

Mirrors the lifecycle's exporter (phase/exporter.go): buildpacks in group order and each one's
layers by name become image layers; a layer restored from the cache and left untouched reuses its
cached tar (same digest, nothing re-tarred); a launch layer with no directory reuses the previous
image's layer; cache=true layers with a directory are saved to the cache. The labels carry what the
next build's analyze and restore read back (`io.buildpacks.lifecycle.metadata`).

`assemble` writes the layer tars and computes the image config on the host, without Docker (unit
testable); `export` hands the result to the engine and saves the cache.
"""

from __future__ import annotations

import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import __version__
from conformance.engine import ensure_engine
from conformance.errors import PlatformError
from conformance.platform import launcher as cnb_launcher
from conformance.platform import safefs, spec
from conformance.platform import sbom as cnb_sbom
from conformance.platform.analyze import Analysis
from conformance.platform.archive import LayerTar, Owner, TreeSource, fingerprint, write_layer_tar
from conformance.platform.build import BuildOutcome
from conformance.platform.buildpack import Buildpack
from conformance.platform.cache import BuildCache, CachedLayer, CacheIndex
from conformance.platform.layers import (
    Layer,
    Process,
    build_metadata_process,
    default_process_type,
    merge_processes,
    read_store_toml,
)
from conformance.platform.log import BuildLog
from conformance.platform.oci import BaseImage, ExportResult, NewLayer, chain_ids, export_image, image_config
from conformance.platform.restore import Restored
from conformance.platform.slices import AppPath, plan_slices
from conformance.platform.workdir import WorkDirs

_LIFECYCLE_ROOT = spec.LIFECYCLE_DIR.lstrip("/")  # the launcher and its files, as tar member names


@dataclass
class LayerReport:
    """One buildpack layer as the build left it, and what the exporter did with it."""

    buildpack_id: str
    name: str
    types: dict[str, bool]
    metadata: dict[str, Any]
    diff_id: str | None = None
    action: str = ""  # "exported", "reused" (previous image), "unchanged" (cached tar), "cached only"


@dataclass
class ExportPlan:
    """Everything the image and the cache will hold, computed before the engine is involved."""

    layers: list[NewLayer]
    config: dict[str, Any]
    cache_entries: dict[str, dict[str, tuple[CachedLayer, Path]]]
    reports: list[LayerReport]
    group: list[Buildpack] = field(default_factory=list)
    # The SBOM layers (diffID, tar): `<layers>/sbom/cache` goes to the cache (phase/cache.go:125-146);
    # the launch one is also kept there, by digest, so the next restore need not read the image.
    sbom_cache: tuple[str, Path] | None = None
    sbom_launch: tuple[str, Path] | None = None


@dataclass(frozen=True)
class ExportInputs:
    """What assemble needs beyond the build's outcome: the image's labels of the harness itself."""

    owner: Owner  # the build user: layer files are owned by it, as the lifecycle does
    harness_labels: dict[str, str] = field(default_factory=dict)


def _layer_key(layer: Layer) -> bytes:
    """The exporter's order of one buildpack's layers: by identifier `<bp id>:<name>`, so by name
    bytes (buildpack/layers.go:76-78, `sort.Slice` on the identifiers): `tool` before `tool-ext`,
    unlike the `<name>.toml` file order the build env follows (`tool-ext.toml` < `tool.toml`)."""
    return layer.name.encode("utf-8", "surrogateescape")


def assemble(
    outcome: BuildOutcome,
    analysis: Analysis,
    restored: Restored,
    cache: BuildCache,
    cache_index: CacheIndex,
    dirs: WorkDirs,
    inputs: ExportInputs,
) -> ExportPlan:
    """The image's layers in the lifecycle's order (phase/exporter.go:133-157): buildpack layers
    (group order, then by name), the launch SBOM layer, the app layers (slices, then the rest), the
    launcher, its config and the process types; then the labels and the image config."""
    new_layers: list[NewLayer] = []
    reports: list[LayerReport] = []
    lifecycle_bps: list[dict[str, Any]] = []
    cache_entries: dict[str, dict[str, tuple[CachedLayer, Path]]] = {}
    processes: list[Process] = []
    image_labels: dict[str, str] = {}
    group = [built.buildpack for built in outcome.buildpacks]
    for built in outcome.buildpacks:
        bp = built.buildpack
        processes = merge_processes(processes, built.launch.processes)
        image_labels.update(built.launch.labels)
        bp_meta: dict[str, Any] = {"key": bp.id, "version": bp.version, "layers": {}}
        for layer in sorted(built.layers, key=_layer_key):
            report = LayerReport(bp.id, layer.name, _types_dict(layer), layer.metadata_table)
            tar = _layer_tar(bp, layer, restored, cache, cache_index, dirs, inputs.owner, report)
            if layer.types.launch:
                diff_id = tar.diff_id if tar else _reused_diff_id(bp, layer, analysis, report)
                report.diff_id = diff_id
                new_layers.append(NewLayer(diff_id, tar.path if tar else None, f"layer {bp.id}:{layer.name}"))
                bp_meta["layers"][layer.name] = {"sha": diff_id, "data": layer.label_data, **_types_dict(layer)}
            if layer.types.cache and tar is not None:
                record = CachedLayer(tar.diff_id, layer.label_data, layer.types.build, layer.types.launch, True)
                cache_entries.setdefault(bp.id, {})[layer.name] = (record, tar.path)
                report.diff_id = report.diff_id or tar.diff_id
                report.action = report.action or "cached only"
            reports.append(report)
        bp_meta["layers"] = dict(sorted(bp_meta["layers"].items()))
        store = read_store_toml(dirs.layers / bp.escaped_id, bp.id, root=dirs.layers)
        if store is not None:
            bp_meta["store"] = store.label()
        lifecycle_bps.append(bp_meta)

    lifecycle_metadata: dict[str, Any] = {}
    sbom_launch = _sbom_layer(outcome, dirs, "launch", inputs.owner)
    if sbom_launch is not None:
        new_layers.append(NewLayer(sbom_launch.diff_id, sbom_launch.path, "Software Bill-of-Materials"))
    app_tars = _app_layers(outcome, dirs, inputs.owner)
    new_layers += [
        NewLayer(t.diff_id, t.path, "application" if len(app_tars) == 1 else f"application slice {i}")
        for i, t in enumerate(app_tars, start=1)
    ]
    launcher_tar = write_layer_tar(
        dirs.tars / "launcher.tar",
        [],
        Owner(0, 0),
        parents=["cnb", _LIFECYCLE_ROOT],
        extra_files={spec.LAUNCHER_PATH.lstrip("/"): (cnb_launcher.launcher_script(), 0o755)},
    )
    default_type = default_process_type(processes)
    config_tar = _config_layer(dirs, group, processes, default_type)
    new_layers += [
        NewLayer(launcher_tar.diff_id, launcher_tar.path, "launcher"),
        NewLayer(config_tar.diff_id, config_tar.path, "launch config"),
    ]
    process_types_tar = _process_types_layer(dirs, processes)
    if process_types_tar is not None:
        new_layers.append(NewLayer(process_types_tar.diff_id, process_types_tar.path, "process types"))
    run_image = analysis.run_image
    lifecycle_metadata = lifecycle_label(
        app=[t.diff_id for t in app_tars],
        sbom=sbom_launch.diff_id if sbom_launch else None,
        buildpacks=lifecycle_bps,
        config=config_tar.diff_id,
        launcher=launcher_tar.diff_id,
        process_types=process_types_tar.diff_id if process_types_tar else "",
        run_image=run_image,
    )
    image_labels.update(
        {
            **inputs.harness_labels,
            spec.LIFECYCLE_METADATA_LABEL: go_marshal(lifecycle_metadata),
            spec.BUILD_METADATA_LABEL: go_marshal(build_metadata(group, processes, default_type)),
            spec.PROJECT_METADATA_LABEL: go_marshal({}),
        }
    )
    config = image_config(
        run_image,
        new_layers,
        env=image_env(run_image),
        entrypoint=[f"{spec.PROCESS_DIR}/{default_type}"] if default_type else [spec.LAUNCHER_PATH],
        labels=image_labels,
        working_dir=spec.APP_DIR,
        user=image_user(run_image),
    )
    sbom_cache = _sbom_layer(outcome, dirs, "cache", inputs.owner)
    return ExportPlan(
        new_layers,
        config,
        cache_entries,
        reports,
        group,
        sbom_cache=(sbom_cache.diff_id, sbom_cache.path) if sbom_cache else None,
        sbom_launch=(sbom_launch.diff_id, sbom_launch.path) if sbom_launch else None,
    )


def go_marshal(value: Any) -> str:
    """A label value as Go's `json.Marshal` writes it: compact, keys in the order given (Go's struct
    order; maps are sorted by the callers), `<`, `>`, `&` escaped."""
    return cnb_sbom.go_json(value).rstrip("\n")


def lifecycle_label(
    *,
    app: list[str],
    sbom: str | None,
    buildpacks: list[dict[str, Any]],
    config: str,
    launcher: str,
    process_types: str,
    run_image: BaseImage,
) -> dict[str, Any]:
    """`io.buildpacks.lifecycle.metadata` with the keys and omissions of the lifecycle's
    `files.LayersMetadata` (platform/files/analyzed.go:67-76): `sbom` only when there is an SBOM
    layer, `process-types.sha` empty without processes, `runImage.image` the run image's name
    (Platform API >= 0.12), and `stack.runImage` the same again "to preserve old behavior"
    (phase/exporter.go:121-126); mirrors are never set (we know none)."""
    image = {"image": run_image.reference} if run_image.reference else {}
    metadata: dict[str, Any] = {"app": [{"sha": sha} for sha in app]}
    if sbom is not None:
        metadata["sbom"] = {"sha": sbom}
    metadata.update(
        {
            "buildpacks": [_sorted_data(bp) for bp in buildpacks],
            "config": {"sha": config},
            "launcher": {"sha": launcher},
            "process-types": {"sha": process_types},
            "runImage": {
                "topLayer": run_image.diff_ids[-1] if run_image.diff_ids else "",
                "reference": run_image.image_id,
                **image,
            },
            "stack": {"runImage": dict(image)},
        }
    )
    return metadata


def _sorted_data(bp: dict[str, Any]) -> dict[str, Any]:
    """A buildpack's entry with every free-form table sorted, as Go marshals a `map[string]any`."""
    result = dict(bp)
    result["layers"] = {
        name: {**record, "data": cnb_sbom._sorted(record.get("data"))} for name, record in bp["layers"].items()
    }
    if "store" in bp:
        result["store"] = {"metadata": cnb_sbom._sorted(bp["store"]["metadata"])}
    return result


def _sbom_layer(outcome: BuildOutcome, dirs: WorkDirs, kind: str, owner: Owner) -> LayerTar | None:
    """The `<layers>/sbom/<kind>` layer, when the build staged that dir (phase/cache.go:148-164)."""
    if outcome.sbom_dir is None or not (outcome.sbom_dir / kind).is_dir():
        return None
    return write_layer_tar(
        dirs.tars / f"sbom-{kind}.tar",
        [(TreeSource(outcome.sbom_dir, kind, f"the {kind} SBOMs"), f"layers/sbom/{kind}")],
        owner,
        parents=["layers", "layers/sbom"],
    )


def _app_layers(outcome: BuildOutcome, dirs: WorkDirs, owner: Owner) -> list[LayerTar]:
    """The app dir as one layer, or as one layer per `[[slices]]` plus one for the rest (slices.py)."""
    app_root = spec.APP_DIR.lstrip("/")
    slices = outcome.slices
    if not slices:
        return [write_layer_tar(dirs.tars / "app.tar", [(dirs.workspace, app_root)], owner)]
    paths = [AppPath("", True)] + [
        AppPath(entry.name[1:], stat.S_ISDIR(entry.st.st_mode)) for entry in safefs.walk_path(dirs.workspace, "", "")
    ]
    layers = plan_slices(paths, [s.paths for s in slices])
    return [
        write_layer_tar(
            dirs.tars / f"app-{index}.tar",
            [
                (
                    TreeSource(
                        dirs.workspace, "", "the app dir", frozenset(_in_image(app_root, rel) for rel in chosen)
                    ),
                    app_root,
                )
            ],
            owner,
        )
        for index, chosen in enumerate(layers, start=1)
    ]


def _in_image(app_root: str, rel: str) -> str:
    return f"{app_root}/{rel}" if rel else app_root


def export(image: str, plan: ExportPlan, analysis: Analysis, log: BuildLog) -> ExportResult:
    """Load the image into the engine, sending only layers it lacks; drop the previous build of
    the same name once nothing refers to it."""
    previous = analysis.previous
    known = set(chain_ids(previous.diff_ids)) if previous else set()
    exported = export_image(
        image, analysis.run_image, plan.layers, plan.config, known, previous.reference if previous else None
    )
    log.line(
        f"Exported {image} ({exported.image_id[:19]}): sent {len(exported.sent_layers)} layers"
        f" ({exported.sent_bytes / 1e6:.1f} MB), {len(exported.skipped_layers)} already in the engine"
    )
    if previous is not None and previous.image_id != exported.image_id:
        _remove_if_unused(previous.image_id)
    return exported


def _remove_if_unused(image_id: str) -> None:
    """Drop the previous build of the same name once it has no tag left (its layers stay shared)."""
    try:
        image = ensure_engine().images.get(image_id)
        if not image.tags:
            ensure_engine().images.remove(image_id, noprune=False)
    except Exception:  # still used by a container or already gone: leave it to `bpconform clean`
        pass


def save_cache(plan: ExportPlan, cache: BuildCache) -> None:
    cache.save(plan.cache_entries, {bp.id: bp.escaped_id for bp in plan.group}, sbom=plan_sboms(plan))


def plan_sboms(plan: ExportPlan) -> dict[str, tuple[str, Path]]:
    """The SBOM layers the cache keeps: `cache` (restored from there, as the lifecycle does) and
    `launch` (a copy of the image's SBOM layer, by digest, so restore can skip reading the image)."""
    found = {"cache": plan.sbom_cache, "launch": plan.sbom_launch}
    return {kind: entry for kind, entry in found.items() if entry is not None}


def _layer_tar(
    bp: Buildpack,
    layer: Layer,
    restored: Restored,
    cache: BuildCache,
    cache_index: CacheIndex,
    dirs: WorkDirs,
    owner: Owner,
    report: LayerReport,
) -> LayerTar | None:
    """The layer's tar: the cached one if the layer came back from cache untouched, else a new one."""
    if not layer.has_dir or not (layer.types.launch or layer.types.cache):
        return None
    key = (bp.id, layer.name)
    cached = cache_index.layer(bp.id, layer.name)
    rel = f"{bp.escaped_id}/{layer.name}"
    if (
        key in restored.fingerprints
        and cached is not None
        and fingerprint(dirs.layers, rel) == restored.fingerprints[key]
    ):
        path = cache.blob_path(cached.sha)
        report.action = "unchanged"
        return LayerTar(path, cached.sha, path.stat().st_size)
    report.action = "exported" if layer.types.launch else "cached only"
    shown = f"layer {bp.id}:{layer.name} ({spec.LAYERS_DIR}/{rel})"
    return write_layer_tar(
        dirs.tars / f"layer-{uuid.uuid4().hex[:16]}.tar",  # not named after the layer: any name length works
        [(TreeSource(dirs.layers, rel, shown), f"layers/{bp.escaped_id}/{layer.name}")],
        owner,
        parents=["layers", f"layers/{bp.escaped_id}"],
    )


def _reused_diff_id(bp: Buildpack, layer: Layer, analysis: Analysis, report: LayerReport) -> str:
    """A launch layer with no directory: the buildpack asks to keep the previous image's layer."""
    record = analysis.previous_layers(bp.id).get(layer.name)
    if not record or not record.get("sha"):
        raise PlatformError(
            f"layer {bp.id}:{layer.name} is launch=true but has no directory, and the previous image has no"
            " such layer to reuse",
            "the buildpack must create the layer directory, or only reuse layers that exist in the previous image",
            spec.ExitCode.EXPORT_ERROR,
        )
    report.action = "reused"
    return record["sha"]


def _config_layer(
    dirs: WorkDirs, group: list[Buildpack], processes: list[Process], default_type: str | None
) -> LayerTar:
    """The launcher's config (ours: files under /cnb/lifecycle; the lifecycle's is /layers/config)."""
    apis = {bp.id: bp.api for bp in group}
    specs = [
        cnb_launcher.ProcessSpec(
            buildpack_api=apis.get(p.buildpack_id, "0.10"),
            exec_env=list(p.exec_env),
            type=p.type,
            command=list(p.command),
            args=list(p.args),
            working_dir=p.working_dir,
            default=p.type == default_type,
            direct=p.direct,
        )
        for p in processes
    ]
    files = {
        f"{_LIFECYCLE_ROOT}/{path}": (content, 0o644)
        for path, content in cnb_launcher.process_files(specs, default_type).items()
    }
    order = cnb_launcher.order_file([bp.escaped_id for bp in group])
    files[f"{_LIFECYCLE_ROOT}/{cnb_launcher.ORDER_FILE}"] = (order, 0o644)
    parents = sorted({"cnb", _LIFECYCLE_ROOT, *(_parents(files))})
    return write_layer_tar(dirs.tars / "config.tar", [], Owner(0, 0), parents=parents, extra_files=files)


def _process_types_layer(dirs: WorkDirs, processes: list[Process]) -> LayerTar | None:
    """`/cnb/process/<type>` links to the launcher, root-owned, only when there are processes
    (layers/launcher.go:57-83 `ProcessTypesLayer`; phase/exporter.go:597-612)."""
    if not processes:
        return None
    links = {f"{spec.PROCESS_DIR.lstrip('/')}/{p.type}": spec.LAUNCHER_PATH for p in processes}
    return write_layer_tar(
        dirs.tars / "process-types.tar", [], Owner(0, 0), parents=["cnb", spec.PROCESS_DIR.lstrip("/")], symlinks=links
    )


def _parents(files: dict[str, Any]) -> set[str]:
    parents: set[str] = set()
    for name in files:
        parts = name.split("/")[:-1]
        parents.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return parents


def _types_dict(layer: Layer) -> dict[str, bool]:
    return {"build": layer.types.build, "launch": layer.types.launch, "cache": layer.types.cache}


def build_metadata(group: list[Buildpack], processes: list[Process], default_type: str | None) -> dict[str, Any]:
    """`io.buildpacks.build.metadata` as the lifecycle marshals `files.BuildMetadata`
    (platform/files/metadata.go:14-49): `bom` is left out for Platform API >= 0.9 (the legacy BOM is
    in `/layers/sbom/launch/sbom.legacy.json` instead), `extensions` and
    `buildpack-default-process-type` when empty; a buildpack's `homepage` only when it has one
    (buildpack/bp_descriptor.go:138-160); a process's `args` is null when launch.toml gave none,
    `working-dir` and `exec-env` only when set (launch/launch.go:17-27)."""
    return {
        "buildpacks": [
            {"id": bp.id, "version": bp.version, **({"homepage": bp.homepage} if bp.homepage else {})} for bp in group
        ],
        "launcher": {
            "version": f"bpconform-{__version__}",
            "source": {"git": {"repository": "buildpack-conformance", "commit": ""}},
        },
        "processes": [build_metadata_process(p) for p in processes],
        **({"buildpack-default-process-type": default_type} if default_type else {}),
    }


def image_env(run_image: BaseImage) -> list[str]:
    env = dict(item.split("=", 1) for item in run_image.config.get("Env") or [])
    env["PATH"] = f"{spec.PROCESS_DIR}:{spec.LIFECYCLE_DIR}:" + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "CNB_LAYERS_DIR": spec.LAYERS_DIR,
            "CNB_APP_DIR": spec.APP_DIR,
            "CNB_PLATFORM_API": spec.PLATFORM_API,
            "CNB_DEPRECATION_MODE": "quiet",
        }
    )
    return [f"{key}={value}" for key, value in sorted(env.items())]


def image_user(run_image: BaseImage) -> str:
    """The run image's `User`, unchanged, even when it has none: the lifecycle's exporter starts the
    app image from the run image's config and never sets a user (phase/exporter.go `Export` has no
    `SetUser`; imgutil `FromBaseImage` copies the config), so a run image without `User` gives an
    app image that runs as root. The platform spec requires run images to set a non-root `User`."""
    return str(run_image.config.get("User") or "")
