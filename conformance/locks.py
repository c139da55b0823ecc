"""One exclusive lock across processes, for what parallel processes (pytest-xdist workers, the CLI) fill once.

`fcntl.flock` on a lock file next to what it guards. The kernel drops the lock when its holder
exits, however it exits, so a killed worker never leaves a stale lock behind; a process waiting on
the lock can be interrupted with Ctrl-C. Lock files stay where they are (empty): deleting one
while another process waits on it would let a third process lock a new file of the same name.

Where they are: `stacks/<stack>-<kind>.lock` (stack images), `runtime-build/locks/` (each runtime
archive, and the runtime manifest), `wheelhouse.lock` beside the wheelhouse, and one per shared
app build in a test run's shared dir (`conformance.shared_builds`), and `<cache>.lock` beside each
build cache, held by a build from restore to save (`BuildCache.locked`).
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold the lock on `path` for the block. Yields whether another process held it first: then
    whatever the lock guards may have been made meanwhile, so look again before making it.
    `on_wait` is called once, before blocking, when the lock is taken (to tell the user why)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
            waited = True
        try:
            yield waited
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
