"""Where the harness keeps what is slow to make: runtime archives, wheels, stack recipes.

One root, `$BPCONFORM_CACHE` or `$XDG_CACHE_HOME/bpconform` (default `~/.cache/bpconform`),
so `make clean` and users know exactly what the project created on disk.
"""

from __future__ import annotations

import os
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
