"""SBOM files: what buildpacks write, where the lifecycle puts them, and how they come back on rebuild.

A buildpack (Buildpack API >= 0.7) describes a layer in `<layers>/<bp>/<layer>.sbom.<ext>` and
itself in `launch.sbom.<ext>` / `build.sbom.<ext>`, `<ext>` one of `cdx.json`, `spdx.json`,
`syft.json`. Mirrored from the lifecycle (v0.21.17):

- Found by the glob `*.sbom.*.json` in the buildpack's layers dir; the layer is the part of the
  file name before its first `.`; `launch`/`build` are the buildpack's own SBOMs; a file whose layer
  has no `<layer>.toml` is ignored (buildpack/bomfile.go:103-175, `processSBOMFiles`).
- A launch=true layer's SBOM is a *launch* SBOM, any other layer's a *build* SBOM; a cache=true
  layer's is also a *cache* SBOM (bomfile.go:148-171).
- Every file's format must be one the buildpack declares in `[buildpack] sbom-formats` (media types,
  parameters allowed); an unknown extension or an undeclared format fails the build
  (bomfile.go:74-101, `validateMediaTypes`; exit 52, the builder's `BuildError`).
- After all buildpacks ran, each file is copied to `<layers>/sbom/<launch|build|cache>/<escaped bp
  id>/<layer>/sbom.<ext>` (buildpack-level ones to `.../<escaped bp id>/sbom.<ext>`)
  (phase/builder.go:183-222, `copySBOMFiles`), and the legacy `[[bom]]` tables of launch.toml and
  build.toml go to `<layers>/sbom/{launch,build}/sbom.legacy.json` (builder.go:116-125, Platform
  API >= 0.9), so with our Platform API 0.13 every image has a launch SBOM layer.
- Export: `<layers>/sbom/launch` is one image layer (label `sbom`), `<layers>/sbom/cache` one cache
  layer (phase/exporter.go:649-675, phase/cache.go:125-146); `<layers>/sbom/build` stays behind
  (pack copies it out only with `--sbom-output-dir`).
- Restore: the previous image's SBOM layer (analyzer, phase/analyzer.go:68-72) and the cache's
  (phase/restorer.go:118-128) are unpacked and every `<kind>/<bp>/<layer>/sbom*.json`, cache first,
  then launch, is copied back to `<layers>/<bp>/<layer>.sbom*.json`, for buildpacks of the group whose
  layers dir exists at that point (internal/layer/sbom_restorer.go:96-153).

The host never follows a link a buildpack made: SBOM files are read with `safefs` (a link is copied
as a link), and restored SBOMs are read from the layer tars as members, never extracted.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
import re
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from conformance.errors import PlatformError
from conformance.platform import safefs, spec
from conformance.platform.buildpack import Buildpack
from conformance.platform.layers import LayerTypes

SbomKind = Literal["launch", "build", "cache"]
KINDS: tuple[SbomKind, ...] = ("launch", "build", "cache")

MEDIA_TYPES = {  # buildpack/bomfile.go:20-29
    "sbom.cdx.json": "application/vnd.cyclonedx+json",
    "sbom.spdx.json": "application/spdx+json",
    "sbom.syft.json": "application/vnd.syft+json",
}
SBOM_GLOB = "*.sbom.*.json"
LEGACY_NAME = "sbom.legacy.json"
MAX_SBOM_BYTES = 64 * 1024 * 1024
"""The largest SBOM file the platform copies (SBOMs of big dependency trees run to megabytes)."""

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"\s*({_TOKEN})(?:/({_TOKEN}))?\s*((?:;\s*{_TOKEN}\s*=\s*(?:{_TOKEN}|\"[^\"]*\")\s*)*);?\s*")


@dataclass(frozen=True)
class SbomFile:
    """One SBOM file a buildpack wrote, and one place it goes (a cached launch layer's goes to two)."""

    buildpack_id: str
    escaped_id: str
    layer: str  # "" for the buildpack's own launch.sbom.* / build.sbom.*
    kind: SbomKind
    file_name: str  # in the buildpack's layers dir

    @property
    def extension(self) -> str | None:
        """`sbom.cdx.json` etc., or None for a format the lifecycle does not know."""
        return next((ext for ext in MEDIA_TYPES if self.file_name.endswith("." + ext)), None)

    @property
    def target(self) -> str:
        """Where the lifecycle copies it, below `<layers>/sbom` (builder.go:189)."""
        parts = [self.kind, self.escaped_id, *([self.layer] if self.layer else []), self.extension or ""]
        return "/".join(parts)


def find_sbom_files(bp: Buildpack, listing: Iterable[tuple[str, int]], layers: dict[str, LayerTypes]) -> list[SbomFile]:
    """The SBOM files of one buildpack from its layers dir listing (name, mode), in glob order.

    `layers` holds the types of every `<name>.toml` in the dir (all-false ones too, as the
    lifecycle's map of processed layers does); files of other names are ignored, as there.
    """
    found: list[SbomFile] = []
    for name, _mode in sorted(listing, key=lambda item: os.fsencode(item[0])):
        if not fnmatch.fnmatchcase(name, SBOM_GLOB):
            continue
        layer = name.split(".", 1)[0]

        def add(kind: SbomKind, layer_name: str = layer, file_name: str = name) -> None:
            found.append(SbomFile(bp.id, bp.escaped_id, layer_name, kind, file_name))

        if layer in ("launch", "build"):
            add(layer, "")  # type: ignore[arg-type]
            continue
        types = layers.get(layer)
        if types is None:
            continue
        add("launch" if types.launch else "build")
        if types.cache:
            add("cache")
    return found


def media_type_problem(declared: str) -> tuple[str | None, str | None]:
    """(the media type, lowercased, without parameters; None) or (None, why it does not parse), like
    Go's `mime.ParseMediaType` for the cases a buildpack.toml holds."""
    match = _MEDIA_TYPE.fullmatch(declared)
    if match is None:
        return None, f"mime: invalid media type {declared!r}"
    kind, sub = match.group(1), match.group(2)
    return (f"{kind}/{sub}" if sub else kind).lower(), None


def check_media_types(bp: Buildpack, files: list[SbomFile]) -> None:
    """Fail like the lifecycle when a file's format is unknown or not declared in `sbom-formats`."""
    for sbom in files:
        shown = f"{spec.LAYERS_DIR}/{bp.escaped_id}/{sbom.file_name}"
        if sbom.extension is None:
            raise PlatformError(
                f"unsupported SBOM file format: '{shown}' (buildpack {bp})",
                f"name SBOM files <layer>.<ext> with <ext> one of {', '.join(MEDIA_TYPES)}",
                spec.ExitCode.BUILD_ERROR,
            )
        wanted = MEDIA_TYPES[sbom.extension]
        for declared in bp.sbom_formats:
            media_type, problem = media_type_problem(declared)
            if problem:
                raise PlatformError(
                    f"validating SBOM file '{shown}' for buildpack: '{bp}': parsing declared media type: {problem}",
                    "declare media types like application/vnd.cyclonedx+json in [buildpack] sbom-formats",
                    spec.ExitCode.BUILD_ERROR,
                )
            if media_type == wanted:
                break
        else:
            declared_list = ", ".join(bp.sbom_formats) or "none"
            raise PlatformError(
                f"validating SBOM file '{shown}' for buildpack: '{bp}': undeclared SBOM media type: '{wanted}'"
                f" (declared: {declared_list})",
                f'add "{wanted}" to [buildpack] sbom-formats in buildpack.toml, or stop writing {sbom.file_name}',
                spec.ExitCode.BUILD_ERROR,
            )


def stage_sbom_files(files: list[SbomFile], layers_root: Path, stage: Path) -> None:
    """Copy each file to `stage/<target>` (the lifecycle's `<layers>/sbom/...`), later ones replacing
    earlier ones of the same target. Read beneath `layers_root` without following links: a link is
    copied as a link (as `fsutil.Copy` does); a directory named like an SBOM is skipped."""
    for sbom in files:
        rel = f"{sbom.escaped_id}/{sbom.file_name}"
        shown = f"SBOM file {spec.LAYERS_DIR}/{rel} of buildpack {sbom.buildpack_id}"
        st = safefs.lstat(layers_root, rel, shown=shown)
        if st is None or not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        dest = stage / sbom.target
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        if stat.S_ISLNK(st.st_mode):
            parent_fd = safefs.open_dir(layers_root, sbom.escaped_id, shown=shown)
            try:
                os.symlink(os.readlink(sbom.file_name, dir_fd=parent_fd), dest)
            finally:
                os.close(parent_fd)
            continue
        data = safefs.read_file(layers_root, rel, shown=shown, limit=MAX_SBOM_BYTES)
        if data is not None:
            dest.write_bytes(data)


def go_json(value: Any) -> str:
    """JSON as Go's `json.Encoder.Encode` writes it: compact, map keys sorted, `<`, `>`, `&`,
    U+2028 and U+2029 escaped, a final newline (internal/encoding/utils.go `WriteJSON`)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_go_time)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text + "\n"


def _go_time(value: Any) -> str:
    """TOML dates and times (in layer or store metadata) as Go marshals a `time.Time`: RFC 3339, `Z`
    for UTC."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def legacy_bom(bp: Buildpack, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Legacy `[[bom]]` entries as the lifecycle records them: each tagged with its buildpack's id and
    version (buildpack/bom.go:58-65), fields in Go's struct order (name, metadata, buildpack)."""
    return [
        {"name": e["name"], "metadata": _sorted(e.get("metadata")), "buildpack": {"id": bp.id, "version": bp.version}}
        for e in entries
    ]


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def write_legacy(stage: Path, launch_bom: list[dict[str, Any]], build_bom: list[dict[str, Any]]) -> None:
    """`sbom.legacy.json` of launch and build: the BOM list, or `null` when no buildpack wrote one
    (a nil Go slice), as builder.go:116-125 writes them."""
    for kind, bom in (("launch", launch_bom), ("build", build_bom)):
        (stage / kind).mkdir(parents=True, exist_ok=True)
        (stage / kind / LEGACY_NAME).write_text(go_json(bom or None))


# --- restore ------------------------------------------------------------------------------------


def _restore_pattern(kind: SbomKind) -> re.Pattern[str]:
    return re.compile(rf"{kind}/(.+)/(.+)/(sbom.+json)")  # sbom_restorer.go:113


def restore_from_tar(
    tar: Path,
    prefix: str,
    kind: SbomKind,
    group: list[Buildpack],
    layers_root: Path,
    present: set[str],
) -> list[str]:
    """Copy the `<kind>/<bp>/<layer>/sbom*.json` files of an SBOM layer tar back to
    `<layers>/<bp>/<layer>.sbom*.json`; returns the in-image paths written.

    `prefix` is where `<layers>/sbom/<kind>` sits in the tar (`layers/sbom/cache` in ours, `launch` in
    the engine's archive of `/layers/sbom/launch`). Only regular members are read, straight from the
    tar (nothing is extracted, so no member can redirect a write); `present` holds the escaped ids
    whose layers dir exists (the lifecycle skips the others).
    """
    pattern = _restore_pattern(kind)
    escaped = {bp.escaped_id for bp in group}
    written: list[str] = []
    prefix = prefix.strip("/") + "/"
    with tarfile.open(tar, "r:") as archive:
        members = sorted(archive.getmembers(), key=lambda m: _member_name(m).encode("utf-8", "surrogateescape"))
        for member in members:
            name = _member_name(member)
            if not member.isreg() or not name.startswith(prefix) or member.size > MAX_SBOM_BYTES:
                continue
            match = pattern.search(f"{spec.SBOM_DIR}/{kind}/{name[len(prefix) :]}")
            if match is None:
                continue
            bp_dir, layer, file_name = match.groups()
            if bp_dir not in escaped or bp_dir not in present or "/" in layer or "/" in file_name:
                continue
            if spec.layer_name_problem(layer) is not None:
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            target = f"{bp_dir}/{layer}.{file_name}"
            safefs.write_new_file(layers_root, target, handle.read(MAX_SBOM_BYTES + 1)[:MAX_SBOM_BYTES])
            written.append(f"{spec.LAYERS_DIR}/{target}")
    return written


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name
