"""Detection: is this a Python app? Pure functions over the app dir's top-level names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Files whose presence at the app root marks a Python app, in the order they are reported.
PYTHON_APP_FILES = (
    "requirements.txt",
    "pyproject.toml",
    ".python-version",
    "runtime.txt",
    "setup.py",
    "Pipfile",
    "poetry.lock",
    "uv.lock",
)
DETECT_PASS = 0
DETECT_FAIL = 100


@dataclass(frozen=True)
class DetectResult:
    passed: bool
    found: tuple[str, ...]
    message: str


def detect_from_names(names: Iterable[str], app_dir: str = ".") -> DetectResult:
    """Decide from the names of regular files at the app root."""
    present = set(names)
    found = [name for name in PYTHON_APP_FILES if name in present]
    found += sorted(name for name in present if name.endswith(".py") and name not in found)
    if found:
        return DetectResult(True, tuple(found), f"Detected a Python app (found: {', '.join(found)})")
    looked_for = ", ".join(PYTHON_APP_FILES)
    return DetectResult(
        False,
        (),
        f"No Python app detected in {app_dir}: looked for {looked_for} or a *.py file at the app root.",
    )


def root_file_names(app_dir: Path) -> list[str]:
    try:
        return [entry.name for entry in app_dir.iterdir() if entry.is_file()]
    except OSError:
        return []


def build_plan() -> dict[str, Any]:
    """We provide `python` and require it ourselves, so a lone bpconform/python group passes detect."""
    return {
        "provides": [{"name": "python"}],
        "requires": [{"name": "python", "metadata": {"build": True, "launch": True}}],
    }
