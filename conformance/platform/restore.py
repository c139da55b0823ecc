"""Restore: bring back what each buildpack kept from the previous build, per the lifecycle's table.

The table (phase/restorer.go, `Restore`; the spec's "Restoring layers" table) — only `[metadata]`
comes back, never `[types]`, so a buildpack must opt in to a layer again:

| previous layer                     | comes back                                                      |
| ---------------------------------- | --------------------------------------------------------------- |
| cache = true (in the cache)        | metadata and contents, from the cache; if launch = true too,    |
|                                    | only when the cached tar is the app image's layer (same digest) |
| launch = true, cache = false       | metadata only, from the app image (the buildpack may reuse the  |
|                                    | image layer by setting launch = true and leaving no directory)  |
| build = true without cache         | nothing (always rebuilt)                                        |

Each buildpack's `store.toml` comes back from the app image's metadata label, and the SBOM files
of its layers from the cache's and the app image's SBOM layers (sbom.py, "Restore").
`plan_restore` decides from records alone (no Docker, no files); `restore` carries the plan out.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker.errors

from conformance.engine import create_container, remove_container
from conformance.errors import ConformanceError
from conformance.platform import safefs
from conformance.platform import sbom as cnb_sbom
from conformance.platform.analyze import Analysis
from conformance.platform.archive import extract_layer_tar, fingerprint
from conformance.platform.buildpack import Buildpack
from conformance.platform.cache import BuildCache, CachedLayer, CacheIndex
from conformance.platform.layers import StoreToml, write_layer_metadata
from conformance.platform.log import BuildLog
from conformance.platform.workdir import WorkDirs


@dataclass(frozen=True)
class RestoreStep:
    buildpack: Buildpack
    layer: str
    source: Literal["image", "cache"]  # image: metadata only; cache: metadata and contents
    metadata: Any  # usually a table; None: the label's `"data": null` (no [metadata] table)
    cached: CachedLayer | None = None


@dataclass(frozen=True)
class SkippedLayer:
    buildpack_id: str
    layer: str
    reason: str


@dataclass
class RestorePlan:
    steps: list[RestoreStep] = field(default_factory=list)
    skipped: list[SkippedLayer] = field(default_factory=list)
    stores: dict[str, StoreToml] = field(default_factory=dict)  # buildpack id -> its store.toml
    sbom_cache: str | None = None  # diffID of the cache's SBOM layer
    sbom_launch: str | None = None  # diffID of the previous image's launch SBOM layer
    sbom_launch_cached: bool = False  # the cache holds a copy of that layer (same digest)
    previous_image: str | None = None  # where the launch SBOM layer is read when the cache has no copy

    def sbom_targets(self, group: list[Buildpack]) -> set[str]:
        """The escaped ids whose layers dir the lifecycle has made before restoring SBOMs: those it
        wrote a `<layer>.toml` or `store.toml` for (internal/layer/sbom_restorer.go:132-136)."""
        return {step.buildpack.escaped_id for step in self.steps} | {
            bp.escaped_id for bp in group if bp.id in self.stores
        }


@dataclass(frozen=True)
class Restored:
    """What restore brought back with contents: fingerprints, so export can tell an untouched
    layer (whose cached tar is reused) from one the buildpack changed."""

    fingerprints: dict[tuple[str, str], str] = field(default_factory=dict)  # (buildpack id, layer) -> fingerprint


def plan_restore(
    group: list[Buildpack], analysis: Analysis, cache_index: CacheIndex, *, skip_layers: bool = False
) -> RestorePlan:
    """`skip_layers` is the creator's `-skip-restore` (what `pack build --clear-cache` passes): no
    layer metadata, cached layer or SBOM comes back, but each buildpack's store.toml still does
    (cmd/lifecycle/restorer.go:304-318 `NewDefaultMetadataRestorer(..., SkipLayers)` and a Nop SBOM
    restorer; internal/layer/metadata_restorer.go restores store.toml before checking SkipLayers)."""
    plan = RestorePlan()
    for bp in group:
        store = analysis.previous_buildpacks.get(bp.id)
        if store is not None and store.store is not None:
            plan.stores[bp.id] = store.store
    if skip_layers:
        return plan
    for bp in group:
        previous_layers = analysis.previous_layers(bp.id)
        for name, record in previous_layers.items():
            # build=true layers are always recreated, so the lifecycle skips them (phase/restorer.go)
            if record.get("launch") and not record.get("cache") and not record.get("build"):
                plan.steps.append(RestoreStep(bp, name, "image", _metadata(record.get("data"))))
        for name, cached in cache_index.buildpacks.get(bp.id, {}).items():
            if cached.launch:
                previous = previous_layers.get(name)
                if previous is None or previous.get("sha") != cached.sha:
                    plan.skipped.append(SkippedLayer(bp.id, name, "it does not match the app image's layer"))
                    continue
            plan.steps.append(RestoreStep(bp, name, "cache", _metadata(cached.data), cached))
    plan.sbom_cache = cache_index.sbom.get("cache")
    plan.sbom_launch = analysis.previous_sbom
    plan.sbom_launch_cached = plan.sbom_launch is not None and cache_index.sbom.get("launch") == plan.sbom_launch
    plan.previous_image = analysis.previous.image_id if analysis.previous is not None else None
    return plan


def _metadata(data: Any) -> Any:
    """A layer's `data` as restore writes it back: whatever value the buildpack wrote (usually a
    table; the lifecycle keeps any TOML value, buildpack/layermetadata.go:78-85), None for null."""
    return dict(data) if isinstance(data, dict) else data


def restore(plan: RestorePlan, group: list[Buildpack], dirs: WorkDirs, cache: BuildCache, log: BuildLog) -> Restored:
    restored = Restored()
    for skipped in plan.skipped:
        log.line(f'Skipping cached "{skipped.buildpack_id}:{skipped.layer}": {skipped.reason}')
    for bp in group:
        safefs.ensure_dir(dirs.layers, bp.escaped_id)  # detect may have left a link there
    metadata: dict[tuple[str, str], dict[str, Any]] = {}  # (escaped id, layer) -> [metadata]
    for step in plan.steps:
        if step.source == "image":
            log.line(f'Restoring metadata for "{step.buildpack.id}:{step.layer}" from app image')
        elif not _restore_contents(step, dirs, cache, log, restored):
            continue
        metadata[(step.buildpack.escaped_id, step.layer)] = step.metadata
    for (escaped_id, name), data in metadata.items():
        write_layer_metadata(dirs.layers / escaped_id, name, data)
    for bp in group:
        if bp.id in plan.stores:
            text = plan.stores[bp.id].toml_text()
            safefs.write_new_file(dirs.layers, f"{bp.escaped_id}/store.toml", text.encode())
    restore_sboms(plan, group, dirs, cache, log)
    return restored


def restore_sboms(plan: RestorePlan, group: list[Buildpack], dirs: WorkDirs, cache: BuildCache, log: BuildLog) -> None:
    """SBOM files back into the buildpacks' layers dirs: the cache's SBOM layer first, then the
    previous image's launch SBOM layer (which wins), as the lifecycle does (phase/restorer.go:118-128,
    internal/layer/sbom_restorer.go:96-108). The launch layer is read from the cache's copy when it
    has the same digest, else from the previous image in the engine."""
    present = plan.sbom_targets(group)
    if not present:
        return
    if plan.sbom_cache:
        tar = cache.verified_tar(plan.sbom_cache)
        if tar is None:
            log.line("Skipping the cached SBOM layer: cache entry missing or corrupt (digest mismatch)")
        else:
            log.line("Restoring data for SBOM from cache")
            cnb_sbom.restore_from_tar(tar, "layers/sbom/cache", "cache", group, dirs.layers, present)
    if not plan.sbom_launch:
        return
    tar = cache.verified_tar(plan.sbom_launch) if plan.sbom_launch_cached else None
    log.line("Restoring data for SBOM from previous image")
    if tar is not None:
        cnb_sbom.restore_from_tar(tar, "layers/sbom/launch", "launch", group, dirs.layers, present)
    elif plan.previous_image:
        archive = _image_launch_sboms(plan.previous_image, dirs.scratch("sbom-restore"))
        if archive is not None:
            cnb_sbom.restore_from_tar(archive, "launch", "launch", group, dirs.layers, present)


def _image_launch_sboms(image_id: str, scratch: Path) -> Path | None:
    """`/layers/sbom/launch` of the previous image as a tar (the engine's archive of a created, never
    started container); None when the image has no such dir."""
    scratch.mkdir(parents=True)
    target = scratch / "launch.tar"
    try:
        container = create_container(image_id, kind="inspect", network_disabled=True)
    except ConformanceError:  # the image is gone: nothing to restore
        return None
    try:
        stream, _stat = container.get_archive(f"{cnb_sbom.spec.SBOM_DIR}/launch")
        with target.open("wb") as handle:
            for chunk in stream:
                handle.write(chunk)
    except docker.errors.NotFound:
        return None
    finally:
        with contextlib.suppress(Exception):
            remove_container(container)
    return target


def _restore_contents(step: RestoreStep, dirs: WorkDirs, cache: BuildCache, log: BuildLog, restored: Restored) -> bool:
    """Extract a cached layer where buildpacks cannot reach (not mounted), then rename it into
    place beneath the layers root: nothing is written through a path a buildpack controls."""
    bp, name = step.buildpack, step.layer
    assert step.cached is not None
    tar = cache.verified_tar(step.cached.sha)
    if tar is None:
        log.line(f'Skipping cached "{bp.id}:{name}": cache entry missing or corrupt (digest mismatch)')
        return False
    staging = dirs.scratch("restore")
    rel = f"{bp.escaped_id}/{name}"
    try:
        extract_layer_tar(tar, f"layers/{rel}", staging)
        safefs.move_into(staging, dirs.layers, rel, shown=f"layer {bp.id}:{name}")
    except OSError as exc:
        safefs.remove_tree(staging)
        log.line(f'Skipping cached "{bp.id}:{name}": {exc}')
        return False
    restored.fingerprints[(bp.id, name)] = fingerprint(dirs.layers, rel)
    log.line(f'Restoring data for "{bp.id}:{name}" from cache')
    return True
