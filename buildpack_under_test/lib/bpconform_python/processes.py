"""Launch processes: from a Procfile, or from a recognisable entry point at the app root.

Rule (documented in README.md):
- a `Procfile` wins: each `type: command` line becomes a process run as `/bin/sh -c <command>`
  (shell syntax and `$PORT`-style expansion work; the run image has /bin/sh); `web` is the default;
- otherwise `app.py`, else `main.py`, at the app root gives a default `web` process `python <file>`;
- otherwise no launch.toml is written.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpconform_python.output import BuildpackError

ENTRY_POINTS = ("app.py", "main.py")
_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+)\s*:\s*(.*)$")


@dataclass(frozen=True)
class Process:
    type: str
    command: tuple[str, ...]
    default: bool = False


def parse_procfile(text: str) -> dict[str, str]:
    """`type: command` lines, in file order; blank lines and `#` comments skipped."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if not match or not match.group(2).strip():
            raise BuildpackError(
                "Invalid Procfile",
                f"Line {number} of the Procfile is not of the form `<type>: <command>`: {raw!r}. "
                "Process types use letters, digits, '-' and '_'.",
            )
        process_type, command = match.group(1), match.group(2).strip()
        if process_type in entries:
            raise BuildpackError(
                "Invalid Procfile", f"Line {number} of the Procfile defines process type {process_type!r} twice."
            )
        entries[process_type] = command
    return entries


def processes_for_app(app_dir: Path) -> list[Process]:
    procfile = app_dir / "Procfile"
    if procfile.is_file():
        entries = parse_procfile(procfile.read_text(encoding="utf-8", errors="replace"))
        return [
            Process(process_type, ("/bin/sh", "-c", command), default=process_type == "web")
            for process_type, command in entries.items()
        ]
    for entry_point in ENTRY_POINTS:
        if (app_dir / entry_point).is_file():
            return [Process("web", ("python", entry_point), default=True)]
    return []


def launch_toml(processes: list[Process]) -> dict[str, Any]:
    return {
        "processes": [{"type": p.type, "command": list(p.command), "args": [], "default": p.default} for p in processes]
    }


def describe(processes: list[Process]) -> list[str]:
    return [f"{p.type}: {shlex.join(p.command)}{' (default)' if p.default else ''}" for p in processes]
