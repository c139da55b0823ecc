"""The build cache: cache=true layers, their metadata and digests, kept between builds.

A cache is a host directory (one per image name by default). It holds, per buildpack, one tar per
cached layer plus an index with each layer's metadata, types and diffID, the same facts the
lifecycle keeps in its cache image's label. A tar whose digest does not match the index is never
restored: it is reported and dropped, and the buildpack rebuilds that layer.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.paths import cache_dir
from conformance.platform.archive import sha256_file

INDEX_NAME = "index.json"


@dataclass
class CachedLayer:
    sha: str  # diffID of the tar, "sha256:<hex>"
    data: dict[str, Any]  # the layer's [metadata]
    build: bool
    launch: bool
    cache: bool


@dataclass
class CacheIndex:
    buildpacks: dict[str, dict[str, CachedLayer]] = field(default_factory=dict)

    def layer(self, buildpack_id: str, name: str) -> CachedLayer | None:
        return self.buildpacks.get(buildpack_id, {}).get(name)


class BuildCache:
    """One cache directory. Writes go to a fresh generation that replaces the old one atomically,
    so a build killed half-way leaves the previous cache intact."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_image(cls, image_name: str) -> BuildCache:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in image_name)
        return cls(cache_dir("build-caches") / safe)

    # -- reading -------------------------------------------------------------------------------

    def load_index(self) -> CacheIndex:
        index_path = self.root / INDEX_NAME
        if not index_path.exists():
            return CacheIndex()
        try:
            raw = json.loads(index_path.read_text())
            return CacheIndex(
                {bp: {name: CachedLayer(**layer) for name, layer in layers.items()} for bp, layers in raw.items()}
            )
        except (OSError, ValueError, TypeError, AttributeError):
            # unreadable, or JSON of the wrong shape: an empty cache, not a failed build
            return CacheIndex()

    def tar_path(self, escaped_bp_id: str, layer_name: str) -> Path:
        return self.root / escaped_bp_id / f"{layer_name}.tar"

    def verified_tar(self, escaped_bp_id: str, layer_name: str, expected_sha: str) -> Path | None:
        """The cached tar if present and its content hashes to `expected_sha`, else None."""
        path = self.tar_path(escaped_bp_id, layer_name)
        if not path.is_file():
            return None
        return path if sha256_file(path) == expected_sha else None

    # -- writing -------------------------------------------------------------------------------

    def save(self, entries: dict[str, dict[str, tuple[CachedLayer, Path]]], escaped: dict[str, str]) -> None:
        """Replace the cache with `entries` ({bp id: {layer: (record, tar)}}); tars are hard-linked
        when on the same filesystem (no copy of hundreds of MB)."""
        staging = self.root.with_name(self.root.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        index: dict[str, dict[str, Any]] = {}
        for bp_id, layers in entries.items():
            for name, (record, tar) in layers.items():
                target = staging / escaped[bp_id] / f"{name}.tar"
                target.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(tar, target)
                index.setdefault(bp_id, {})[name] = asdict(record)
        (staging / INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True))
        old = self.root.with_name(self.root.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.root.exists():
            self.root.rename(old)
        staging.rename(self.root)
        shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
