"""File access that never follows a link a buildpack made and never leaves its root.

Everything in the layers, platform, plans and app dirs after a buildpack ran was written by that
buildpack, and the harness reads those dirs on the host as root: a symlink there would resolve
against the host. So every such access starts from a *trusted root* (a dir the platform made and
bind-mounted: `<work>/layers`, `<work>/plans`, ...; opened normally, it is ours) and walks down one
component at a time with `O_NOFOLLOW`, relative to the parent's file descriptor (`dir_fd=`), like
`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`. A link or an unexpected file type on the way is a
clear error naming what the buildpack wrote, never a read of its target.

Tree walks (layer tars, fingerprints, the app copy, chown, deletion) are iterative and keep one
directory open at a time, going back up through `..` of the dir they are in and checking that it
is the dir they came from (device and inode): any depth works (no recursion limit, no PATH_MAX on
the host side) and a tree changed under the walk is an error, not a walk into somewhere else.

The real lifecycle runs inside the build container, where following a buildpack's link is harmless;
the platform cannot, so where the lifecycle would follow a link (an env file that is a symlink, a
`<layer>.toml` that is one) it refuses with an error instead. Links *inside* layers are data: they
are exported as links.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from conformance.errors import PlatformError
from conformance.platform import spec

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a swapped-in fifo must not block
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
DEFAULT_READ_LIMIT = 16 * 1024 * 1024  # TOML and env files a buildpack writes; more is a runaway buildpack


class UnsafePath(PlatformError):
    """A buildpack-written path the platform refuses to use (a link, a wrong file type, too big)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint or _HINT, spec.ExitCode.BUILD_ERROR)


_HINT = (
    "the platform reads what buildpacks write on the host and never follows a link a buildpack made:"
    " write a regular file or directory there, not a symbolic link"
)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "an unknown file type"


