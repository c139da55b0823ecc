"""`bpconform inspect IMAGE [--json]`: what a Cloud Native Buildpacks image holds, like `pack inspect`.

The command reads the image only through `conformance.image` (labels, config, RootFS diffIDs,
layer sizes), so it shows images made by the embedded platform and by `pack` alike. It reports

- the base (run) image: `runImage.reference` and `runImage.topLayer` of the
  `io.buildpacks.lifecycle.metadata` label, and the run image names (`runImage.image` and mirrors,
  or the older `stack.runImage`), as pack's `internal/inspectimage/info_display.go` does;
- the buildpacks (id, version, homepage) of `io.buildpacks.build.metadata`, as pack does;
- the processes of that label. As in pack's `pkg/client/inspect_image.go`, the default one is the
  process the image's entrypoint starts (`/cnb/process/<type>`; the bare launcher means none), a
  process without a working dir runs in the image's `WorkingDir`, and the default is listed first;
- the layers per buildpack with their `[types]`, digest (diffID) and size. This goes beyond pack
  (which shows no layers): where the harness knows the build cache that `bpconform build` kept for
  the image (`conformance.platform.cache`, one directory per image name), the cache-only and
  build+cache layers are listed too, marked as not in the image. Build-only layers without
  `cache = true` are kept nowhere after the build, so no one can list them;
- every other image layer (run image, app, launcher, process config, SBOM) in image order, so each
  RootFS diffID is accounted for.

The text output is a set of aligned tables meant to be read in 100 columns (digests are shortened
to 12 hex digits, and cells cut with `...` when a table would be wider, unless `--no-trunc`). Text
that a buildpack chose (process commands, layer names) is printed with control characters escaped:
a buildpack must not be able to drive the reader's terminal. `--json` prints `to_json`'s document (see docs/inspect.md).

A missing image, or one without the lifecycle label (not built by a CNB platform), is an error with
exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import tarfile
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from conformance.errors import ConformanceError, EngineError
from conformance.platform.spec import BUILD_METADATA_LABEL as BUILD_METADATA
from conformance.platform.spec import LIFECYCLE_METADATA_LABEL as LIFECYCLE_METADATA
from conformance.platform.spec import REBASABLE_LABEL as REBASABLE
from conformance.platform.spec import STACK_ID_LABEL as STACK_ID

if TYPE_CHECKING:
    from conformance.platform.cache import CacheIndex

LAUNCHER = "/cnb/lifecycle/launcher"
PROCESS_PREFIX = "/cnb/process/"
SCHEMA_VERSION = 1
SHORT_DIGEST = 12
WIDTH = 100  # the text output's budget
INSPECT_ERROR = 2  # the exit code for "no such image" and "not a buildpacks image"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

CacheStatus = Literal["found", "absent", "mismatch"]
LayerKind = Literal["run-image", "buildpack", "app", "launcher", "config", "process-types", "sbom", "unlisted"]


class InspectError(ConformanceError):
    """The image cannot be inspected: it does not exist or was not built by buildpacks."""

    exit_code = INSPECT_ERROR


# ------------------------------------------------------------------------------------------------
# What is read (from the image, from the cache)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    """The parts of an image that inspection reads; made from an `AppImage` or from recorded JSON."""

    reference: str
    image_id: str
    config: dict[str, Any]
    diff_ids: tuple[str, ...]
    lifecycle_metadata: dict[str, Any]
    build_metadata: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)  # diffID -> bytes; missing = unknown

    @classmethod
    def from_labels(
        cls,
        reference: str,
        config: dict[str, Any],
        diff_ids: tuple[str, ...] | list[str],
        *,
        image_id: str = "",
        sizes: dict[str, int] | None = None,
    ) -> ImageFacts:
        """Facts from an image config whose labels hold the metadata as JSON text (as `docker inspect`
        shows them). A missing or malformed lifecycle label is an `InspectError`."""
        labels = config.get("Labels") or {}
        if LIFECYCLE_METADATA not in labels:
            raise InspectError(
                f"image {reference} has no {LIFECYCLE_METADATA} label: it was not built by Cloud Native Buildpacks",
                "inspect an image built by `bpconform build` or `pack build`",
            )
        return cls(
            reference=reference,
            image_id=image_id,
            config=config,
            diff_ids=tuple(diff_ids),
            lifecycle_metadata=_label_json(reference, labels, LIFECYCLE_METADATA, required=True),
            build_metadata=_label_json(reference, labels, BUILD_METADATA, required=False),
            sizes=dict(sizes or {}),
        )


@dataclass(frozen=True)
class CacheView:
    """A build cache as inspection sees it: where it is, its index (None when there is none) and
    the size of each cached tar."""

    path: Path
    index: CacheIndex | None
    tar_sizes: dict[tuple[str, str], int] = field(default_factory=dict)


def read_cache(root: Path) -> CacheView:
    """Read a build cache directory without changing anything, and without following links."""
    from conformance.platform.cache import INDEX_NAME, BuildCache

    cache = BuildCache(root)
    if not _is_regular_file(root / INDEX_NAME):
        return CacheView(root, None)
    index = cache.load_index()
    sizes: dict[tuple[str, str], int] = {}
    for bp_id, layers in index.buildpacks.items():
        for name, record in layers.items():
            if not _DIGEST.fullmatch(str(record.sha)):  # tars are stored by digest: never a path from junk
                continue
            size = tar_content_size(cache.blob_path(record.sha))
            if size is not None:
                sizes[(bp_id, name)] = size
    return CacheView(root, index, sizes)


def tar_content_size(path: Path) -> int | None:
    """The bytes of content in a layer tar (regular files, and symlinks by target length), the way the
    engine sizes an image layer (`docker history`), so cached and image layers compare; None if unreadable.
    Only the headers are read (the archive is seekable), nothing is extracted."""
    if not _is_regular_file(path):
        return None
    try:
        with tarfile.open(path, "r:") as archive:
            return sum(
                member.size if member.isreg() else len(member.linkname) if member.issym() else 0 for member in archive
            )
    except (OSError, tarfile.TarError):
        return None


def default_cache_roots(reference: str) -> list[Path]:
    """Where `bpconform build` keeps the cache of an image by this name: `BuildCache.for_image` of the
    name as the user typed it, so `app` and `app:latest` are both tried."""
    from conformance.platform.cache import BuildCache

    names = [reference]
    last = reference.rsplit("/", 1)[-1]
    if reference.endswith(":latest"):
        names.append(reference[: -len(":latest")])
    elif ":" not in last and "@" not in last:
        names.append(f"{reference}:latest")
    return [BuildCache.for_image(name).root for name in names]


# ------------------------------------------------------------------------------------------------
# What is shown
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    type: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    working_dir: str
    direct: bool | None  # None: the label does not say
    default: bool
    buildpack_id: str


@dataclass(frozen=True)
class LayerInfo:
    """A buildpack layer: from the image's label and/or from the build cache."""

    buildpack_id: str
    name: str
    build: bool
    launch: bool
    cache: bool
    digest: str | None
    size: int | None
    in_image: bool
    in_cache: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def types(self) -> str:
        return ",".join(t for t, on in (("build", self.build), ("launch", self.launch), ("cache", self.cache)) if on)

    @property
    def where(self) -> str:
        if self.in_image:
            return "image+cache" if self.in_cache else "image"
        return "cache" if self.in_cache else "label only"


