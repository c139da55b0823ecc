"""The `venv` layer (build + launch, never cached) and installing requirements.txt into it.

The venv is made `--without-pip`: pip stays in the build-only pip layer and drives the venv through
`PIP_PYTHON`. It is never cached because pip installs but never removes, so a cached venv would
keep packages the app no longer lists.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bpconform_python.output import BuildpackError
from bpconform_python.pip_layer import tool_env

REQUIREMENTS = "requirements.txt"


def create_venv(python: Path, venv_dir: Path, environ: Mapping[str, str]) -> None:
    result = subprocess.run(
        [str(python), "-m", "venv", "--without-pip", str(venv_dir)],
        env=tool_env(environ),
        cwd=venv_dir.parent,  # not the app dir: `-m` puts the cwd first on sys.path
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BuildpackError(
            "Could not create the virtual environment",
            f"`python -m venv --without-pip {venv_dir}` failed: {(result.stderr or result.stdout).strip()[-800:]}",
        )


def venv_site_packages(venv_dir: Path) -> Path:
    found = sorted(venv_dir.glob("lib/python3.*/site-packages"))
    if not found:
        raise BuildpackError("Broken virtual environment", f"{venv_dir} has no lib/python3.*/site-packages.")
    return found[-1]


def ensure_site_packages(venv_dir: Path, python_version: str) -> Path:
    """The venv's site-packages, made again if a sync removed it.

    Poetry 2.5.1 prunes the directories an uninstall leaves empty; when a lock drops the venv's last
    package (testapps/poetry-removed-dependency) that took site-packages itself with it here, and the
    venv could not take a package (or `python -m ensurepip`) at run time.
    """
    found = sorted(venv_dir.glob("lib/python3.*/site-packages"))
    if found:
        return found[-1]
    minor = ".".join(python_version.split(".")[:2])
    path = venv_dir / "lib" / f"python{minor}" / "site-packages"
    path.mkdir(parents=True)
    return path


def make_group_writable(venv_dir: Path) -> list[Path]:
    """Let the run user (another uid, same group) run `python -m ensurepip` into the venv.

    ensurepip writes a new package directory into site-packages and scripts into bin, so those two
    directories (and only those, not the installed packages) get group write.
    """
    targets = [venv_dir / "bin", venv_site_packages(venv_dir)]
    for path in targets:
        mode = stat.S_IMODE(path.stat().st_mode)
        os.chmod(path, mode | stat.S_IWGRP | stat.S_IRGRP | stat.S_IXGRP)
    return targets


def pip_install_command(python: Path, pip_layer: Path, requirements: Path) -> list[str]:
    """Run the pip layer's `bin/pip` script, not `python -m pip`: `-m` would put the app dir (the cwd,
    for relative paths in requirements.txt) first on sys.path, where an app module could shadow pip's."""
    return [
        str(python),
        str(pip_layer / "bin" / "pip"),
        "install",
        "--requirement",
        requirements.name,  # relative: pip runs in the app dir and prints this in its messages
        "--progress-bar",
        "off",
        "--no-input",
    ]


def install_requirements(
    python: Path,
    app_dir: Path,
    pip_layer: Path,
    pip_cache: Path,
    venv_dir: Path,
    environ: Mapping[str, str],
) -> None:
    """Run the pip-layer pip (importable via PYTHONUSERBASE) against the venv (PIP_PYTHON)."""
    env = tool_env(
        environ,
        PYTHONUSERBASE=str(pip_layer),
        PIP_CACHE_DIR=str(pip_cache),
        PIP_PYTHON=str(venv_dir),
        VIRTUAL_ENV=str(venv_dir),
    )
    env.pop("PIP_USER", None)
    result = subprocess.run(pip_install_command(python, pip_layer, app_dir / REQUIREMENTS), env=env, cwd=app_dir)
    if result.returncode != 0:
        raise BuildpackError(
            "Could not install dependencies",
            f"pip could not install the packages in {REQUIREMENTS}: see pip's output above; check package "
            "names/versions and that the index is reachable (pip exited with code "
            f"{result.returncode}; when building offline, PIP_FIND_LINKS must hold every wheel).",
        )