def describe(dir_fd: int, name: str) -> str:
    """What `name` in `dir_fd` is, for an error message; a link's target is quoted, never followed."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return "gone"
    if stat.S_ISLNK(st.st_mode):
        try:
            return f"a symbolic link (to {os.readlink(name, dir_fd=dir_fd)!r})"
        except OSError:
            return "a symbolic link"
    return _kind(st.st_mode)


def _parts(rel: str | Path) -> list[str]:
    parts = [part for part in str(rel).split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{rel!r}: '..' is not allowed in a path beneath a root")
    return parts


def open_root(root: Path | str) -> int:
    """Open a trusted root dir (the platform made it; links in its own path are the operator's)."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_child_dir(dir_fd: int, name: str, shown: str) -> int:
    """Open sub-directory `name` of `dir_fd` without following a link; UnsafePath if not a dir."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{shown} is {describe(dir_fd, name)}, not a directory") from None
        raise


def open_dir(root: Path | str, rel: str | Path = "", *, shown: str | None = None) -> int:
    """An fd of `root/rel`, every component below `root` opened with O_NOFOLLOW.

    FileNotFoundError if a component is missing; UnsafePath if one is a link or not a directory.
    """
    parts = _parts(rel)
    fd = open_root(root)
    try:
        for index, part in enumerate(parts):
            child = open_child_dir(
                fd, part, shown if index == len(parts) - 1 and shown else "/".join(parts[: index + 1])
            )
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _split(rel: str | Path) -> tuple[str, str]:
    parts = _parts(rel)
    if not parts:
        raise ValueError("a file path beneath a root needs a name")
    return "/".join(parts[:-1]), parts[-1]


def lstat(root: Path | str, rel: str | Path, *, shown: str | None = None) -> os.stat_result | None:
    """`lstat` of `root/rel` (None when missing); a link among its parents is UnsafePath."""
    parent, name = _split(rel)
    try:
        fd = open_dir(root, parent, shown=shown)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(fd)


def read_file(
    root: Path | str, rel: str | Path, *, shown: str | None = None, limit: int = DEFAULT_READ_LIMIT
) -> bytes | None:
    """The bytes of regular file `root/rel` (None when missing), opened without following links.

    A link, any other file type or a file over `limit` bytes is UnsafePath naming `shown`.
    """
    shown = shown or str(rel)
    parent, name = _split(rel)
    try:
        dir_fd = open_dir(root, parent, shown=shown)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EACCES, errno.EPERM):
                raise UnsafePath(f"{shown} is {describe(dir_fd, name)}, not a regular file") from None
            raise
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{shown} is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise UnsafePath(
                f"{shown} is {st.st_size} bytes, more than the {limit} bytes the platform reads",
                "a buildpack writes small TOML and env files: write less there",
            )
        data = _read_upto(handle, st.st_size, limit)
    if len(data) > limit:
        raise UnsafePath(f"{shown} grew past {limit} bytes while it was read", "write the file once, then exit")
    return data


def _read_upto(handle: BinaryIO, expected: int, limit: int) -> bytes:
    """Read to EOF, at most `limit + 1` bytes, allocating what the file holds (not the limit)."""
    chunks = [handle.read(expected + 1)]
    total = len(chunks[0])
    while chunks[-1] and total <= limit:
        chunks.append(handle.read(min(64 * 1024, limit + 1 - total)))
        total += len(chunks[-1])
    return b"".join(chunks)


def list_dir(root: Path | str, rel: str | Path = "", *, shown: str | None = None) -> list[tuple[str, int]] | None:
    """(name, st_mode from lstat) of the entries of dir `root/rel`, sorted by name bytes; None when missing."""
    try:
        fd = open_dir(root, rel, shown=shown)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        with os.scandir(fd) as entries:
            found = [(entry.name, entry.stat(follow_symlinks=False).st_mode) for entry in entries]
    finally:
        os.close(fd)
    return sorted(found, key=lambda item: os.fsencode(item[0]))


def write_new_file(
    root: Path | str,
    rel: str | Path,
    data: bytes,
    *,
    mode: int = 0o644,
    owner: tuple[int, int] | None = None,
    shown: str | None = None,
) -> None:
    """Create `root/rel` afresh: whatever is there (a planted link) is unlinked, then the file is made
    with O_CREAT|O_EXCL|O_NOFOLLOW, so nothing a buildpack left can redirect the write."""
    shown = shown or str(rel)
    parent, name = _split(rel)
    dir_fd = open_dir(root, parent, shown=shown)
    try:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise UnsafePath(f"{shown} is a directory; the platform writes a file there") from None
        try:
            fd = os.open(name, _NEW_FILE_FLAGS, mode, dir_fd=dir_fd)
        except FileExistsError:
            raise _changed(shown) from None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "wb") as handle:
        if owner is not None:
            os.fchown(handle.fileno(), *owner)
        os.fchmod(handle.fileno(), mode)
        handle.write(data)


def ensure_dir(root: Path | str, rel: str, *, mode: int = 0o755, shown: str | None = None) -> None:
    """Make sure `root/rel` (one component) is a real directory: a link or file there is removed first."""
    parent, name = _split(rel)
    dir_fd = open_dir(root, parent, shown=shown)
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=dir_fd)
            st = None
        if st is None:
            try:
                os.mkdir(name, mode, dir_fd=dir_fd)
            except FileExistsError:
                raise _changed(shown or rel) from None
    finally:
        os.close(dir_fd)


# ------------------------------------------------------------------------------------------------
# Tree walks
# ------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One entry of a walked tree. `dir_fd`/`base` (its parent dir and own name) are valid only
    until the walk moves on; `fd` is an open regular file (with `open_files`) the consumer closes."""

    name: str
    st: os.stat_result
    dir_fd: int
    base: str
    fd: int | None = None
    link: str | None = None


@dataclass
class _Frame:
    fd: int
    items: list[tuple[bytes, str, os.stat_result, bool]]
    index: int
    prefix: str
    ident: tuple[int, int]


def _listing(fd: int) -> list[tuple[bytes, str, os.stat_result, bool]]:
    """A dir's entries, plus one *subtree* item per sub-directory at key `name + "/"`.

    Sorting both by name bytes gives the global byte order of full paths in a depth-first walk:
    every path below `a` starts with `a/`, and no sibling name contains a slash, so the subtree of
    `a` sits exactly where `a/` sorts (after `a-b`, before `a0`), as the layer tar needs.
    """
    items = []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):  # deleted while listed: not there
                continue
            key = os.fsencode(entry.name)
            items.append((key, entry.name, st, False))
            if stat.S_ISDIR(st.st_mode):
                items.append((key + b"/", entry.name, st, True))
    items.sort(key=lambda item: item[0])
    return items


def _changed(name: str) -> UnsafePath:
    return UnsafePath(
        f"{name} changed while the platform was reading it",
        "a process the buildpack left running is still changing its files: wait for them before bin/build exits",
    )


def _go_up(child_fd: int, ident: tuple[int, int], name: str) -> int:
    """The parent of `child_fd` through `..`, checked to be the dir the walk came from."""
    up = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
    st = os.fstat(up)
    if (st.st_dev, st.st_ino) != ident:
        os.close(up)
        raise _changed(name)
    return up


def walk(dir_fd: int, prefix: str, *, open_files: bool = False) -> Iterator[Entry]:
    """Everything below the open dir `dir_fd`, as `prefix/<path>`, in byte order of the full names.

    Never follows a link (links are yielded as entries with their target text) and never recurses.
    With `open_files`, each regular file is yielded with an fd opened O_NOFOLLOW, whose fstat is
    the entry's stat (so the header and the content agree); the consumer must close it.
    """
    fd = os.dup(dir_fd)
    top = os.fstat(fd)
    frames = [_Frame(fd, _listing(fd), 0, prefix, (top.st_dev, top.st_ino))]
    try:
        while frames:
            frame = frames[-1]
            if frame.index == len(frame.items):
                frames.pop()
                try:
                    if frames:
                        frames[-1].fd = _go_up(frame.fd, frames[-1].ident, frames[-1].prefix)
                finally:
                    os.close(frame.fd)
                    frame.fd = -1
                continue
            _key, name, st, subtree = frame.items[frame.index]
            frame.index += 1
            path = f"{frame.prefix}/{name}"
            if subtree:
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=frame.fd)
                except OSError:
                    raise _changed(path) from None
                child_st = os.fstat(child)
                if (child_st.st_dev, child_st.st_ino) != (st.st_dev, st.st_ino):
                    os.close(child)
                    raise _changed(path)
                os.close(frame.fd)
                frame.fd = -1
                frames.append(_Frame(child, _listing(child), 0, path, (st.st_dev, st.st_ino)))
                continue
            entry = Entry(path, st, frame.fd, name)
            if stat.S_ISLNK(st.st_mode):
                entry.link = os.readlink(name, dir_fd=frame.fd)
            elif stat.S_ISREG(st.st_mode) and open_files:
                entry.fd, entry.st = _open_same_file(frame.fd, name, st, path)
            yield entry
    finally:
        for frame in frames:
            if frame.fd >= 0:
                os.close(frame.fd)


