"""Deterministic layer tarballs: the reason two builds of the same inputs give the same digests.

The lifecycle normalises every entry (mtime 1980-01-01T00:00:01Z, owner = build uid/gid, no user
or group names) and writes entries in sorted order; a layer's diffID is the sha256 of the
uncompressed tar. We do the same, and add a cheap *fingerprint* of a directory (a stat walk) so
an exporter can tell that a restored layer is untouched without re-tarring it.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NORMALIZED_MTIME = 315532801  # 1980-01-01T00:00:01Z, the lifecycle's fixed timestamp
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


@dataclass(frozen=True)
class LayerTar:
    """A layer tar written to disk, with its diffID (`sha256:<hex>`) and size in bytes."""

    path: Path
    diff_id: str
    size: int


class _HashingWriter(io.RawIOBase):
    """A file wrapper that hashes everything written through it (tar once, hash on the way)."""

    def __init__(self, target: io.BufferedWriter) -> None:
        self._target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)


def _tree(root: str, prefix: str) -> Iterator[tuple[str, str]]:
    """(name in the image, host path) of everything under `root`, not following symlinks."""
    with os.scandir(root) as entries:
        for entry in entries:
            name = f"{prefix}/{entry.name}"
            yield name, entry.path
            if entry.is_dir(follow_symlinks=False):
                yield from _tree(entry.path, name)


def _normalize(info: tarfile.TarInfo, owner: Owner) -> tarfile.TarInfo:
    info.mtime = NORMALIZED_MTIME
    info.uid, info.gid = owner.uid, owner.gid
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(info.mode)
    return info


def _dir_entry(name: str, owner: Owner, mode: int = 0o755) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return _normalize(info, owner)


def write_layer_tar(
    dest: Path,
    entries: list[tuple[Path, str]],
    owner: Owner,
    *,
    parents: list[str] = (),  # type: ignore[assignment]
    extra_files: dict[str, tuple[bytes, int]] | None = None,
    symlinks: dict[str, str] | None = None,
) -> LayerTar:
    """Write a reproducible tar and return its diffID.

    `entries` maps host directories to their path inside the image (no leading slash); their
    whole trees are added. `parents` are directories created first (e.g. `layers`, `layers/bp`) so
    the image gets them with the build user's ownership. `extra_files` and `symlinks` add
    generated content (launcher files, process links) by in-image path.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    members: list[tuple[str, Path | bytes | str, int]] = []
    for parent in parents:
        members.append((parent, b"", -1))
    for host_dir, image_path in entries:
        members.append((image_path, host_dir, -2))
        members.extend((name, path, 0) for name, path in _tree(str(host_dir), image_path))
    for name, (content, mode) in (extra_files or {}).items():
        members.append((name, content, mode))
    for name, target in (symlinks or {}).items():
        members.append((name, target, -3))
    members.sort(key=lambda m: m[0].encode("utf-8", "surrogateescape"))

    with dest.open("wb") as raw:
        hashing = _HashingWriter(raw)
        with tarfile.open(fileobj=hashing, mode="w", format=tarfile.PAX_FORMAT, copybufsize=_CHUNK) as tar:  # type: ignore[arg-type]
            hard_links: dict[tuple[int, int], str] = {}
            for name, source, kind in members:
                _add_member(tar, name, source, kind, owner, hard_links)
    return LayerTar(dest, "sha256:" + hashing.digest.hexdigest(), hashing.size)


def _add_member(
    tar: tarfile.TarFile,
    name: str,
    source: Path | bytes | str,
    kind: int,
    owner: Owner,
    hard_links: dict[tuple[int, int], str],
) -> None:
    if kind == -1:  # a parent directory
        tar.addfile(_dir_entry(name, owner))
    elif kind == -3:  # a generated symlink
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = str(source)
        info.mode = 0o777
        tar.addfile(_normalize(info, owner))
    elif isinstance(source, bytes):  # a generated file
        info = tarfile.TarInfo(name)
        info.size = len(source)
        info.mode = kind
        tar.addfile(_normalize(info, owner), io.BytesIO(source))
    else:
        info = _host_entry(name, str(source), owner, hard_links)
        if info is None:
            return
        if info.isreg():
            with open(source, "rb") as handle:
                tar.addfile(info, handle)
        else:
            tar.addfile(info)


def _host_entry(name: str, path: str, owner: Owner, hard_links: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    """A normalised header for a file on the host, straight from lstat.

    `TarFile.gettarinfo` would also look up user and group names (which a layer must not carry)
    for every entry, a fifth of the time spent on a layer of small files.
    """
    st = os.lstat(path)
    info = tarfile.TarInfo(name)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        key = (st.st_ino, st.st_dev)
        if st.st_nlink > 1 and key in hard_links:
            info.type, info.linkname = tarfile.LNKTYPE, hard_links[key]
        else:
            hard_links.setdefault(key, name)
            info.size = st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:  # a socket: no tar representation
        return None
    info.mode = mode
    return _normalize(info, owner)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def fingerprint(root: Path) -> str:
    """A cheap identity of a tree's contents as the exporter would see them.

    Covers names, types, modes, sizes, mtimes and link targets. If a buildpack leaves a restored
    layer alone, its fingerprint is unchanged and the cached tar (and digest) can be reused.
    """
    digest = hashlib.sha256()
    for name, path in sorted(_tree(str(root), "."), key=lambda entry: entry[0].encode("utf-8", "surrogateescape")):
        st = os.lstat(path)
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        line = f"{name}\0{st.st_mode}\0{size}\0{st.st_mtime_ns}\0{link}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def extract_layer_tar(tar_path: Path, image_prefix: str, dest: Path) -> None:
    """Extract the tree stored under `image_prefix` in a layer tar into `dest` (cache restore).

    With the system's `tar`, three times faster than `tarfile` on a layer of small files, which
    made restoring the cache most of a warm rebuild. Run as root it keeps numeric owners and modes
    (the layer must come back exactly); it never writes outside `dest` (no `..` or absolute names).
    Raises OSError with tar's message when the archive cannot be extracted.
    """
    prefix = image_prefix.strip("/")
    dest.mkdir(parents=True, exist_ok=True)
    command = ["tar", "-x", "-f", str(tar_path), "-C", str(dest), "--numeric-owner"]
    command += [f"--strip-components={prefix.count('/') + 1}", prefix]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"tar could not extract {image_prefix} from {tar_path}: {result.stderr.strip()[-500:]}")
