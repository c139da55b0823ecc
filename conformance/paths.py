"""Where the harness keeps what is slow to make (runtime archives, wheels, stack recipes) and where
builds do their short-lived work.

The cache has one root, `$BPCONFORM_CACHE` or `$XDG_CACHE_HOME/bpconform` (default
`~/.cache/bpconform`), so `make clean` and users know exactly what the project created on disk.
Build work dirs live in memory when there is room (`work_root`), and are deleted off the critical
path (`discard_tree`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from conformance.errors import PlatformError
from conformance.platform.safefs import remove_tree

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    explicit = os.environ.get("BPCONFORM_CACHE")
    if explicit:
        root = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(xdg) / "bpconform"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(name: str) -> Path:
    """A named sub-directory of the cache root, created on first use."""
    path = cache_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


WORK_DIR_ENV = "BPCONFORM_WORK_DIR"
MEMORY_WORK_MIN_FREE = 4 * 1024**3
SHM = Path("/dev/shm")


def work_root() -> Path:
    """Where builds keep their short-lived dirs (the app copy, the layers, the layer tars).

    A cold build writes a few thousand small files (an unpacked Python, pip and its bytecode, a
    venv) that are deleted moments later. On the virtual disks we run on, the writes alone stalled
    for up to a second at a time, more than the work itself: `make bench --versus` measured a cold
    build at 5.1 s with its work dir on disk and 3.4 s in memory. So builds work in /dev/shm when it
    is a tmpfs with at least 4 GiB free; `BPCONFORM_WORK_DIR` names another place (e.g. a disk, for
    apps whose dependencies would not fit in memory).
    """
    explicit = os.environ.get(WORK_DIR_ENV)
    root = Path(explicit) if explicit else (_memory_work_root() or cache_root() / "work")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _memory_work_root() -> Path | None:
    """`/dev/shm/bpconform-<uid>/work` if it may be used: a tmpfs with room, and a base dir that is
    really ours (a world-writable place: never follow what another user left there)."""
    try:
        if not _is_tmpfs(SHM) or shutil.disk_usage(SHM).free < MEMORY_WORK_MIN_FREE:
            return None
        base = memory_base()
        with contextlib.suppress(FileExistsError):
            base.mkdir(mode=0o700)
        status = base.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
        return None
    return base / "work"


def memory_base() -> Path:
    """This user's dir in /dev/shm, for work dirs kept in memory (see `work_root`)."""
    return SHM / f"bpconform-{os.getuid()}"


def _is_tmpfs(mount_point: Path) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return any(line.split()[1:3] == [str(mount_point), "tmpfs"] for line in mounts if line.strip())


UNDELETABLE_SUFFIX = ".undeletable"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def no_space_error(exc: OSError, work_dir: Path, build_cache: Path) -> PlatformError | None:
    """A clear error for a full disk during a build (None for any other OSError).

    Names the path when the failing call had one, the build's work dir (and `BPCONFORM_WORK_DIR`,
    which moves it) and the build cache, since either may be the full one.
    """
    if exc.errno not in _NO_SPACE:
        return None
    where = f" writing {exc.filename}" if exc.filename else ""
    setting = os.environ.get(WORK_DIR_ENV)
    return PlatformError(
        f"no space left on device{where}: the build's work dir is {work_dir}"
        f" ({WORK_DIR_ENV}={setting if setting else 'unset'}) and its cache {build_cache}",
        f"free space there, or set {WORK_DIR_ENV} to a directory on a filesystem with more room;"
        " the next build starts from a clean work dir",
    )


def discard_tree(path: Path, *, now: bool = False) -> None:
    """Remove a directory tree without making the caller wait for it.

    A build's work dir holds thousands of files and deleting them costs a quarter of a second that
    nobody needs to wait for: the tree is renamed at once into a trash dir beside its parent (same
    filesystem, so the rename is instant; `<parent>-trash`) and deleted by a background thread,
    which the interpreter waits for at exit. Trash left by a process that was killed first is swept
    by the next discard. With `now` (a build interrupted by Ctrl-C or SIGTERM, whose process is
    about to exit and would abandon the background thread at a second Ctrl-C) the tree is deleted
    at once, with SIGINT and SIGTERM deferred until it is gone.

    Deletion never follows a link and works at any depth (`safefs.remove_tree`); an entry it cannot
    delete is renamed `<entry>.undeletable`, reported once on stderr, and skipped from then on.
    """
    if not os.path.lexists(path):
        return
    if now:
        with _signals_deferred():
            _remove_or_report(path)
        return
    trash = path.parent.with_name(f"{path.parent.name}-trash")
    try:
        trash.mkdir(exist_ok=True)
        path.rename(trash / f"{path.name}-{uuid.uuid4().hex[:8]}")
    except OSError:  # e.g. the parent is a mount point: delete in place, now
        _remove_or_report(path)
        return
    global _trash_collector
    with _trash_lock:
        _trash_dirs.add(trash)
        if _trash_collector is None or not _trash_collector.is_alive():
            _trash_collector = threading.Thread(target=_empty_trash, name="bpconform-trash")
            _trash_collector.start()


def wait_for_discards(timeout: float | None = None) -> bool:
    """Block until trees handed to `discard_tree` are deleted (benchmarks must not overlap that
    work); returns False if that took longer than `timeout` seconds."""
    collector = _trash_collector
    if collector is not None:
        collector.join(timeout)
        return not collector.is_alive()
    return True


def _empty_trash() -> None:
    """Delete until every trash dir is empty (entries may keep arriving while it runs); give up on
    an entry that cannot be deleted rather than retrying it forever."""
    global _trash_collector
    undeletable: set[Path] = set()
    while True:
        with _trash_lock:
            entries = [entry for entry in _trash_entries() if entry not in undeletable]
            if not entries:
                _trash_collector = None
                return
        for entry in entries:
            if not _remove_or_report(entry):
                undeletable.add(entry)


def _remove_or_report(entry: Path) -> bool:
    """Delete `entry`; if that fails, mark it `.undeletable` and say so once (never raise: a leftover
    must not break this build or any later one)."""
    try:
        if remove_tree(entry):
            return True
    except Exception as exc:  # a deleter must never take a build down
        reason = f"{type(exc).__name__}: {exc}"
    else:
        reason = "some entries could not be removed (a busy mount point, an immutable file?)"
    marked = entry
    if not entry.name.endswith(UNDELETABLE_SUFFIX):
        marked = entry.with_name(entry.name + UNDELETABLE_SUFFIX)
        with contextlib.suppress(OSError):
            entry.rename(marked)
    with _trash_lock:
        first = marked not in _reported
        _reported.add(marked)
    if first:
        sys.stderr.write(
            f"bpconform: could not delete {marked}: {reason}; it is skipped from now on."
            " Remove it by hand (as root, after unmounting anything mounted in it).\n"
        )
    return False


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then deliver them to their handlers
    (main thread only: elsewhere signal handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda got, frame: pending.append(got)) for signum in _DEFERRED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


def _trash_entries() -> list[Path]:
    entries: list[Path] = []
    for trash in list(_trash_dirs):
        try:
            entries += [entry for entry in trash.iterdir() if not entry.name.endswith(UNDELETABLE_SUFFIX)]
        except FileNotFoundError:  # someone removed the whole trash dir: nothing left to do there
            _trash_dirs.discard(trash)
    return entries


_trash_lock = threading.Lock()
_reported: set[Path] = set()
_trash_dirs: set[Path] = set()
_trash_collector: threading.Thread | None = None
