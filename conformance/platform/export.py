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

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import __version__
from conformance.engine import ensure_engine
from conformance.errors import PlatformError
from conformance.platform import launcher as cnb_launcher
from conformance.platform import safefs, spec
from conformance.platform.analyze import Analysis
from conformance.platform.archive import LayerTar, Owner, TreeSource, fingerprint, write_layer_tar
from conformance.platform.build import BuildOutcome, BuiltBuildpack
from conformance.platform.buildpack import Buildpack
from conformance.platform.cache import BuildCache, CachedLayer, CacheIndex
from conformance.platform.layers import Layer, Process, build_metadata_process, default_process_type, merge_processes
from conformance.platform.log import BuildLog
from conformance.platform.oci import BaseImage, ExportResult, NewLayer, chain_ids, export_image, image_config
from conformance.platform.restore import Restored
from conformance.platform.workdir import WorkDirs
from conformance.tomlcompat import TOMLDecodeError, tomllib


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


@dataclass(frozen=True)
class ExportInputs:
    """What assemble needs beyond the build's outcome: the image's labels of the harness itself."""

    owner: Owner  # the build user: layer files are owned by it, as the lifecycle does
    harness_labels: dict[str, str] = field(default_factory=dict)


def assemble(
    outcome: BuildOutcome,
    analysis: Analysis,
    restored: Restored,
    cache: BuildCache,
    cache_index: CacheIndex,
    dirs: WorkDirs,
    inputs: ExportInputs,
) -> ExportPlan:
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
        for layer in built.layers:
            report = LayerReport(bp.id, layer.name, _types_dict(layer), layer.metadata_table)
            tar = _layer_tar(bp, layer, restored, cache, cache_index, dirs, inputs.owner, report)
            if layer.types.launch:
                diff_id = tar.diff_id if tar else _reused_diff_id(bp, layer, analysis, report)
                report.diff_id = diff_id
                new_layers.append(NewLayer(diff_id, tar.path if tar else None, f"layer {bp.id}:{layer.name}"))
                bp_meta["layers"][layer.name] = {"sha": diff_id, "data": layer.metadata, **_types_dict(layer)}
            if layer.types.cache and tar is not None:
                record = CachedLayer(tar.diff_id, layer.metadata, layer.types.build, layer.types.launch, True)
                cache_entries.setdefault(bp.id, {})[layer.name] = (record, tar.path)
                report.diff_id = report.diff_id or tar.diff_id
                report.action = report.action or "cached only"
            reports.append(report)
        store = read_store(built, dirs)
        if store is not None:
            bp_meta["store"] = {"metadata": store}
        lifecycle_bps.append(bp_meta)

    app_tar = write_layer_tar(dirs.tars / "app.tar", [(dirs.workspace, spec.APP_DIR.lstrip("/"))], inputs.owner)
    launcher_tar = write_layer_tar(
        dirs.tars / "launcher.tar",
        [],
        Owner(0, 0),
        parents=["cnb", "cnb/lifecycle"],
        extra_files={spec.LAUNCHER_PATH.lstrip("/"): (cnb_launcher.launcher_script(), 0o755)},
    )
    default_type = default_process_type(processes)
    config_tar = _config_layer(dirs, group, processes, default_type)
    new_layers += [
        NewLayer(app_tar.diff_id, app_tar.path, "application"),
        NewLayer(launcher_tar.diff_id, launcher_tar.path, "launcher"),
        NewLayer(config_tar.diff_id, config_tar.path, "process types and launch config"),
    ]
    run_image = analysis.run_image
    lifecycle_metadata = {
        "app": [{"sha": app_tar.diff_id}],
        "config": {"sha": config_tar.diff_id},
        "launcher": {"sha": launcher_tar.diff_id},
        "buildpacks": lifecycle_bps,
        "runImage": {
            "topLayer": run_image.diff_ids[-1] if run_image.diff_ids else "",
            "reference": run_image.image_id,
            "image": run_image.reference,
        },
    }
    image_labels.update(
        {
            **inputs.harness_labels,
            spec.LIFECYCLE_METADATA_LABEL: json.dumps(lifecycle_metadata, sort_keys=True),
            spec.BUILD_METADATA_LABEL: json.dumps(build_metadata(group, processes, default_type), sort_keys=True),
            spec.PROJECT_METADATA_LABEL: json.dumps({}),
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
    return ExportPlan(new_layers, config, cache_entries, reports, group)


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
    cache.save(plan.cache_entries, {bp.id: bp.escaped_id for bp in plan.group})


def read_store(built: BuiltBuildpack, dirs: WorkDirs) -> dict[str, Any] | None:
    """The `[metadata]` of the buildpack's `store.toml`, read without following a link; None if absent."""
    bp = built.buildpack
    shown = f"{spec.LAYERS_DIR}/{bp.escaped_id}/store.toml"
    data = safefs.read_file(dirs.layers, f"{bp.escaped_id}/store.toml", shown=f"store.toml of {bp.id} ({shown})")
    if data is None:
        return None
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlatformError(
            f"buildpack {bp.id} wrote a malformed {shown}: {exc}",
            "fix the TOML syntax at the position shown (https://toml.io/en/v1.0.0)",
            spec.ExitCode.BUILD_ERROR,
        ) from None
    metadata = parsed.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise PlatformError(
            f"buildpack {bp.id} wrote {shown} with a [metadata] that is not a table",
            "store.toml holds free-form data under a [metadata] table",
            spec.ExitCode.BUILD_ERROR,
        )
    return metadata


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
        f"cnb/lifecycle/{path}": (content, 0o644)
        for path, content in cnb_launcher.process_files(specs, default_type).items()
    }
    files["cnb/lifecycle/order"] = (cnb_launcher.order_file([bp.escaped_id for bp in group]), 0o644)
    links = {f"{spec.PROCESS_DIR.lstrip('/')}/{p.type}": spec.LAUNCHER_PATH for p in processes}
    parents = sorted({"cnb", "cnb/process", "cnb/lifecycle", *(_parents(files))})
    return write_layer_tar(
        dirs.tars / "config.tar", [], Owner(0, 0), parents=parents, extra_files=files, symlinks=links
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
    """`io.buildpacks.build.metadata`: the group, the processes and the launcher."""
    return {
        "buildpacks": [{"id": bp.id, "version": bp.version, "homepage": bp.homepage or ""} for bp in group],
        "launcher": {"version": f"bpconform-{__version__}", "source": {"git": {"repository": "buildpack-conformance"}}},
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
    """The app image runs as the run image's user, as with the lifecycle (which leaves `User` as the
    run image has it); `CNB_USER_ID`/`CNB_GROUP_ID` only stand in for a run image without one."""
    if run_image.config.get("User"):
        return str(run_image.config["User"])
    env = dict(item.split("=", 1) for item in run_image.config.get("Env") or [])
    if "CNB_USER_ID" in env:
        return f"{env['CNB_USER_ID']}:{env.get('CNB_GROUP_ID', env['CNB_USER_ID'])}"
    return ""