@dataclass(frozen=True)
class ImageLayerInfo:
    """One RootFS layer of the image, in image order, and what put it there."""

    digest: str
    size: int | None
    kind: LayerKind
    buildpack_id: str = ""
    layer: str = ""


@dataclass(frozen=True)
class CacheInfo:
    path: str
    status: CacheStatus
    reason: str = ""


@dataclass(frozen=True)
class Inspection:
    image: str
    image_id: str
    stack: str | None
    base_reference: str
    base_top_layer: str
    run_images: tuple[str, ...]
    rebasable: bool | None
    buildpacks: tuple[tuple[str, str, str], ...]  # (id, version, homepage)
    processes: tuple[ProcessInfo, ...]
    default_process: str | None
    layers: tuple[LayerInfo, ...]
    image_layers: tuple[ImageLayerInfo, ...]
    cache: CacheInfo | None
    notes: tuple[str, ...] = ()


def inspect_facts(facts: ImageFacts, cache: CacheView | None = None) -> Inspection:
    """Everything `bpconform inspect` shows, from the image's facts and (optionally) its build cache."""
    notes: list[str] = []
    lifecycle, build = facts.lifecycle_metadata, facts.build_metadata
    run_image = _dict(lifecycle.get("runImage"))
    labels = _dict(facts.config.get("Labels"))
    processes, default = _processes(facts, notes)
    image_rows = _image_layer_rows(facts)
    group = [_str(_dict(bp).get("key")) for bp in _list(lifecycle.get("buildpacks"))]
    rows, cache_info = _merge_cache(image_rows, group, cache)
    rebasable = labels.get(REBASABLE)
    return Inspection(
        image=facts.reference,
        image_id=facts.image_id,
        stack=_str(labels.get(STACK_ID)) or _str(_dict(lifecycle.get("stack")).get("id")) or None,
        base_reference=_str(run_image.get("reference")),
        base_top_layer=_str(run_image.get("topLayer")),
        run_images=_run_images(lifecycle),
        rebasable=None if rebasable is None else str(rebasable).lower() == "true",
        buildpacks=_buildpacks(lifecycle, build),
        processes=processes,
        default_process=default,
        layers=rows,
        image_layers=_account_layers(facts, rows, notes),
        cache=cache_info,
        notes=tuple(notes),
    )


