"""SIGINT and SIGTERM stop a suite run at once, serial or with workers, and leave nothing behind.

Python turns SIGINT into KeyboardInterrupt, which pytest handles as "interrupted": it stops,
tears the session's fixtures down (removing their images) and reports. SIGTERM, by default, kills
the process without any of that, and once turned into `SystemExit` inside a check it was recorded
as that check's FAIL while the suite went on. So during a run both signals are handled alike:

- the first one is recorded (for the verdict: ABORTED, exit 128 + signal number), forwarded as
  SIGTERM to this process's children (the pytest-xdist workers, and any `pip`/`pack`/`git` the
  harness started), so each stops and cleans up after itself, and raised as KeyboardInterrupt;
- a later one is only recorded: cleanup is under way and must finish, or it would leak.

The controller's `pytest_unconfigure` then removes the run's shared app images and whatever a
worker that was killed before cleaning up left (see `conformance.shared_builds`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)

_received: list[str] = []
_previous: dict[int, Any] = {}


def received() -> str | None:
    """The name of the first signal that stopped the run, if one did."""
    return _received[0] if _received else None


def reset() -> None:
    _received.clear()


def child_pids(parent: int | None = None) -> list[int]:
    """Direct children of `parent` (default: this process), from /proc."""
    parent = os.getpid() if parent is None else parent
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the command name is in parentheses and may hold spaces: the fields after the last ")"
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if len(fields) > 1 and fields[1] == str(parent):
            children.append(int(entry.name))
    return children


def _handle(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    first = not _received
    _received.append(name)
    if not first:
        print(f"bpconform: {name} again; still removing what the run created", file=sys.stderr, flush=True)
        return
    print(f"bpconform: {name} received; stopping the run and removing what it created", file=sys.stderr, flush=True)
    for pid in child_pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    raise KeyboardInterrupt(name)


def install() -> bool:
    """Handle SIGINT and SIGTERM as described above; False when that is not possible here (not the
    main thread) or already done."""
    if _previous or threading.current_thread() is not threading.main_thread():
        return False
    reset()
    for signum in HANDLED:
        _previous[signum] = signal.signal(signum, _handle)
    return True


def uninstall() -> None:
    """Restore the handlers `install` replaced (the record of a received signal stays)."""
    for signum, handler in list(_previous.items()):
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signum, handler)
        del _previous[signum]


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    installed = install()
    try:
        yield
    finally:
        if installed:
            uninstall()