def _open_same_file(dir_fd: int, name: str, st: os.stat_result, path: str) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
            raise _changed(path) from None
        raise
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise _changed(path)
    return fd, opened


def walk_path(root: Path | str, rel: str | Path, prefix: str, *, open_files: bool = False) -> Iterator[Entry]:
    """`walk` of `root/rel`, opened beneath `root` without following links."""
    fd = open_dir(root, rel)
    try:
        yield from walk(fd, prefix, open_files=open_files)
    finally:
        os.close(fd)


def chown_tree(root: Path | str, uid: int, gid: int) -> None:
    """`chown -hR` of a tree without following any link (a racing buildpack cannot redirect it)."""
    fd = open_root(root)
    try:
        os.fchown(fd, uid, gid)
        for entry in walk(fd, "."):
            os.chown(entry.base, uid, gid, dir_fd=entry.dir_fd, follow_symlinks=False)
    finally:
        os.close(fd)


def remove_tree(path: Path | str) -> bool:
    """Delete a tree of any depth without following links; True if it is gone.

    What cannot be deleted (a busy mount point, an immutable file) is left in place, and the rest
    of the tree still goes; the caller reports a False once.
    """
    path = Path(path)
    try:
        parent_fd = open_root(path.parent)
    except FileNotFoundError:
        return True
    try:
        return _remove_beneath(parent_fd, path.name)
    finally:
        os.close(parent_fd)


def _remove_beneath(parent_fd: int, name: str) -> bool:
    try:
        top = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    if not stat.S_ISDIR(top.st_mode):
        try:
            os.unlink(name, dir_fd=parent_fd)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True
    stuck: set[tuple[int, int]] = set()
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return False
    path: list[tuple[str, tuple[int, int]]] = [(name, (top.st_dev, top.st_ino))]
    parent_ident = os.fstat(parent_fd)
    idents = [(parent_ident.st_dev, parent_ident.st_ino)]
    try:
        while True:
            descended = False
            with os.scandir(fd) as entries:
                listing = list(entries)
            for entry in listing:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) in stuck:
                        continue
                    try:
                        child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        stuck.add((st.st_dev, st.st_ino))
                        continue
                    idents.append(path[-1][1])
                    path.append((entry.name, (st.st_dev, st.st_ino)))
                    os.close(fd)
                    fd = child
                    descended = True
                    break
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except OSError:
                    pass  # the dir's rmdir fails below and marks it stuck
            if descended:
                continue
            done_name, done_ident = path.pop()
            parent_of_done = idents.pop()
            if not path:
                os.close(fd)
                fd = -1
                try:
                    os.rmdir(done_name, dir_fd=parent_fd)
                except FileNotFoundError:
                    pass
                except OSError:
                    return False
                return True
            try:
                up = _go_up(fd, parent_of_done, done_name)
            except (OSError, UnsafePath):
                return False
            os.close(fd)
            fd = up
            try:
                os.rmdir(done_name, dir_fd=fd)
            except FileNotFoundError:
                pass
            except OSError:
                stuck.add(done_ident)
    finally:
        if fd >= 0:
            os.close(fd)


def remove_beneath(root: Path | str, rel: str) -> bool:
    """`remove_tree` of `root/rel`, its parents opened beneath `root` without following links."""
    parent, name = _split(rel)
    try:
        parent_fd = open_dir(root, parent)
    except (FileNotFoundError, NotADirectoryError):
        return True
    try:
        return _remove_beneath(parent_fd, name)
    finally:
        os.close(parent_fd)


def move_into(source: Path, root: Path | str, rel: str, *, shown: str | None = None) -> None:
    """Rename the platform's own `source` tree to `root/rel`, replacing what is there.

    The target's parent is opened beneath `root` without following links and the rename is made
    relative to it, so a link a buildpack planted can neither redirect the move nor be written
    through (a tree extracted elsewhere and moved in is never written via buildpack paths).
    Same filesystem only (both live in the build's work dir).
    """
    parent, name = _split(rel)
    parent_fd = open_dir(root, parent, shown=shown)
    try:
        if not _remove_beneath(parent_fd, name):
            raise UnsafePath(f"{shown or rel} could not be replaced", "a process the buildpack left is holding it")
        os.rename(source, name, dst_dir_fd=parent_fd)
    finally:
        os.close(parent_fd)
