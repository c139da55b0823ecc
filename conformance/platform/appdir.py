"""The app copy: the user's app dir, copied into the build's work dir so buildpacks can write to it.

The user's dir is only read. Before anything is copied the whole tree is checked, so a bad input
fails at once with a clear error instead of half-way (or never: a character device reads forever):

- pipes, sockets and device files are refused (an image cannot carry them usefully, and reading a
  device like /dev/zero would fill the disk);
- a symlink must stay inside the app (checked on its text: absolute targets and `..` that climb
  out are refused), since in the container the app lives at /workspace and a link out of it
  would point at nothing, or at the build image's files;
- the copy and the app layer's tar must fit where the build works (`BPCONFORM_WORK_DIR`): the
  copy keeps sparse files sparse (holes are skipped with SEEK_DATA/SEEK_HOLE), but the layer tar
  stores every file at its full size, so a file of large apparent size is reported up front.

Walks are iterative through dir fds (`safefs.walk`), so any depth works.

A `keep` filter (the platform's input; `pack` makes it from project.toml include/exclude) decides
path by path, as pack's copy does (pkg/archive/archive.go:164-190): a path it drops is neither
checked nor copied, but the walk still goes below a dropped directory, and a kept path's missing
parent directories are made (mode 0755), as extracting pack's tar in the container makes them.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import PlatformError
from conformance.paths import WORK_DIR_ENV
from conformance.platform import safefs

_SPECIAL = {
    stat.S_IFIFO: "a named pipe (fifo)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}
_CHUNK = 8 * 1024 * 1024

AppPathFilter = Callable[[str], bool]
"""Whether the app path `rel` (relative, `/`-separated, e.g. `docs/README.md`) is copied."""


@dataclass
class AppScan:
    """What the pre-copy check found: sizes (apparent and allocated) and the largest files."""

    apparent: int = 0
    allocated: int = 0
    largest: list[tuple[int, str]] = field(default_factory=list)


def scan_app(source: Path, keep: AppPathFilter | None = None) -> AppScan:
    """Check the app tree (see the module docstring); raises PlatformError on the first bad entry."""
    scan = AppScan()
    fd = safefs.open_root(source)
    try:
        for entry in safefs.walk(fd, "."):
            rel = entry.name[2:]
            if keep is not None and not keep(rel):
                continue
            kind = stat.S_IFMT(entry.st.st_mode)
            if kind in _SPECIAL:
                raise PlatformError(
                    f"{rel} in the app directory {source} is {_SPECIAL[kind]}",
                    "remove pipes, sockets and device files from the app: they cannot be copied into an image"
                    " (the app dir itself is never changed)",
                )
            if kind == stat.S_IFLNK:
                _check_link(source, rel, entry.link or "")
            elif kind == stat.S_IFREG:
                scan.apparent += entry.st.st_size
                scan.allocated += entry.st.st_blocks * 512
                scan.largest.append((entry.st.st_size, rel))
                if len(scan.largest) > 64:
                    scan.largest = sorted(scan.largest, reverse=True)[:3]
    finally:
        os.close(fd)
    scan.largest = sorted(scan.largest, reverse=True)[:3]
    return scan


def _check_link(source: Path, rel: str, target: str) -> None:
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise PlatformError(
            f"{rel} in the app is a symlink to {target}, outside the app",
            "replace it with a copy of what it points to, or a link inside the app directory",
        )


def check_room(scan: AppScan, source: Path, dest_parent: Path) -> None:
    """The copy (allocated size) plus the app layer tar (apparent size) must fit in the work dir."""
    free = shutil.disk_usage(dest_parent).free
    needed = scan.apparent + scan.allocated
    if needed <= free:
        return
    biggest = ", ".join(f"{name} ({size / 1e6:.1f} MB)" for size, name in scan.largest)
    raise PlatformError(
        f"the app directory {source} needs {needed / 1e6:.1f} MB in the work dir {dest_parent} (the copy plus the"
        f" app layer's tar, which stores sparse files at full size) but only {free / 1e6:.1f} MB are free;"
        f" largest files: {biggest}",
        f"remove large files from the app, or set {WORK_DIR_ENV} to a directory with more room",
    )


def copy_app(source: Path, dest: Path, keep: AppPathFilter | None = None) -> None:
    """Copy the app (the paths `keep` accepts) so buildpacks can write to it; the original is never touched."""
    source = source.resolve()
    if not source.is_dir():
        raise PlatformError(f"app directory {source} does not exist", "pass the path of your app's source directory")
    scan = scan_app(source, keep)
    dest.parent.mkdir(parents=True, exist_ok=True)
    check_room(scan, source, dest.parent)
    src_fd = safefs.open_root(source)
    try:
        top = os.fstat(src_fd)
        dest.mkdir(mode=0o700)
        cursor = _DestCursor(safefs.open_root(dest))
        try:
            made = {"."}  # dirs that exist in the copy
            for entry in safefs.walk(src_fd, "."):
                parent, _, name = entry.name.rpartition("/")
                if keep is not None:
                    if not keep(entry.name[2:]):
                        continue
                    _make_parents(parent, made, cursor)
                _copy_entry(entry, name, cursor.move_to(parent), cursor)
                if stat.S_ISDIR(entry.st.st_mode):
                    made.add(entry.name)
            cursor.move_to(".")
            os.fchmod(cursor.fd, stat.S_IMODE(top.st_mode))
            os.utime(cursor.fd, ns=(top.st_atime_ns, top.st_mtime_ns))
        finally:
            cursor.close()
    except safefs.UnsafePath as exc:
        raise PlatformError(
            f"the app directory {source} changed while it was copied: {exc.message}",
            "do not edit the app while a build is starting; build again",
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # the creator names the work dir and BPCONFORM_WORK_DIR
        raise PlatformError(
            f"cannot copy the app directory {source}: {exc.strerror}" + (f" ({exc.filename})" if exc.filename else ""),
            "make every file in the app readable by the user running the harness",
        ) from None
    finally:
        os.close(src_fd)


def _make_parents(parent: str, made: set[str], cursor: _DestCursor) -> None:
    """The dirs above a kept path that the filter dropped: made plain (0755), as a tar extraction does."""
    missing = []
    while parent not in made:
        missing.append(parent)
        parent = parent.rpartition("/")[0]
    for path in reversed(missing):
        above, _, name = path.rpartition("/")
        os.mkdir(name, 0o755, dir_fd=cursor.move_to(above))
        os.chmod(name, 0o755, dir_fd=cursor.fd)
        made.add(path)


class _DestCursor:
    """The open destination dir, named like the walk's entries (`.`, `./a`, `./a/b`), moved up
    (through `..`) and down one component at a time; leaving a dir sets its times, as a copy
    that keeps mtimes must once the dir's entries are made."""

    def __init__(self, root_fd: int) -> None:
        self.fd = root_fd
        self.path = "."
        self.times: dict[str, tuple[int, int]] = {}  # dir -> (atime, mtime) to set when leaving it

    def move_to(self, path: str) -> int:
        while self.path != path and not path.startswith(self.path + "/"):
            times = self.times.pop(self.path, None)
            if times is not None:
                os.utime(self.fd, ns=times)
            up = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.fd)
            os.close(self.fd)
            self.fd = up
            self.path = self.path.rpartition("/")[0]
        if path != self.path:
            for part in path[len(self.path) + 1 :].split("/"):
                down = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
                os.close(self.fd)
                self.fd = down
            self.path = path
        return self.fd

    def close(self) -> None:
        os.close(self.fd)


