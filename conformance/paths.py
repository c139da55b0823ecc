"""Where the harness keeps what is slow to make: runtime archives, wheels, stack recipes.

One root, `$BPCONFORM_CACHE` or `$XDG_CACHE_HOME/bpconform` (default `~/.cache/bpconform`),
so `make clean` and users know exactly what the project created on disk.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

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


def discard_tree(path: Path) -> None:
    """Remove a directory tree without making the caller wait for it.

    A build's work dir holds thousands of files (an unpacked Python, pip, a venv) and deleting them
    costs a quarter of a second that nobody needs to wait for: the tree is renamed into the cache's
    `trash` dir at once (so it is gone from where it was) and deleted by a background thread, which
    the interpreter waits for at exit. Trash left by a process that was killed first is swept by
    the next discard.
    """
    if not path.exists():
        return
    trash = cache_dir("trash")
    try:
        path.rename(trash / f"{path.name}-{uuid.uuid4().hex[:8]}")
    except OSError:  # another filesystem: delete in place, now
        shutil.rmtree(path, ignore_errors=True)
        return
    with _trash_lock:
        global _trash_collector
        if _trash_collector is None or not _trash_collector.is_alive():
            _trash_collector = threading.Thread(target=_empty_trash, args=(trash,), name="bpconform-trash")
            _trash_collector.start()


def wait_for_discards() -> None:
    """Block until trees handed to `discard_tree` are deleted (benchmarks must not overlap it)."""
    collector = _trash_collector
    if collector is not None:
        collector.join()


def _empty_trash(trash: Path) -> None:
    """Delete until the trash is empty (entries may keep arriving while it runs); give up on an
    entry that cannot be deleted rather than retrying it forever."""
    global _trash_collector
    undeletable: set[str] = set()
    while True:
        with _trash_lock:
            entries = [entry for entry in trash.iterdir() if entry.name not in undeletable]
            if not entries:
                _trash_collector = None
                return
        for entry in entries:
            shutil.rmtree(entry, ignore_errors=True)
            if entry.exists():
                undeletable.add(entry.name)


_trash_lock = threading.Lock()
_trash_collector: threading.Thread | None = None
