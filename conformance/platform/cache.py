"""The build cache: cache=true layers, their metadata and digests, kept between builds.

A cache is a host directory (one per image name by default). It holds an index with each cached
layer's metadata, types and diffID (the facts the lifecycle keeps in its cache image's label) and
the layer tars, stored once per digest in `blobs/<hex>.tar`. A tar whose digest does not match the
index is never restored: it is reported and dropped, and the buildpack rebuilds that layer.

Why this layout:
- A build holds the cache's lock (`<cache>.lock`, see `locked`) from restore to save, so two
  builds of one image name run one after the other instead of crashing or mixing their caches.
  The lock file is removed when the build is done (`exclusive_lock(remove=True)`).
- Saving copies only what changed. A layer restored and left alone is already in `blobs/` under
  its digest (verified at restore) and stays as it is; a new tar is linked in on the same
  filesystem, copied when the work dir is in memory and the cache on disk (as here). The old
  design rebuilt the whole cache in `<cache>.new` on every build, copying every tar across
  filesystems.
- Nothing is left half-written: each blob arrives as `blobs/.tmp-*` renamed into place, the index
  is replaced atomically, and unreferenced blobs are deleted only after the new index is in place.
  An interrupted save leaves the previous index and its blobs intact; its stray files are swept
  by the next save.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.errors import PlatformError
from conformance.locks import exclusive_lock
from conformance.paths import cache_dir
from conformance.platform.archive import sha256_file
from conformance.platform.safefs import remove_tree

INDEX_NAME = "index.json"
BLOBS = "blobs"
SBOM_KEY = ":sbom"
"""The index key of the SBOM layers (`{kind: diffID}`): a ':' is never in a buildpack id (spec.py), so
it cannot clash with the buildpack entries. The lifecycle keeps the cache SBOM layer's digest in its
cache metadata (`platform.CacheMetadata.BOM`, phase/cache.go:125-146)."""


@dataclass
class CachedLayer:
    sha: str  # diffID of the tar, "sha256:<hex>"
    data: dict[str, Any] | None  # the layer's [metadata]; None when its <layer>.toml had no [metadata]
    build: bool
    launch: bool
    cache: bool


@dataclass
class CacheIndex:
    buildpacks: dict[str, dict[str, CachedLayer]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was wrong with the cache on disk, for the build log
    sbom: dict[str, str] = field(default_factory=dict)  # SBOM kind ("cache", "launch") -> the layer's diffID

    def layer(self, buildpack_id: str, name: str) -> CachedLayer | None:
        return self.buildpacks.get(buildpack_id, {}).get(name)


class BuildCache:
    """One cache directory (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._verified: set[Path] = set()  # blobs whose digest this process checked (safe to keep as they are)

    @classmethod
    def for_image(cls, image_name: str) -> BuildCache:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in image_name)
        return cls(cache_dir("build-caches") / safe)

    @property
    def lock_path(self) -> Path:
        return self.root.with_name(self.root.name + ".lock")

    @contextlib.contextmanager
    def locked(self, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold this cache for one build; `on_wait` is told when another build holds it first."""
        message = f"Waiting for another build that uses the cache {self.root} (same image name) to finish"
        # remove=True: one lock file per image name would pile up (a session left 24 for builds that never ran)
        with exclusive_lock(self.lock_path, on_wait=(lambda: on_wait(message)) if on_wait else None, remove=True):
            yield

    # -- reading -------------------------------------------------------------------------------

    def check(self, *, clear: bool = False) -> None:
        """Fail before building if the cache path is not a directory we can use; with `clear`
        (the user asked to start afresh) whatever is there is removed instead. A build starts
        here: what an earlier build verified is forgotten."""
        self._verified.clear()
        try:
            st = os.lstat(self.root)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if clear:
                remove_tree(self.root)
            return
        if clear:
            os.unlink(self.root)
            return
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise PlatformError(
            f"the build cache {self.root} is {kind}",
            "remove it (the platform keeps one cache directory per image name there), or build with"
            " --clear-cache to replace it",
        )

    def load_index(self) -> CacheIndex:
        index_path = self.root / INDEX_NAME
        try:
            text = index_path.read_text()
        except FileNotFoundError:
            return CacheIndex()
        except (OSError, UnicodeDecodeError) as exc:
            return CacheIndex(notes=[f"Ignoring the cache index {index_path}: unreadable ({exc})"])
        try:
            raw = json.loads(text)
            sbom = raw.pop(SBOM_KEY, {})
            if not isinstance(sbom, dict) or not all(isinstance(v, str) for v in sbom.values()):
                raise TypeError(f"{SBOM_KEY} is not a table of digests")
            return CacheIndex(
                {bp: {name: CachedLayer(**layer) for name, layer in layers.items()} for bp, layers in raw.items()},
                sbom=dict(sbom),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            # JSON of the wrong shape: an empty cache (rewritten by this build's save), not a failed build
            return CacheIndex(notes=[f"Ignoring the cache index {index_path}: not a cache index ({exc})"])

    def blob_path(self, sha: str) -> Path:
        return self.root / BLOBS / f"{sha.partition(':')[2] or sha}.tar"

    def tar_path(self, escaped_bp_id: str, layer_name: str) -> Path:
        """The tar the index lists for a layer (by the buildpack's escaped id, as on disk)."""
        for bp_id, layers in self.load_index().buildpacks.items():
            if bp_id.replace("/", "_") == escaped_bp_id and layer_name in layers:
                return self.blob_path(layers[layer_name].sha)
        raise KeyError(f"{escaped_bp_id}:{layer_name} is not in the cache {self.root}")

    def verified_tar(self, expected_sha: str) -> Path | None:
        """The cached tar with digest `expected_sha` if present and intact, else None."""
        path = self.blob_path(expected_sha)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            if sha256_file(path) != expected_sha:
                self._verified.discard(path)
                remove_tree(path)  # dropped: a rebuilt layer with this digest is stored afresh
                return None
        except OSError:
            self._verified.discard(path)
            return None
        self._verified.add(path)
        return path

    # -- writing -------------------------------------------------------------------------------

    def save(
        self,
        entries: dict[str, dict[str, tuple[CachedLayer, Path]]],
        escaped: dict[str, str] | None = None,
        *,
        sbom: dict[str, tuple[str, Path]] | None = None,
    ) -> None:
        """Make the cache hold exactly `entries` ({bp id: {layer: (record, tar)}}) and the SBOM
        layers `sbom` ({kind: (diffID, tar)}).

        Call it holding `locked()`. `escaped` is accepted for the callers of the old layout.
        """
        self._prepare_root()
        blobs = self.root / BLOBS
        keep: set[str] = set()
        index: dict[str, dict[str, Any]] = {}
        for bp_id, layers in entries.items():
            for name, (record, tar) in layers.items():
                blob = self.blob_path(record.sha)
                keep.add(blob.name)
                if Path(tar) != blob and blob not in self._verified:
                    _store_blob(Path(tar), blob)
                index.setdefault(bp_id, {})[name] = asdict(record)
        for kind, (sha, tar) in (sbom or {}).items():
            blob = self.blob_path(sha)
            keep.add(blob.name)
            if Path(tar) != blob and blob not in self._verified:
                _store_blob(Path(tar), blob)
            index.setdefault(SBOM_KEY, {})[kind] = sha  # type: ignore[assignment]
        _replace_file(self.root / INDEX_NAME, json.dumps(index, indent=2, sort_keys=True).encode())
        for entry in os.listdir(blobs):
            if entry not in keep:
                remove_tree(blobs / entry)
        for entry in os.listdir(self.root):
            if entry not in (INDEX_NAME, BLOBS):  # the old layout's per-buildpack dirs, a stray index tmp
                remove_tree(self.root / entry)

    def _prepare_root(self) -> None:
        for leftover in (".new", ".old"):  # what the old layout's interrupted saves left beside the cache
            remove_tree(self.root.with_name(self.root.name + leftover))
        self.check()
        self.root.mkdir(parents=True, exist_ok=True)
        blobs = self.root / BLOBS
        if os.path.lexists(blobs) and not stat.S_ISDIR(os.lstat(blobs).st_mode):
            os.unlink(blobs)  # a damaged cache: its tars are verified by digest anyway
        blobs.mkdir(exist_ok=True)


def _store_blob(tar: Path, blob: Path) -> None:
    """Put `tar` at `blob`, replacing whatever is there in one rename."""
    tmp = blob.with_name(f".tmp-{uuid.uuid4().hex[:12]}")
    try:
        try:
            os.link(tar, tmp)  # same filesystem: no copy, and the work dir's tar stays for the export
        except OSError:
            shutil.copyfile(tar, tmp)
        os.replace(tmp, blob)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _replace_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