def _run_images(lifecycle: dict[str, Any]) -> tuple[str, ...]:
    """`runImage.image` + mirrors (Platform API 0.12+), else the older `stack.runImage`, as pack lists them."""
    names: list[str] = []
    for source in (_dict(lifecycle.get("runImage")), _dict(_dict(lifecycle.get("stack")).get("runImage"))):
        for name in [source.get("image"), *_list(source.get("mirrors"))]:
            if isinstance(name, str) and name and name not in names:
                names.append(name)
    return tuple(names)


def _buildpacks(lifecycle: dict[str, Any], build: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """From the build metadata label (it has homepages); from the lifecycle label when that one is missing."""
    entries = _list(build.get("buildpacks"))
    if entries:
        return tuple(
            (_str(bp.get("id")), _str(bp.get("version")), _str(bp.get("homepage"))) for bp in map(_dict, entries)
        )
    return tuple(
        (_str(bp.get("key")), _str(bp.get("version")), "") for bp in map(_dict, _list(lifecycle.get("buildpacks")))
    )


def _processes(facts: ImageFacts, notes: list[str]) -> tuple[tuple[ProcessInfo, ...], str | None]:
    """The declared processes, the default first. The default is what the entrypoint starts (pack's rule);
    the buildpacks' own choice (`buildpack-default-process-type`) is only compared with it."""
    entrypoint = _list(facts.config.get("Entrypoint"))
    first = entrypoint[0] if entrypoint and isinstance(entrypoint[0], str) else ""
    default = first[len(PROCESS_PREFIX) :] if first.startswith(PROCESS_PREFIX) else None
    workdir = _str(facts.config.get("WorkingDir"))
    found = []
    for raw in map(_dict, _list(facts.build_metadata.get("processes"))):
        command = raw.get("command")
        found.append(
            ProcessInfo(
                type=_str(raw.get("type")),
                command=(command,) if isinstance(command, str) else tuple(map(_str, _list(command))),
                args=tuple(map(_str, _list(raw.get("args")))),
                working_dir=_str(raw.get("working-dir")) or workdir,
                direct=raw["direct"] if isinstance(raw.get("direct"), bool) else None,
                default=default is not None and raw.get("type") == default,
                buildpack_id=_str(raw.get("buildpackID")),
            )
        )
    if default is not None and not any(p.default for p in found):
        notes.append(f"the entrypoint starts process {default!r}, which the build metadata does not declare")
    chosen = facts.build_metadata.get("buildpack-default-process-type")
    if chosen and chosen != default:
        started = repr(default) if default else "no process (the bare launcher)"
        notes.append(f"the buildpacks chose {chosen!r} as the default process, but the entrypoint starts {started}")
    ordered = [p for p in found if p.default] + [p for p in found if not p.default]
    return tuple(ordered), default if any(p.default for p in found) else None


def _image_layer_rows(facts: ImageFacts) -> list[LayerInfo]:
    """The layers the lifecycle label records, per buildpack in group order, in image order within each."""
    position = {digest: index for index, digest in enumerate(facts.diff_ids)}
    rows: list[LayerInfo] = []
    for bp in map(_dict, _list(facts.lifecycle_metadata.get("buildpacks"))):
        bp_rows = []
        for name, record in _dict(bp.get("layers")).items():
            record = _dict(record)
            digest = _str(record.get("sha")) or None
            bp_rows.append(
                LayerInfo(
                    buildpack_id=_str(bp.get("key")),
                    name=str(name),
                    build=record.get("build") is True,
                    launch=record.get("launch") is True,
                    cache=record.get("cache") is True,
                    digest=digest,
                    size=facts.sizes.get(digest) if digest else None,
                    in_image=digest is not None and digest in position,
                    in_cache=False,
                    metadata=_dict(record.get("data")),
                )
            )
        bp_rows.sort(key=lambda r: (position.get(r.digest or "", len(position)), r.name))
        rows += bp_rows
    return rows


def _merge_cache(
    rows: list[LayerInfo], group: list[str], cache: CacheView | None
) -> tuple[tuple[LayerInfo, ...], CacheInfo | None]:
    """Add the cache's layers that are not in the image, and mark image layers that are also cached.

    The cache is kept per image *name*, so it may belong to a later or earlier build than this image.
    That shows as a cached launch layer whose digest the image does not have, or a buildpack the image
    was not built with; then no cache layer is shown (they would describe another build).
    """
    if cache is None:
        return tuple(rows), None
    if cache.index is None:
        return tuple(rows), CacheInfo(str(cache.path), "absent")
    by_key = {(r.buildpack_id, r.name): r for r in rows}
    extra: dict[str, list[LayerInfo]] = {}
    for bp_id, layers in sorted(cache.index.buildpacks.items()):
        if bp_id not in group:
            reason = f"it has layers of {bp_id}, a buildpack this image was not built with"
            return tuple(rows), CacheInfo(str(cache.path), "mismatch", reason)
        for name, entry in sorted(layers.items()):
            image_row = by_key.get((bp_id, name))
            if image_row is not None and image_row.digest == entry.sha:
                by_key[(bp_id, name)] = replace(image_row, in_cache=True)
                continue
            if image_row is not None or entry.launch:
                in_image = f"{image_row.digest or 'no digest'} in the image" if image_row else "is not in the image"
                reason = f"layer {bp_id}:{name} has digest {entry.sha} in the cache but {in_image}"
                return tuple(rows), CacheInfo(str(cache.path), "mismatch", reason)
            extra.setdefault(bp_id, []).append(
                LayerInfo(
                    buildpack_id=bp_id,
                    name=name,
                    build=bool(entry.build),
                    launch=False,
                    cache=True,
                    digest=entry.sha or None,
                    size=cache.tar_sizes.get((bp_id, name)),
                    in_image=False,
                    in_cache=True,
                    metadata=dict(entry.data or {}),
                )
            )
    result: list[LayerInfo] = []
    for bp_id in [*group, *(r.buildpack_id for r in rows if r.buildpack_id not in group)]:
        result += [by_key[(r.buildpack_id, r.name)] for r in rows if r.buildpack_id == bp_id]
        result += extra.pop(bp_id, [])
    return tuple(result), CacheInfo(str(cache.path), "found")


def _account_layers(facts: ImageFacts, rows: tuple[LayerInfo, ...], notes: list[str]) -> tuple[ImageLayerInfo, ...]:
    """Say what each RootFS layer is: run image (up to `runImage.topLayer`), a buildpack layer, or one
    of the lifecycle's own (`app` slices, `launcher`, `config`, `process-types`, `sbom`)."""
    owners: dict[str, tuple[LayerKind, str, str]] = {}
    lifecycle = facts.lifecycle_metadata
    app = lifecycle.get("app")
    for entry in app if isinstance(app, list) else [app]:
        owners.setdefault(_str(_dict(entry).get("sha")), ("app", "", ""))
    for kind in ("launcher", "config", "process-types", "sbom"):  # platform/files/analyzed.go:67-76
        owners.setdefault(_str(_dict(lifecycle.get(kind)).get("sha")), (kind, "", ""))  # type: ignore[arg-type]
    for row in rows:
        if row.in_image and row.digest:
            owners.setdefault(row.digest, ("buildpack", row.buildpack_id, row.name))
    owners.pop("", None)
    top = _str(_dict(lifecycle.get("runImage")).get("topLayer"))
    # the run image ends at its top layer, below the first layer the labels claim (a diffID can occur
    # twice: identical empty layers in the run image, or an app layer equal to the top one)
    first_owned = next((i for i, d in enumerate(facts.diff_ids) if d in owners), len(facts.diff_ids))
    tops = [i for i, d in enumerate(facts.diff_ids) if d == top and i < first_owned]
    base_count = tops[-1] + 1 if top and tops else 0
    if top and not base_count:
        notes.append(f"the run image's top layer {top} is not among the image's layers")
    found = []
    for index, digest in enumerate(facts.diff_ids):
        kind, bp_id, name = ("run-image", "", "") if index < base_count else owners.get(digest, ("unlisted", "", ""))
        found.append(ImageLayerInfo(digest, facts.sizes.get(digest), kind, bp_id, name))
    return tuple(found)


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------


def to_json(inspection: Inspection) -> dict[str, Any]:
    """The `--json` document, schema_version 1 (docs/inspect.md describes every field): `image` {name, id},
    `stack`, `base_image` {reference, top_layer}, `run_images` [{name}], `rebasable`, `buildpacks`
    [{id, version, homepage}], `default_process`, `processes` [{type, command, args, working_dir, direct,
    default, buildpack_id}], `layers` [{buildpack_id, name, build, launch, cache, digest, size, in_image,
    in_cache, metadata}], `image_layers` [{digest, size, kind, buildpack_id, layer}] (= RootFS, in order),
    `cache` {path, status, reason} and `notes`. Every key is always present; unknown values are null."""
    return {
        "schema_version": SCHEMA_VERSION,
        "image": {"name": inspection.image, "id": inspection.image_id},
        "stack": inspection.stack,
        "base_image": {"reference": inspection.base_reference, "top_layer": inspection.base_top_layer},
        "run_images": [{"name": name} for name in inspection.run_images],
        "rebasable": inspection.rebasable,
        "buildpacks": [{"id": i, "version": v, "homepage": h or None} for i, v, h in inspection.buildpacks],
        "default_process": inspection.default_process,
        "processes": [
            {
                "type": p.type,
                "command": list(p.command),
                "args": list(p.args),
                "working_dir": p.working_dir,
                "direct": p.direct,
                "default": p.default,
                "buildpack_id": p.buildpack_id or None,
            }
            for p in inspection.processes
        ],
        "layers": [
            {
                "buildpack_id": layer.buildpack_id,
                "name": layer.name,
                "build": layer.build,
                "launch": layer.launch,
                "cache": layer.cache,
                "digest": layer.digest,
                "size": layer.size,
                "in_image": layer.in_image,
                "in_cache": layer.in_cache,
                "metadata": layer.metadata,
            }
            for layer in inspection.layers
        ],
        "image_layers": [
            {
                "digest": layer.digest,
                "size": layer.size,
                "kind": layer.kind,
                "buildpack_id": layer.buildpack_id or None,
                "layer": layer.layer or None,
            }
            for layer in inspection.image_layers
        ],
        "cache": None
        if inspection.cache is None
        else {
            "path": inspection.cache.path,
            "status": inspection.cache.status,
            "reason": inspection.cache.reason or None,
        },
        "notes": list(inspection.notes),
    }


def render_text(inspection: Inspection, *, no_trunc: bool = False) -> str:
    """The human-readable report: pack's sections (base image, run images, buildpacks, processes), then
    the layers. Aligned tables that fit in 100 columns unless `no_trunc`."""
    digest = (lambda d: d or "-") if no_trunc else _short_digest
    image_id = f" ({_short_digest(inspection.image_id)})" if inspection.image_id else ""
    out = [f"Inspecting image: {_clean(inspection.image)}{image_id}", ""]
    if inspection.stack:
        out += [f"Stack: {_clean(inspection.stack)}", ""]
    out += ["Base Image:"]
    if inspection.base_reference:
        out.append(f"  Reference: {_clean(inspection.base_reference)}")
    out += [f"  Top Layer: {_clean(inspection.base_top_layer) or '-'}", "", "Run Images:"]
    out += [f"  {_clean(name)}" for name in inspection.run_images] or ["  (none)"]
    if inspection.rebasable is not None:
        out += ["", f"Rebasable: {str(inspection.rebasable).lower()}"]
    out += ["", "Buildpacks:"]
    if inspection.buildpacks:
        rows = [[i, v, h or "-"] for i, v, h in inspection.buildpacks]
        out += _table(["ID", "VERSION", "HOMEPAGE"], rows, [36, 16, 40], no_trunc)
    else:
        out.append("  (buildpack metadata not present)")
    out += ["", "Processes:"]
    if inspection.processes:
        shell = any(p.direct is False for p in inspection.processes)
        headers = ["TYPE", *(["SHELL"] if shell else []), "COMMAND", "ARGS", "WORK DIR"]
        rows = [
            [
                f"{p.type} (default)" if p.default else p.type,
                *([("" if p.direct is not False else "bash")] if shell else []),
                _join(p.command),
                _join(p.args),
                p.working_dir,
            ]
            for p in inspection.processes
        ]
        out += _table(headers, rows, [24, *([5] if shell else []), 36, 18, 20], no_trunc)
    else:
        out.append("  (none declared)")
    if inspection.default_process is None and inspection.processes:
        out.append("  (no default: the entrypoint is the bare launcher)")
    out += ["", "Layers:"]
    if inspection.layers:
        rows = [
            [layer.buildpack_id, layer.name, layer.types or "-", _size(layer.size), digest(layer.digest), layer.where]
            for layer in inspection.layers
        ]
        out += _table(
            ["BUILDPACK", "LAYER", "TYPES", "SIZE", "DIGEST", "WHERE"], rows, [22, 14, 18, 9, 71, 11], no_trunc
        )
    else:
        out.append("  (no buildpack layers)")
    out += _cache_lines(inspection, no_trunc)
    out += ["", "Other layers:"]
    out += _table(["KIND", "LAYERS", "SIZE", "DIGEST"], _other_rows(inspection, digest), [16, 6, 9, 71], no_trunc)
    if inspection.notes:
        out += ["", "Notes:"] + [f"  - {_clean(note)}" for note in inspection.notes]
    return "\n".join(out) + "\n"


def _cache_lines(inspection: Inspection, no_trunc: bool) -> list[str]:
    """The build cache section: where it is and whether its layers are shown (wrapped to 100 columns)."""
    cache = inspection.cache
    if cache is None:
        return []
    if cache.status == "found":
        status = "from this build: its layers that are not in the image are shown with WHERE = cache"
    elif cache.status == "absent":
        status = "none there: layers that are not in the image (build-only, cache-only) are unknown"
    else:
        status = f"from another build, so its layers are not shown: {_clean(cache.reason)}"
    path = _clean(cache.path) if no_trunc else _cut_middle(_clean(cache.path), WIDTH - 2)
    return ["", "Build Cache:", f"  {path}", *textwrap.wrap(status, WIDTH, initial_indent="  ", subsequent_indent="  ")]


def _cut_middle(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    keep = cap - 3
    return text[: keep // 2] + "..." + text[len(text) - (keep - keep // 2) :]


def _other_rows(inspection: Inspection, digest: Any) -> list[list[str]]:
    """The run image's layers as one row (count, total size, top layer), then each non-buildpack layer."""
    rows: list[list[str]] = []
    base = [layer for layer in inspection.image_layers if layer.kind == "run-image"]
    if base:
        sizes = [layer.size for layer in base]
        total = sum(s for s in sizes if s is not None) if None not in sizes else None
        rows.append(["run image", str(len(base)), _size(total), digest(base[-1].digest)])
    for layer in inspection.image_layers:
        if layer.kind not in ("run-image", "buildpack"):
            rows.append([layer.kind, "1", _size(layer.size), digest(layer.digest)])
    return rows


def _table(headers: list[str], rows: list[list[str]], caps: list[int], no_trunc: bool) -> list[str]:
    """Left-aligned columns, two spaces apart, indented by two. Cells are cut only when the table would
    be wider than WIDTH: the column most over its cap (its guaranteed width) loses a character at a time."""
    cells = [[_clean(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [headers, *cells]) for i in range(len(headers))]
    if not no_trunc:
        while 2 * len(widths) + sum(widths) > WIDTH:
            over = max(range(len(widths)), key=lambda i: widths[i] - caps[i])
            if widths[over] <= caps[over]:
                break
            widths[over] -= 1
        cells = [[_cut(cell, w) for cell, w in zip(row, widths, strict=True)] for row in cells]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *cells]
    ]


def _cut(text: str, cap: int) -> str:
    return text if len(text) <= cap else text[: cap - 3] + "..."


def _clean(text: str) -> str:
    """Escape what is not printable (ANSI escapes, newlines): buildpack text must not drive a terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


def _join(words: tuple[str, ...]) -> str:
    import shlex

    return shlex.join(words)


def _short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    return digest.split(":", 1)[-1][:SHORT_DIGEST]


def _size(size: int | None) -> str:
    """Decimal units, as `docker images` prints them."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # not reached


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def load_facts(reference: str) -> ImageFacts:
    """Read the image through `conformance.image`; a missing or non-buildpacks image is an InspectError."""
    from conformance.image import AppImage

    try:
        image = AppImage.load(reference)
    except EngineError:
        raise
    except ConformanceError as exc:
        if not _image_exists(reference):
            raise InspectError(
                f"image {reference} does not exist in the Docker engine{_suggestions(reference)}",
                "build it first (`bpconform build`), or name an image that `docker images` lists",
            ) from None
        raise InspectError(exc.message, "inspect an image built by `bpconform build` or `pack build`") from None
    except ValueError as exc:  # a label that is not JSON
        raise InspectError(
            f"image {reference} has a buildpacks label that is not valid JSON: {exc}",
            "the image was not written by a CNB platform, or its labels were edited",
        ) from None
    return ImageFacts.from_labels(
        reference, image.config, image.diff_ids, image_id=image.image_id, sizes=image.layer_sizes()
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    """`bpconform inspect IMAGE [--json] [--cache-dir DIR] [--no-trunc]`."""
    facts = load_facts(args.image)
    if args.cache_dir is not None:
        cache = read_cache(args.cache_dir)
    else:
        candidates = [read_cache(root) for root in default_cache_roots(args.image)]
        cache = next((view for view in candidates if view.index is not None), candidates[0])
    inspection = inspect_facts(facts, cache)
    if args.json:
        print(json.dumps(to_json(inspection), indent=2))
    else:
        print(render_text(inspection, no_trunc=args.no_trunc), end="")
    return 0


def _image_exists(reference: str) -> bool:
    import docker.errors

    from conformance.engine import ensure_engine

    try:
        ensure_engine().images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException:  # e.g. an invalid reference: treat as missing
        return False
    return True


def _suggestions(reference: str) -> str:
    """'; did you mean: a, b' from local images of the same repository (cheap: one list call)."""
    from conformance.engine import ensure_engine

    repository = _repository(reference)
    try:
        images = ensure_engine().images.list(name=repository)
    except Exception:  # a name the engine rejects as a filter: no suggestions, the error stays clear
        return ""
    tags = sorted({tag for image in images for tag in image.tags if _repository(tag) == repository})
    if not tags:
        return ""
    shown = ", ".join(tags[:5]) + (f" (and {len(tags) - 5} more)" if len(tags) > 5 else "")
    return f"; did you mean: {shown}"


def _repository(reference: str) -> str:
    name = reference.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


# ------------------------------------------------------------------------------------------------
# Small readers
# ------------------------------------------------------------------------------------------------


def _label_json(reference: str, labels: dict[str, Any], key: str, *, required: bool) -> dict[str, Any]:
    text = labels.get(key)
    if text is None and not required:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InspectError(
            f"label {key} of image {reference} is not valid JSON: {exc}",
            "the image was not written by a CNB platform, or its labels were edited",
        ) from None
    if not isinstance(value, dict):
        raise InspectError(
            f"label {key} of image {reference} is JSON but not an object",
            "the image was not written by a CNB platform, or its labels were edited",
        )
    return value


def _is_regular_file(path: Path) -> bool:
    info = _lstat(path)
    return info is not None and stat.S_ISREG(info.st_mode)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