def _copy_entry(entry: safefs.Entry, name: str, dest_dir: int, cursor: _DestCursor) -> None:
    st = entry.st
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(name, 0o700, dir_fd=dest_dir)
        os.chmod(name, mode, dir_fd=dest_dir)  # the harness runs as root: a read-only dir still fills
        cursor.times[entry.name] = (st.st_atime_ns, st.st_mtime_ns)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(entry.link or "", name, dir_fd=dest_dir)
    elif stat.S_ISREG(st.st_mode):
        src = os.open(entry.base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=entry.dir_fd)
        try:
            opened = os.fstat(src)
            if not stat.S_ISREG(opened.st_mode) or opened.st_ino != st.st_ino:
                raise safefs.UnsafePath(f"{entry.name} was replaced")
            dst = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dest_dir
            )
            try:
                _copy_data(src, dst, opened)
                os.fchmod(dst, mode)
                os.utime(dst, ns=(opened.st_atime_ns, opened.st_mtime_ns))
            finally:
                os.close(dst)
        finally:
            os.close(src)


def _copy_data(src: int, dst: int, st: os.stat_result) -> None:
    """Copy a file's bytes; a sparse file's holes stay holes (only its data ranges are copied)."""
    size = st.st_size
    if st.st_blocks * 512 >= size:
        _copy_range(src, dst, 0, size)
        return
    offset = 0
    while offset < size:
        try:
            data = os.lseek(src, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                break
            raise
        hole = os.lseek(src, data, os.SEEK_HOLE)
        _copy_range(src, dst, data, hole - data)
        offset = hole
    os.ftruncate(dst, size)


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    end = offset + length
    while offset < end:
        chunk = os.pread(src, min(_CHUNK, end - offset), offset)
        if not chunk:
            break
        os.pwrite(dst, chunk, offset)
        offset += len(chunk)
