"""One exclusive lock across processes, for what parallel processes (pytest-xdist workers, the CLI) fill once.

`fcntl.flock` on a lock file next to what it guards. The kernel drops the lock when its holder
exits, however it exits, so a killed worker never leaves a stale lock behind; a process waiting on
the lock can be interrupted with Ctrl-C. Most lock files stay where they are (empty): deleting one
while another process waits on it would let a third process lock a new file of the same name.
With `remove=True` (one per image name would otherwise pile up) the holder unlinks the file while
it still holds the lock, and every taker, once it has the lock, checks that the path still names
the file it locked (same device and inode), starting over otherwise: a waiter that locked an
unlinked file never proceeds on it, so two holders never overlap.

Where they are: `stacks/<stack>-<kind>.lock` (stack images), `runtime-build/locks/` (each runtime
archive, and the runtime manifest), `wheelhouse.lock` beside the wheelhouse, and one per shared
app build in a test run's shared dir (`conformance.shared_builds`), and `<cache>.lock` beside each
build cache, held by a build from restore to save and removed after it (`BuildCache.locked`, `remove=True`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path, on_wait: Callable[[], None] | None = None, *, remove: bool = False) -> Iterator[bool]:
    """Hold the lock on `path` for the block. Yields whether another process held it first: then
    whatever the lock guards may have been made meanwhile, so look again before making it.
    `on_wait` is called once, before blocking, when the lock is taken (to tell the user why).
    `remove`: the lock file is gone after the block (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        handle = path.open("a")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not waited:
                    on_wait()
                waited = True
                fcntl.flock(handle, fcntl.LOCK_EX)
            if remove and not _still_names(path, handle.fileno()):
                continue  # its holder removed it while we waited: lock the file that is there now
            try:
                yield waited
            finally:
                if remove:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()  # still holding it: a waiter on this file sees it is gone and starts over
                fcntl.flock(handle, fcntl.LOCK_UN)
            return
        finally:
            handle.close()


def _still_names(path: Path, fd: int) -> bool:
    """Whether `path` is (still) the file open as `fd`."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def remove_if_unheld(path: Path) -> bool:
    """Unlink the `remove=True` lock file `path` unless a process holds it (lock files older builds left
    behind); whether it was removed. Safe by the same protocol: it is unlinked under its lock, and
    a process waiting on it starts over on a new file."""
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a build holds it: it removes the file itself when done
        try:
            if not _still_names(path, handle.fileno()):
                return False
            path.unlink()
            return True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
