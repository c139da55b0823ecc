"""The `pip` layer (build + cache, not launch) and the `pip-cache` layer (cache only).

pip is a *user install* of the runtime's Python with PYTHONUSERBASE = the pip layer, so it is
importable at build time without PYTHONPATH and absent at run time. It is bootstrapped by running
the pip wheel that CPython bundles for ensurepip (a wheel is a zip pip can run from), so no pip has
to exist in the python layer.

The bootstrap is the costliest step of a cold build, and a third of it was pip byte-compiling its
own thousand modules one by one. So pip installs without compiling and `compileall` compiles the
layer afterwards with one worker per CPU.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from bpconform_python.output import BuildpackError

SOURCE_DATE_EPOCH = "315532801"  # 1980-01-01T00:00:01Z, the CNB export mtime: reproducible bytecode


def bundled_pip_wheel(python_layer: Path) -> Path:
    wheels = sorted(python_layer.glob("lib/python3.*/ensurepip/_bundled/pip-*.whl"))
    if not wheels:
        raise BuildpackError(
            "Python runtime has no bundled pip",
            f"Could not find pip's wheel under {python_layer}/lib/python3.*/ensurepip/_bundled/, which the "
            "buildpack uses to install pip. The runtime archive must keep ensurepip's bundled wheel.",
        )
    return wheels[-1]


def tool_env(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The env for pip and Python subprocesses: the user's (PIP_INDEX_URL, PIP_CERT, ...) plus ours.

    PYTHONHOME is dropped because it would point the relocated runtime at the wrong stdlib.
    PYTHONDONTWRITEBYTECODE keeps the runtime layer byte-for-byte as unpacked: importing the stdlib
    from pip would otherwise add `__pycache__` files to it and change its digest from build to build
    (pip still compiles the packages it installs, which does not depend on this variable).
    """
    env = {key: value for key, value in base.items() if key != "PYTHONHOME"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra)
    return env


def pip_bootstrap_command(python: Path, wheel: Path, pip_version: str) -> list[str]:
    return [
        str(python),
        f"{wheel}/pip",
        "install",
        "--user",
        "--no-warn-script-location",
        "--no-compile",
        "--progress-bar",
        "off",
        f"pip=={pip_version}",
    ]


def compile_command(python: Path, pip_layer: Path, workers: int) -> list[str]:
    """Hash-checked pycs (what pip itself writes under SOURCE_DATE_EPOCH): the same bytes every build."""
    return [
        str(python),
        "-m",
        "compileall",
        "-q",
        "-j",
        str(workers),
        "--invalidation-mode",
        "checked-hash",
        str(pip_layer / "lib"),
    ]


def install_pip(
    python: Path, python_layer: Path, pip_layer: Path, pip_cache: Path, pip_version: str, environ: Mapping[str, str]
) -> None:
    wheel = bundled_pip_wheel(python_layer)
    env = tool_env(environ, PYTHONUSERBASE=str(pip_layer), PIP_CACHE_DIR=str(pip_cache))
    env.pop("PIP_PYTHON", None)
    env.pop("PIP_USER", None)
    result = subprocess.run(pip_bootstrap_command(python, wheel, pip_version), env=env)
    if result.returncode != 0:
        raise BuildpackError(
            "Could not install pip",
            f"Installing pip {pip_version} (with the pip bundled in Python, {wheel.name}) failed with exit "
            f"code {result.returncode}: see pip's output above. When building offline, the wheelhouse "
            f"(PIP_FIND_LINKS) must contain pip-{pip_version}-py3-none-any.whl.",
        )
    if not pip_dir_is_complete(pip_layer):
        raise BuildpackError("Could not install pip", f"pip {pip_version} did not end up in {pip_layer}.")
    compile_pip(python, pip_layer, environ)


def compile_pip(python: Path, pip_layer: Path, environ: Mapping[str, str]) -> None:
    """Byte-compile the pip layer, in parallel; serially where worker processes cannot start."""
    env = tool_env(environ)
    for workers in (0, 1):  # 0: one per CPU
        result = subprocess.run(compile_command(python, pip_layer, workers), env=env, cwd="/", capture_output=True)
        if result.returncode == 0:
            return
    output = (result.stderr or result.stdout).decode(errors="replace").strip()
    raise BuildpackError("Could not byte-compile pip", f"compileall failed on {pip_layer}/lib: {output[-800:]}")


def pip_dir_is_complete(pip_layer: Path) -> bool:
    has_module = any(pip_layer.glob("lib/python3.*/site-packages/pip/__init__.py"))
    return has_module and (pip_layer / "bin" / "pip").is_file()
