"""The host machine: installing a missing Debian package when we are allowed to.

Set-up must work on a fresh Debian machine with nothing installed, so the engine (docker.io) and
stacks (debootstrap) install their tools themselves, as root on Debian, and say clearly what to do
everywhere else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conformance.errors import ConformanceError


def can_install_packages() -> bool:
    return os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def apt_install(package: str, error: type[ConformanceError], hint: str) -> None:
    """`apt-get update && apt-get install <package>`, failing with `error(…, hint)` and apt's stderr."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise error(f"`{' '.join(command)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", hint)
