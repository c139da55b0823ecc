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

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)


def _sorted_walk(root: Path) -> Iterator[Path]:
    """Every path under `root` (not following symlinks), parents before children, byte-sorted."""
    entries = sorted(os.scandir(root), key=lambda e: e.name.encode("utf-8", "surrogateescape"))
    for entry in entries:
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from _sorted_walk(path)


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
        for path in _sorted_walk(host_dir):
            members.append((f"{image_path}/{path.relative_to(host_dir).as_posix()}", path, 0))
    for name, (content, mode) in (extra_files or {}).items():
        members.append((name, content, mode))
    for name, target in (symlinks or {}).items():
        members.append((name, target, -3))
    members.sort(key=lambda m: m[0].encode("utf-8", "surrogateescape"))

    with dest.open("wb") as raw:
        hashing = _HashingWriter(raw)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
            for name, source, kind in members:
                _add_member(tar, name, source, kind, owner)
    return LayerTar(dest, "sha256:" + hashing.digest.hexdigest(), hashing.size)


def _add_member(tar: tarfile.TarFile, name: str, source: Path | bytes | str, kind: int, owner: Owner) -> None:
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
        assert isinstance(source, Path)
        info = tar.gettarinfo(str(source), arcname=name)
        info = _normalize(info, owner)
        if info.isreg():
            with source.open("rb") as handle:
                tar.addfile(info, handle)
        else:
            tar.addfile(info)


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
    for path in _sorted_walk(root):
        st = path.lstat()
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        line = f"{path.relative_to(root).as_posix()}\0{st.st_mode}\0{size}\0{st.st_mtime_ns}\0{link}\n"
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def extract_layer_tar(tar_path: Path, image_prefix: str, dest: Path) -> None:
    """Extract the tree stored under `image_prefix` in a layer tar into `dest` (cache restore)."""
    prefix = image_prefix.rstrip("/") + "/"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, mode="r:") as tar:
        members = []
        for member in tar.getmembers():
            if not member.name.startswith(prefix):
                continue
            member.name = member.name[len(prefix) :]
            members.append(member)
        tar.extractall(dest, members=members, numeric_owner=True, filter=_restore_filter)


def _restore_filter(member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo:
    """Keep ownership and modes (the layer must come back exactly), refuse paths escaping `dest`."""
    return tarfile.tar_filter(member, dest_path).replace(uid=member.uid, gid=member.gid, mode=member.mode)
