"""Which image each `bpconform build` cache belongs to, so `bpconform clean` can find and remove it.

A CLI build keeps its cache in `<cache root>/build-caches/<image name, made safe>` (see
`BuildCache.for_image`) across builds, as `pack` keeps a cache volume per image. The safe name loses
characters (`/` and `:` become `_`), so each cache gets an owner record,
`build-caches/.owners/<safe name>.json`, naming the image it was made for. `bpconform clean` then
removes the caches whose image no longer exists in the engine (all of them with `--all`): what a user
expects of "clean up after the harness" is that nothing it made for an image outlives the image.
Caches made before owner records existed are matched by name against the images in the engine.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conformance.paths import cache_dir
from conformance.platform.cache import BuildCache

OWNERS = ".owners"
_SIBLING_SUFFIXES = (".new", ".old", ".lock")  # staging and lock files beside a cache dir
_REMOVABLE_SIBLINGS = (".new", ".old")  # not `.lock`: a build may hold it; `remove_stale_locks` removes unheld ones


@dataclass(frozen=True)
class TrackedCache:
    path: Path
    image: str | None  # None: made before owner records (matched by name)


def caches_root() -> Path:
    return cache_dir("build-caches")


def _owner_file(cache: BuildCache) -> Path:
    return cache.root.parent / OWNERS / f"{cache.root.name}.json"


def tracked_cache(image: str) -> BuildCache:
    """The build cache for `image`, recorded as belonging to it (call before and after the build)."""
    from conformance.platform.oci import with_tag

    cache = BuildCache.for_image(image)
    owner = _owner_file(cache)
    owner.parent.mkdir(parents=True, exist_ok=True)
    record = {"image": with_tag(image), "cache": cache.root.name, "updated": int(time.time())}
    staging = owner.with_name(owner.name + ".tmp")
    staging.write_text(json.dumps(record, sort_keys=True) + "\n")
    staging.replace(owner)
    return cache


def find_caches(root: Path | None = None) -> list[TrackedCache]:
    root = root or caches_root()
    owners_dir = root / OWNERS
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith(_SIBLING_SUFFIXES) or not entry.is_dir():
            continue
        image = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            image = json.loads((owners_dir / f"{entry.name}.json").read_text()).get("image")
        found.append(TrackedCache(entry, image if isinstance(image, str) else None))
    return found


def remove_stale_locks(root: Path | None = None) -> list[Path]:
    """The `<cache>.lock` files no build holds (builds remove their own when done; older versions of
    the harness left one per image name, built or not); returns those removed."""
    from conformance.locks import remove_if_unheld

    root = root or caches_root()
    if not root.is_dir():
        return []
    return [path for path in sorted(root.glob("*.lock")) if not path.is_symlink() and remove_if_unheld(path)]


def remove_cache(cache_path: Path) -> None:
    """The cache dir, its staging/old siblings and its owner record (its lock file stays, see above)."""
    for path in (cache_path, *(cache_path.with_name(cache_path.name + s) for s in _REMOVABLE_SIBLINGS)):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    with contextlib.suppress(FileNotFoundError):
        (cache_path.parent / OWNERS / f"{cache_path.name}.json").unlink()


def clean_caches(
    image_exists: Callable[[str], bool], image_tags: Callable[[], set[str]], *, everything: bool = False
) -> list[TrackedCache]:
    """Remove the caches whose image is gone (or all of them); returns what was removed.

    `image_exists(reference)` and `image_tags()` ask the engine (passed in so this module stays
    free of it); an engine error while asking keeps the cache: never delete what we cannot judge.
    """
    removed = []
    tags: set[str] | None = None
    for cache in find_caches():
        if not everything:
            if cache.image is not None:
                if image_exists(cache.image):
                    continue
            else:
                if tags is None:
                    tags = {BuildCache.for_image(tag).root.name for tag in image_tags()}
                    tags |= {name.removesuffix("_latest") for name in tags}
                if cache.path.name in tags:
                    continue
        remove_cache(cache.path)
        removed.append(cache)
    owners_dir = caches_root() / OWNERS  # owner records of caches that never got saved (a failed build)
    if owners_dir.is_dir():
        live = {cache.path.name for cache in find_caches()}
        for record in owners_dir.glob("*.json"):
            image = None
            with contextlib.suppress(OSError, ValueError, AttributeError):
                image = json.loads(record.read_text()).get("image")
            name = record.name.removesuffix(".json")
            if name not in live and (everything or not isinstance(image, str) or not image_exists(image)):
                record.unlink(missing_ok=True)
    return removed
