"""The `uv` and `poetry` layers (build + cache, not launch): the lock-file package managers.

Both are installed with the pip wheel CPython bundles for ensurepip (as the pip layer is), so no
pip is ever installed for these apps:
- uv: `pip download uv==X --no-deps`, then only the binary is taken out of the wheel
  (`uv-X.data/scripts/uv` -> `<uv layer>/bin/uv`); the layer holds no Python package at all;
- Poetry: `pip install --user poetry==X` with PYTHONUSERBASE = the poetry layer, like the pip layer,
  so Poetry imports at build time without PYTHONPATH and is absent at run time.
pip reads the user's PIP_INDEX_URL / PIP_FIND_LINKS / PIP_NO_INDEX, so an offline build needs
the tool's wheels (and Poetry's dependencies) in the wheelhouse.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from bpconform_python.output import BuildpackError
from bpconform_python.pip_layer import bundled_pip_wheel, compile_pip, tool_env


def _bootstrap_env(environ: Mapping[str, str], **extra: str) -> dict[str, str]:
    env = tool_env(environ, **extra)
    for name in ("PIP_PYTHON", "PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT"):
        env.pop(name, None)
    return env


def uv_download_command(python: Path, pip_wheel: Path, uv_version: str, dest: Path) -> list[str]:
    return [
        str(python),
        f"{pip_wheel}/pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--progress-bar",
        "off",
        "--dest",
        str(dest),
        f"uv=={uv_version}",
    ]


def extract_uv_binary(wheel: Path, uv_layer: Path) -> Path:
    """Take `uv-*.data/scripts/uv` out of the wheel; nothing else of it is needed."""
    with zipfile.ZipFile(wheel) as archive:
        names = [name for name in archive.namelist() if name.endswith(".data/scripts/uv")]
        if len(names) != 1:
            raise BuildpackError("Could not install uv", f"{wheel.name} has no single uv binary under *.data/scripts/.")
        target = uv_layer / "bin" / "uv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(names[0]) as source, target.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    os.chmod(target, 0o755)
    return target


def install_uv(python: Path, python_layer: Path, uv_layer: Path, uv_version: str, environ: Mapping[str, str]) -> None:
    pip_wheel = bundled_pip_wheel(python_layer)
    with tempfile.TemporaryDirectory(prefix="bpconform-uv-") as scratch:
        result = subprocess.run(
            uv_download_command(python, pip_wheel, uv_version, Path(scratch)),
            env=_bootstrap_env(environ),
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        wheels = sorted(Path(scratch).glob("uv-*.whl"))
        if result.returncode != 0 or not wheels:
            raise BuildpackError(
                "Could not install uv",
                f"Downloading uv {uv_version} (with the pip bundled in Python) failed "
                f"(exit code {result.returncode}):\n"
                f"{(result.stderr or result.stdout).strip()[-1500:]}\nWhen building offline, the wheelhouse "
                f"(PIP_FIND_LINKS) must contain the uv-{uv_version} wheel for this platform.",
            )
        extract_uv_binary(wheels[0], uv_layer)
    check = subprocess.run([str(uv_layer / "bin" / "uv"), "--version"], capture_output=True, text=True)
    if check.returncode != 0 or uv_version not in check.stdout:
        raise BuildpackError(
            "Could not install uv", f"{uv_layer}/bin/uv does not run: {(check.stderr or check.stdout).strip()[-800:]}"
        )


def uv_dir_is_complete(uv_layer: Path) -> bool:
    binary = uv_layer / "bin" / "uv"
    return binary.is_file() and bool(binary.stat().st_mode & stat.S_IXUSR)


def poetry_install_command(python: Path, pip_wheel: Path, poetry_version: str) -> list[str]:
    return [
        str(python),
        f"{pip_wheel}/pip",
        "install",
        "--quiet",
        "--user",
        "--no-warn-script-location",
        "--no-compile",
        "--no-cache-dir",
        "--progress-bar",
        "off",
        f"poetry=={poetry_version}",
    ]


def install_poetry(
    python: Path, python_layer: Path, poetry_layer: Path, poetry_version: str, environ: Mapping[str, str]
) -> None:
    pip_wheel = bundled_pip_wheel(python_layer)
    env = _bootstrap_env(environ, PYTHONUSERBASE=str(poetry_layer))
    result = subprocess.run(poetry_install_command(python, pip_wheel, poetry_version), env=env, cwd=poetry_layer)
    if result.returncode != 0 or not poetry_dir_is_complete(poetry_layer):
        raise BuildpackError(
            "Could not install Poetry",
            f"Installing Poetry {poetry_version} (with the pip bundled in Python, {pip_wheel.name}) failed with exit "
            f"code {result.returncode}: see pip's output above. When building offline, the wheelhouse "
            f"(PIP_FIND_LINKS) must contain poetry-{poetry_version} and all its dependencies.",
        )
    compile_pip(python, poetry_layer, environ)


def poetry_dir_is_complete(poetry_layer: Path) -> bool:
    has_module = any(poetry_layer.glob("lib/python3.*/site-packages/poetry/__main__.py"))
    return has_module and (poetry_layer / "bin" / "poetry").is_file()
