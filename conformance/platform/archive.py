"""Deterministic layer tarballs: the reason two builds of the same inputs give the same digests.

The lifecycle normalises every entry (mtime 1980-01-01T00:00:01Z, owner = build uid/gid, no user
or group names) and writes entries in sorted order; a layer's diffID is the sha256 of the
uncompressed tar. We do the same, and add a cheap *fingerprint* of a directory (a stat walk) so
an exporter can tell that a restored layer is untouched without re-tarring it.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.platform import safefs

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


@dataclass(frozen=True)
class TreeSource:
    """A directory to add to a tar: `rel` beneath the trusted dir `root`, opened without following
    links (a buildpack-written layer whose dir, or a parent, is a link is refused, never read)."""

    root: Path
    rel: str = ""
    shown: str | None = None  # how errors name it, e.g. "layer fixture/a:venv (/layers/fixture_a/venv)"
    # Only these in-image names are written (an app slice, layers/slices.go); None: the whole tree.
    include: frozenset[str] | None = None


def _open_source(source: Path | TreeSource) -> int:
    if isinstance(source, TreeSource):
        try:
            return safefs.open_dir(source.root, source.rel, shown=source.shown)
        except FileNotFoundError:
            raise safefs.UnsafePath(
                f"{source.shown or source.rel} disappeared while the platform was reading it",
                "a process the buildpack left running is still changing its layers: wait for it before bin/build exits",
            ) from None
    return safefs.open_root(source)


def _tree_members(source: Path | TreeSource, image_path: str) -> Iterator[tuple[str, Any, int]]:
    """The root entry then everything below it, in byte order of the names, as tar members."""
    fd = _open_source(source)
    include = source.include if isinstance(source, TreeSource) else None
    try:
        root_st = os.fstat(fd)
        if include is None or image_path in include:
            yield image_path, safefs.Entry(image_path, root_st, fd, "."), 0
        for entry in safefs.walk(fd, image_path, open_files=True):
            try:
                if include is None or entry.name in include:
                    yield entry.name, entry, 0
            finally:
                if entry.fd is not None:
                    os.close(entry.fd)
                    entry.fd = None
    finally:
        os.close(fd)


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
    entries: list[tuple[Path | TreeSource, str]],
    owner: Owner,
    *,
    parents: list[str] = (),  # type: ignore[assignment]
    extra_files: dict[str, tuple[bytes, int]] | None = None,
    symlinks: dict[str, str] | None = None,
) -> LayerTar:
    """Write a reproducible tar and return its diffID.

    `entries` maps host directories (a trusted dir, or a `TreeSource` beneath one) to their path
    inside the image (no leading slash); their whole trees are added, links as links, walked
    iteratively through dir fds (any depth) and never followed. `parents` are directories created
    first (e.g. `layers`, `layers/bp`) so the image gets them with the build user's ownership.
    `extra_files` and `symlinks` add generated content (launcher files, process links) by in-image
    path.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    generated: list[tuple[str, Any, int]] = [(parent, b"", -1) for parent in parents]
    generated_files = [(name, content, mode) for name, (content, mode) in (extra_files or {}).items()]
    generated_links = [(name, target, -3) for name, target in (symlinks or {}).items()]
    streams: list[Iterator[tuple[str, Any, int]]] = [iter(sorted(generated, key=_member_key))]
    streams += [_tree_members(source, image_path) for source, image_path in entries]
    streams += [iter(sorted(generated_files, key=_member_key)), iter(sorted(generated_links, key=_member_key))]
    # one merged stream in byte order of the names (ties keep the order above, as a stable sort
    # would); a tree member is written before its walk moves on, so its open file is still valid
    members = heapq.merge(*streams, key=_member_key)
    try:
        with dest.open("wb") as raw:
            hashing = _HashingWriter(raw)
            with tarfile.open(fileobj=hashing, mode="w", format=tarfile.PAX_FORMAT, copybufsize=_CHUNK) as tar:  # type: ignore[arg-type]
                hard_links: dict[tuple[int, int], str] = {}
                for name, source, kind in members:
                    _add_member(tar, name, source, kind, owner, hard_links)
    finally:
        for stream in streams:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    return LayerTar(dest, "sha256:" + hashing.digest.hexdigest(), hashing.size)


def _member_key(member: tuple[str, Any, int]) -> bytes:
    return member[0].encode("utf-8", "surrogateescape")


def _add_member(
    tar: tarfile.TarFile,
    name: str,
    source: Any,
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
        assert isinstance(source, safefs.Entry)
        info = _host_entry(name, source, owner, hard_links)
        if info is None:
            return
        if info.isreg() and source.fd is not None:
            try:
                tar.addfile(info, _FdReader(source.fd))  # type: ignore[arg-type]
            except OSError as exc:
                if exc.errno is not None:
                    raise
                raise safefs.UnsafePath(  # tarfile: "unexpected end of data", the file shrank
                    f"{name} changed while the platform was reading it",
                    "a process the buildpack left running is still changing its files",
                ) from None
        else:
            tar.addfile(info)


class _FdReader:
    """`read` straight from an open fd (the walk's, closed by it): no file object per layer file."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self, size: int = _CHUNK) -> bytes:
        return os.read(self._fd, size if size >= 0 else _CHUNK)


def _host_entry(
    name: str, entry: safefs.Entry, owner: Owner, hard_links: dict[tuple[int, int], str]
) -> tarfile.TarInfo | None:
    """A normalised header for a file on the host, from the walk's lstat (or the open file's fstat).

    `TarFile.gettarinfo` would also look up user and group names (which a layer must not carry)
    for every entry, a fifth of the time spent on a layer of small files.
    """
    st = entry.st
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
        info.type, info.linkname = tarfile.SYMTYPE, entry.link or ""
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


def fingerprint(root: Path, rel: str = "") -> str:
    """A cheap identity of a tree's contents as the exporter would see them.

    Covers names, types, modes, sizes, mtimes and link targets. If a buildpack leaves a restored
    layer alone, its fingerprint is unchanged and the cached tar (and digest) can be reused.
    `rel` is opened beneath the trusted `root` without following links.
    """
    digest = hashlib.sha256()
    for entry in safefs.walk_path(root, rel, "."):
        name, st = entry.name, entry.st
        link = entry.link or "" if stat.S_ISLNK(st.st_mode) else ""
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
